"""Where the stages run: in this process (``SerialRunner``) or on a Dask cluster (``DaskRunner``).

A runner maps a module-level function over argument tuples and yields each result as it is done;
the stages never see Dask. ``DaskRunner`` is the only place that imports ``dask.distributed``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, Protocol

from lookalike.errors import ConfigError

__all__ = ["DaskRunner", "Runner", "SerialRunner", "open_runner"]


class Runner(Protocol):
    """Runs tasks and yields (key, result) pairs as they finish, in no particular order."""

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[str, Any]]:
        """``fn(*args)`` for each ``(key, args)`` of ``tasks``."""
        ...

    def close(self) -> None:
        """Let go of what the runner started."""
        ...


class SerialRunner:
    """Every task in this process, one after another."""

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[str, Any]]:
        """``fn(*args)`` for each task, in order."""
        for key, args in tasks:
            yield key, fn(*args)

    def close(self) -> None:
        """Nothing to let go of."""


class DaskRunner:
    """Tasks on a Dask cluster: ``local:N`` starts a ``LocalCluster`` of N single-threaded worker
    processes (closed again by ``close``), ``tcp://HOST:PORT`` connects to a running scheduler."""

    def __init__(self, cluster: str | Any) -> None:
        try:
            from dask.distributed import Client, LocalCluster
        except ImportError as exc:
            raise ConfigError("--cluster needs Dask: pip install 'lookalike[dask]'") from exc
        self._cluster: Any = None
        if not isinstance(cluster, str):
            self._client: Any = cluster  # a Client the caller owns
            self._owned = False
            return
        self._owned = True
        if cluster.startswith("local:"):
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
                self._client = Client(cluster, timeout="30s")  # type: ignore[no-untyped-call]
            except OSError as exc:
                raise ConfigError(f"--cluster {cluster}: cannot reach the scheduler ({exc})") from exc
        else:
            raise ConfigError(f"--cluster {cluster!r}: expected local:N or tcp://HOST:PORT")

    def map(self, fn: Callable[..., Any], tasks: Sequence[tuple[str, tuple[Any, ...]]]) -> Iterator[tuple[str, Any]]:
        """Submit every task, then yield results as they finish (a failed task raises here)."""
        from dask.distributed import as_completed

        futures = {self._client.submit(fn, *args, key=key, pure=False): key for key, args in tasks}
        try:
            for fut in as_completed(futures):  # type: ignore[no-untyped-call]
                yield futures[fut], fut.result()
        finally:
            for fut in futures:
                fut.release()

    def close(self) -> None:
        """Close the client, and the local cluster when this runner started it."""
        if self._owned:
            self._client.close()
            if self._cluster is not None:
                self._cluster.close()


def open_runner(cluster: str | Any | None) -> Runner:
    """The runner for a ``--cluster`` value (None: this process)."""
    return SerialRunner() if cluster is None else DaskRunner(cluster)
