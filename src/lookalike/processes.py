"""Worker processes that end with the process that started them.

A ``ProcessPoolExecutor``'s workers wait on their call queue for ever when the parent is killed
with SIGKILL (no ``finally`` runs to shut the pool down): each ``kill -9`` of a ``lookalike index``
left its idle workers behind. ``worker_pool`` makes a pool whose workers watch their parent in two
ways and stop when it is gone:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment the thread
  that forked it ends. That is the parent's *thread*, not its process, so it is asked for only when
  the pool is made in the main thread (a pool made in a short-lived thread would otherwise lose its
  workers while the parent lives on);
* everywhere, a daemon thread that looks every ``_WATCH_SECONDS`` whether the worker's parent is
  still the process that started it (an orphan is handed to another parent, init or a subreaper).

``ordered_map`` is the loop every batch command runs on such a pool: each item's result, in the
order of the items, with a bounded window of work in flight.

``BudgetedWorker`` is one such process for work that must end in time whatever its input does
(a decode inside a C library cannot be interrupted from Python): each call gets a wall-time budget,
and a worker that overruns it is killed and replaced, so the caller's slot is free again at once.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

__all__ = ["BudgetedWorker", "WorkerDied", "die_with_parent", "ordered_map", "worker_pool"]

_T = TypeVar("_T")
_R = TypeVar("_R")

#: how often the portable watch looks at the parent: the longest an orphan outlives its parent
#: where no parent-death signal exists
_WATCH_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def worker_pool(
    max_workers: int, *, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` whose workers stop when this process dies, however it dies;
    ``initializer(*initargs)`` then runs in each worker as with the executor itself."""
    in_main = threading.current_thread() is threading.main_thread()
    return ProcessPoolExecutor(
        max_workers=max_workers, initializer=_start, initargs=(os.getpid(), in_main, initializer, initargs)
    )


def ordered_map(
    fn: Callable[[_T], _R],
    items: Iterable[_T],
    *,
    jobs: int,
    initializer: Callable[..., object] | None = None,
    initargs: tuple[Any, ...] = (),
) -> Iterator[_R]:
    """``fn(item)`` of each item, in order, run in a ``worker_pool(jobs)`` (``initializer`` as there).

    At most ``8 * jobs`` items are in flight: results wait in memory only while the consumer is
    that far behind, and ``items`` is read as the work goes (a generator of a million paths is
    never listed). ``fn`` must be picklable (a module-level function, or a ``functools.partial``
    of one). An exception raised by ``fn`` is raised here, at its item."""
    window = 8 * jobs
    with worker_pool(jobs, initializer=initializer, initargs=initargs) as pool:
        pending: deque[Future[_R]] = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _start(
    parent: int, signal_on_death: bool, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    die_with_parent(parent, kernel_signal=signal_on_death)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int, *, kernel_signal: bool = True) -> None:
    """Make this process stop when process ``parent`` (its parent) ends (see the module docstring).

    ``kernel_signal``: also ask Linux for SIGKILL when the parent's forking thread ends; only
    right when that thread lives as long as the parent (its main thread)."""
    if kernel_signal and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl here: the watch below still works
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="lookalike-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)  # no cleanup to do: the parent that wanted the results is gone


# ---- one call at a time, within a wall-time budget -------------------------------------------------

#: how long a new worker may take to start (a spawned interpreter importing NumPy, Pillow and
#: OpenCV: about a second on an idle machine); not part of any call's budget
_START_S = 120.0


class WorkerDied(RuntimeError):
    """The worker process ended during a call (killed by the kernel, or a crash in a C library)."""


