"""Where the stages run: in this process (``SerialRunner``) or on a Dask cluster (``DaskRunner``).

A runner maps a module-level function over argument tuples and yields each result as it is done;
the stages never see Dask. ``DaskRunner`` is the only place that imports ``dask.distributed``.

A cluster fails a run in a few ways, and each ends it within seconds with a ``ClusterError`` that
names the cause and says how to go on (``--resume``, which reuses every finished partition):

- the scheduler or a worker runs without lookalike, or with another version of it: asked of the
  scheduler and of every worker when the runner connects, of a worker that joins later as soon as
  the runner sees it (about a second), and by each task of the worker running it; the scheduler
  unpickles tasks and the workers run them, and a worker that cannot unpickle one leaves;
- the scheduler is lost (the client's connection drops), or every worker is gone for
  ``NO_WORKER_S`` seconds;
- a task was running on workers that died ``distributed.scheduler.allowed-failures`` + 1 times
  (``KilledWorker``). A worker that dies once is nothing to report: the scheduler runs its tasks
  again elsewhere, and every task writes its one file by a rename, so running it twice is harmless.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import CancelledError
from typing import Any, Protocol

from lookalike.errors import ClusterError, ConfigError
from lookalike.scale.memory import give_back, use_system_allocator

__all__ = ["RESUME", "DaskRunner", "Runner", "SerialRunner", "call", "open_runner"]

#: how the messages of a failed run end: what to do next
RESUME = "the finished partitions are kept: run the same command again with --resume to go on"
#: seconds to reach a scheduler, and to wait for its first worker
CONNECT_S = 10
WORKER_WAIT_S = 30
#: seconds a run waits with no worker at all before it gives up, and between two looks
NO_WORKER_S = 10
_POLL_S = 1.0
#: seconds between two looks for finished tasks
_WAKE_S = 0.05
#: the workers of this process whose profiler was stopped (``_stop_profiler``)
_QUIET: set[int] = set()
#: what the version probe evaluates on the scheduler and each worker (``eval`` travels by name)
_PROBE = "__import__('lookalike').__version__"


class Runner(Protocol):
    """Runs tasks and yields (key, result) pairs as they finish, in no particular order."""

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[str, Any]]:
        """``fn(*args)`` for each ``(key, args)`` of ``tasks``."""
        ...

    @property
    def workers(self) -> int:
        """Tasks it runs at once (workers now)."""
        ...

    def close(self) -> None:
        """Let go of what the runner started."""
        ...


class SerialRunner:
    """Every task in this process, one after another."""

    workers = 1

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[str, Any]]:
        """``fn(*args)`` for each task, in order."""
        for key, args in tasks:
            yield key, fn(*args)

    def close(self) -> None:
        """Nothing to let go of."""


def _this_version() -> str:
    import lookalike

    return str(lookalike.__version__)


def _versioned(version: str, fn: Callable[..., Any], *args: Any) -> Any:
    """A task: ``fn(*args)`` on a worker that runs lookalike ``version``; raises ``ClusterError`` on
    one that runs another (it joined after the runner asked every worker)."""
    mine = _this_version()
    if mine != version:
        raise ClusterError(_mismatch("a worker", mine, version))
    use_system_allocator()
    _stop_profiler()
    try:
        return fn(*args)
    finally:
        give_back()  # else a worker's resident memory climbs with the tasks it ran


def _stop_profiler() -> None:
    """Stop Dask's statistical profiler on the worker running this task, once, and drop what it
    kept. It samples the running thread's stack every 10 ms and keeps a call tree a second for the
    last ``distributed.admin.low-level-log-length`` (1,000) seconds: a worker's memory then grew
    with the run's length, by 50 MB between fingerprinting 2,000 and 16,000 photos. Its own
    callbacks are stopped on the worker's event loop (they are not thread-safe); the rest of the
    dashboard stays."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:  # not on a worker (a test calls the task itself)
        return
    if id(worker) in _QUIET:
        return
    _QUIET.add(id(worker))

    def stop() -> None:
        for name in ("profile", "profile-cycle"):
            callback = worker.periodic_callbacks.pop(name, None)
            if callback is not None:
                callback.stop()
        worker.profile_history.clear()
        worker.profile_keys_history.clear()
        worker.profile_keys.clear()

    worker.loop.add_callback(stop)


