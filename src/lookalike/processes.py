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
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["die_with_parent", "ordered_map", "worker_pool"]

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