class BudgetedWorker:
    """One worker process that runs calls one at a time, each within a wall-time budget.

    ``call(fn, payload, *args, budget_s=...)`` runs ``fn(payload, *args)`` in the worker: ``fn``
    must be picklable (a module-level function), ``payload`` (bytes) is sent as it is, unpickled,
    and the result or the exception comes back pickled. A call still running after ``budget_s``
    seconds has its worker killed (SIGKILL: a decoder stuck in C code ignores anything gentler)
    and a new one started in its place; the call raises ``TimeoutError`` at once, without waiting
    for the new worker. The worker is spawned (not forked: the caller is a threaded server) at
    the first call, and ``warm`` (a picklable function of no arguments) runs in it first, so
    imports do not count against the first call's budget. For one caller at a time (a lock
    serialises calls); thread-safe."""

    def __init__(self, *, warm: Callable[[], object] | None = None) -> None:
        self._warm = warm
        self._lock = threading.Lock()
        self._proc: BaseProcess | None = None
        self._conn: Connection | None = None
        self._ready = False

    def call(self, fn: Callable[..., _R], payload: bytes, *args: Any, budget_s: float) -> _R:
        """``fn(payload, *args)`` in the worker (see the class docstring). Raises what ``fn`` raised,
        ``TimeoutError`` past the budget, ``WorkerDied`` when the worker ends during the call."""
        with self._lock:
            conn = self._started()
            try:
                conn.send((fn, args))
                conn.send_bytes(payload)
                done = conn.poll(budget_s)
            except OSError as exc:  # the worker ended before it took the work
                self._replace()
                raise WorkerDied("the worker process ended before it took the work") from exc
            if not done:
                self._replace()
                raise TimeoutError(f"the work ran past its budget of {budget_s:g} s and was stopped")
            try:
                ok, value = conn.recv()
            except (EOFError, OSError) as exc:
                self._replace()
                raise WorkerDied("the worker process ended during the work") from exc
        if ok:
            return value  # type: ignore[no-any-return]
        raise value

    def start(self) -> None:
        """Start the worker now, if it is not running (it warms up in the background)."""
        with self._lock:
            if self._proc is None or not self._proc.is_alive():
                self._stop()
                self._spawn()

    def close(self) -> None:
        """Stop the worker (a call in progress in another thread raises ``WorkerDied``)."""
        with self._lock:
            self._stop()

    def _started(self) -> Connection:
        """The connection to a running, warmed-up worker, starting one if needed."""
        if self._proc is None or not self._proc.is_alive():
            self._stop()
            self._spawn()
        assert self._conn is not None
        if not self._ready:
            if not self._conn.poll(_START_S):
                self._stop()
                raise WorkerDied(f"the worker process did not start within {_START_S:g} s")
            try:
                self._conn.recv()  # its "ready"
            except (EOFError, OSError) as exc:
                self._stop()
                raise WorkerDied("the worker process ended as it started") from exc
            self._ready = True
        return self._conn

    def _spawn(self) -> None:
        parent, child = multiprocessing.get_context("spawn").Pipe()
        # ``warm`` travels pickled, to be unpickled (importing its module) only once the worker
        # watches its parent: a worker killed while importing must not outlive its parent
        warm = pickle.dumps(self._warm)
        proc = multiprocessing.get_context("spawn").Process(
            target=_serve_calls, args=(child, os.getpid(), warm), name="lookalike-budgeted", daemon=True
        )
        proc.start()
        child.close()
        self._proc, self._conn, self._ready = proc, parent, False

    def _replace(self) -> None:
        """Kill the worker and start another now, so that it warms up while the caller answers."""
        self._stop()
        self._spawn()

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn, self._ready = None, None, False


def _serve_calls(conn: Connection, parent: int, warm_pickled: bytes) -> None:
    """The worker's loop: ``(fn, args)`` then the payload, answered ``(True, result)`` or
    ``(False, exception)``, until the connection closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the server's to handle; it stops us
    # the kernel signal comes when the thread that spawned us ends: a server's main thread or one
    # of its picture threads, which live as long as the server does
    die_with_parent(parent)
    warm: Callable[[], object] | None = pickle.loads(warm_pickled)
    if warm is not None:
        warm()
    conn.send("ready")
    while True:
        try:
            fn, args = conn.recv()
            payload = conn.recv_bytes()
        except (EOFError, OSError):
            return
        try:
            answer: tuple[bool, object] = (True, fn(payload, *args))
        except Exception as exc:  # noqa: BLE001 - handed to the caller, which raises it
            answer = (False, exc)
        try:
            conn.send(answer)
        except Exception as exc:  # noqa: BLE001 - an exception (or result) that does not pickle
            conn.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
