"""Checking many files against one index, with every core.

A check is decoding, hashing, and — for the queries the hashes cannot settle —
local features and their verification; all of it is CPU work of similar
size. So each worker process opens the index itself (its in-memory structures
are rebuilt from the database, as any process's are) and runs whole checks;
the caller receives small results, in the order of the inputs. Memory: each
worker holds its own in-memory index (``Index.memory_bytes``).
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lookalike.config import DecodeLimits, FetchLimits, Thresholds
from lookalike.decode import read_source
from lookalike.errors import InputError
from lookalike.fingerprints import analyse
from lookalike.index.collection import CheckResult, Index

__all__ = ["FileCheck", "check_files"]


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One input's check result, or the error that stopped it."""

    source: str
    result: CheckResult | None = None
    error_code: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class _Settings:
    db: str
    scope: str
    top: int
    limits: DecodeLimits
    fetch: FetchLimits | None
    thresholds: Thresholds


_worker_index: Index | None = None


def _open(settings: _Settings) -> Index:
    return Index(
        settings.db, limits=settings.limits, fetch=settings.fetch, thresholds=settings.thresholds, create=False
    )


def _start_worker(settings: _Settings) -> None:
    global _worker_index
    _worker_index = _open(settings)


def _check_one(index: Index, source: str, settings: _Settings) -> FileCheck:
    try:
        src = read_source(source, max_bytes=settings.limits.max_bytes, fetch=settings.fetch)
        analysis = analyse(src.data, name=src.name, limits=settings.limits)
        return FileCheck(source, result=index.check_analysis(analysis, scope=settings.scope, top=settings.top))
    except InputError as err:
        return FileCheck(source, error_code=err.code, error=str(err))


def _in_worker(source: str, settings: _Settings) -> FileCheck:
    assert _worker_index is not None, "worker started without its index"
    return _check_one(_worker_index, source, settings)


def check_files(
    db: str | os.PathLike[str],
    sources: Iterable[str | Path],
    *,
    scope: str,
    top: int = 10,
    jobs: int = 1,
    limits: DecodeLimits | None = None,
    fetch: FetchLimits | None = None,
    thresholds: Thresholds | None = None,
) -> Iterator[FileCheck]:
    """Check each source (a path or URL) against the index at ``db``, yielding results in order.

    With ``jobs`` > 1, that many processes each open the index and run whole checks. An input
    that cannot be read or decoded yields its error; the rest go on. Raises ``NotFound`` when
    there is no index at ``db`` and ``StoreError`` when it cannot be opened.
    """
    settings = _Settings(str(db), scope, top, limits or DecodeLimits(), fetch, thresholds or Thresholds())
    items = (str(s) for s in sources)
    if jobs <= 1:
        with _open(settings) as index:
            for source in items:
                yield _check_one(index, source, settings)
        return
    _open(settings).close()  # fail here, once, rather than in every worker
    window = 8 * jobs  # results wait in memory only while the consumer is this far behind
    with ProcessPoolExecutor(max_workers=jobs, initializer=_start_worker, initargs=(settings,)) as pool:
        pending: deque[Future[FileCheck]] = deque()
        for source in items:
            pending.append(pool.submit(_in_worker, source, settings))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