def _mismatch(who: str, theirs: str, mine: str) -> str:
    return (
        f"{who} runs lookalike {theirs}, this client {mine}: install the same version on the client, the"
        f" scheduler and every worker (see the README, 'Workers'); {RESUME}"
    )


def _missing(who: str, exc: BaseException) -> str:
    return (
        f"{who} cannot import lookalike ({type(exc).__name__}: {exc}): install lookalike[dask] in the"
        f" scheduler's and every worker's environment, or run them from the image of the Dockerfile; {RESUME}"
    )


class DaskRunner:
    """Tasks on a Dask cluster: ``local:N`` starts a ``LocalCluster`` of N single-threaded worker
    processes (closed again by ``close``), ``tcp://HOST:PORT`` connects to a running scheduler,
    and a ``distributed.Client`` is used as it is. ``dashboard`` is the dashboard's address, when
    the scheduler serves one.

    Raises ``ConfigError`` for a ``cluster`` it cannot read, ``ClusterError`` for a scheduler it
    cannot reach, one without workers, or one whose scheduler or workers cannot run this version."""

    def __init__(self, cluster: str | Any) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError("--cluster needs Dask: pip install 'lookalike[dask]'") from exc
        self._cluster: Any = None
        self._version = _this_version()
        self._asked: set[str] = set()  # workers whose version was asked (all of a local cluster's)
        self._owned = isinstance(cluster, str)
        if not isinstance(cluster, str):
            self._client: Any = cluster  # a Client the caller owns
        elif cluster.startswith("local:"):
            try:
                n = int(cluster[len("local:") :])
            except ValueError:
                n = 0
            if n < 1:
                raise ConfigError(f"--cluster {cluster!r}: expected local:N with N >= 1 workers")
            self._cluster = LocalCluster(  # type: ignore[no-untyped-call]
                n_workers=n, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
            )
            self._client = Client(self._cluster)  # type: ignore[no-untyped-call]
        elif cluster.startswith(("tcp://", "tls://")):
            try:
                self._client = Client(cluster, timeout=f"{CONNECT_S}s")  # type: ignore[no-untyped-call]
            except (OSError, TimeoutError) as exc:
                raise ClusterError(f"--cluster {cluster}: cannot reach the scheduler ({exc})") from exc
        else:
            raise ConfigError(f"--cluster {cluster!r}: expected local:N or tcp://HOST:PORT")
        try:
            if self._cluster is None:  # processes of another environment: ask them what they run
                self._check_versions()
        except BaseException:
            self.close()
            raise
        self.dashboard = self._dashboard()

    @property
    def workers(self) -> int:
        """The workers the scheduler has now (at least 1)."""
        try:
            return max(1, len(self._client.scheduler_info().get("workers", {})))
        except (KeyError, OSError):
            return 1

    def _dashboard(self) -> str | None:
        try:
            served = "dashboard" in self._client.scheduler_info()["services"]
            return str(self._client.dashboard_link) if served else None
        except (KeyError, OSError):
            return None

    def _check_versions(self) -> None:
        """Refuse a scheduler or a worker that cannot import lookalike or runs another version."""
        try:
            theirs = self._client.run_on_scheduler(eval, _PROBE)
        except ImportError as exc:
            raise ClusterError(_missing("the scheduler", exc)) from exc
        if theirs != self._version:
            raise ClusterError(_mismatch("the scheduler", theirs, self._version))
        try:
            self._client.wait_for_workers(1, timeout=WORKER_WAIT_S)
        except TimeoutError as exc:
            raise ClusterError(
                f"the scheduler has had no worker for {WORKER_WAIT_S} s: start some with"
                f" `dask worker {self._client.scheduler.address}`"
            ) from exc
        self._check_workers()

    def _check_workers(self) -> None:
        """Refuse a worker not asked before that cannot import lookalike or runs another version."""
        new = [w for w in self._client.scheduler_info().get("workers", {}) if w not in self._asked]
        if not new:
            return
        self._asked.update(new)
        for address, answer in sorted(self._client.run(eval, _PROBE, workers=new, on_error="return").items()):
            if isinstance(answer, OSError):  # it left while asked (a worker killed by a task it ran):
                continue  # its nanny's new worker has another address, and is asked in turn
            if isinstance(answer, BaseException):
                raise ClusterError(_missing(f"worker {address}", answer))
            if answer != self._version:
                raise ClusterError(_mismatch(f"worker {address}", answer, self._version))

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[str, Any]]:
        """Submit every task, then yield results as they finish. A task that failed raises its
        error here; a cluster that failed the run raises ``ClusterError`` within seconds."""
        from dask.distributed import as_completed

        futures = {
            self._client.submit(_versioned, self._version, fn, *args, key=key, pure=False): key for key, args in tasks
        }
        # as_completed watches each future once; ``wait(pending, timeout=...)`` in a loop would
        # leave a watcher a pending future each call (Dask cancels the wait, not its watchers):
        # the client's memory grew with pending tasks x seconds (7 MB a minute, 63 tasks pending)
        finished = as_completed(list(futures))  # type: ignore[no-untyped-call]
        alone_since: float | None = None
        looked = time.monotonic()
        try:
            while not finished.is_empty():  # type: ignore[no-untyped-call]
                done = finished.next_batch(block=False)  # type: ignore[no-untyped-call]
                for fut in done:  # a future cancelled with a lost scheduler raises ClusterError here
                    key = futures.pop(fut)
                    result = self._result(fut, key)
                    # let go of it now: a worker keeps every task a client still holds (its
                    # arguments and bookkeeping), so memory a worker grew with the tasks run
                    fut.release()
                    yield key, result
                if done:
                    continue
                if time.monotonic() - looked >= _POLL_S:
                    alone_since, looked = self._check_alive(alone_since), time.monotonic()
                time.sleep(_WAKE_S)
        finally:
            for fut in futures:
                fut.release()

    def _lost(self) -> bool:
        return bool(self._client.status not in ("running", "newly-created"))

    def _check_alive(self, alone_since: float | None) -> float | None:
        """Raise ``ClusterError`` when the scheduler is lost or no worker has been left for
        ``NO_WORKER_S``; returns since when there has been no worker (None: there is one)."""
        if self._lost():
            raise ClusterError(f"lost the scheduler (the client is {self._client.status}); {RESUME}")
        if self._cluster is None:
            self._check_workers()  # one that joined since
        if self._client.scheduler_info().get("workers"):
            return None
        now = time.monotonic()
        if alone_since is not None and now - alone_since > NO_WORKER_S:
            raise ClusterError(f"no worker left on the scheduler for {NO_WORKER_S} s (they died or stopped); {RESUME}")
        return alone_since if alone_since is not None else now

    def _result(self, fut: Any, key: str) -> Any:
        """A finished task's result, its cluster failures told as ``ClusterError``. Fetching it can
        wait for ever: a result held by a worker that died is computed again, and with no worker
        left never is; so it is fetched a second at a time, looking at the cluster in between."""
        from distributed.comm.core import CommClosedError
        from distributed.scheduler import KilledWorker

        alone_since: float | None = None
        try:
            while True:
                try:
                    return fut.result(timeout=None if fut.status == "error" else _POLL_S)
                except TimeoutError:
                    if fut.status == "error":  # the task's own TimeoutError
                        raise
                    alone_since = self._check_alive(alone_since)
        except KilledWorker as exc:
            raise ClusterError(
                f"task {key}: the workers running it died one after another (KilledWorker); the workers' logs say"
                f" why (out of memory?); {RESUME}"
            ) from exc
        except ImportError as exc:
            raise ClusterError(_missing("a worker", exc)) from exc
        except (CancelledError, OSError) as exc:
            if self._lost() or isinstance(exc, CommClosedError):
                raise ClusterError(f"lost the scheduler while running {key} ({type(exc).__name__}); {RESUME}") from exc
            raise

    def close(self) -> None:
        """Close the client, and the local cluster when this runner started it."""
        if self._owned:
            self._client.close(timeout=CONNECT_S)
            if self._cluster is not None:
                self._cluster.close()


def open_runner(cluster: str | Any | None) -> Runner:
    """The runner for a ``--cluster`` value (None: this process); a runner is taken as it is (and
    closed by whoever runs with it)."""
    if cluster is None:
        return SerialRunner()
    if isinstance(cluster, SerialRunner | DaskRunner):
        return cluster
    return DaskRunner(cluster)


def call(fn: Callable[..., Any], *args: Any) -> Any:
    """A task: ``fn(*args)`` (so that one ``map`` call site serves tasks of several functions)."""
    return fn(*args)
