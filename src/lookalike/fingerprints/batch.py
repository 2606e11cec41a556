"""Fingerprinting many files, in parallel processes when asked."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from lookalike.config import DecodeLimits
from lookalike.errors import InputError
from lookalike.fingerprints.compute import fingerprint
from lookalike.fingerprints.model import Fingerprint

__all__ = ["FileResult", "default_jobs", "fingerprint_files"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's fingerprint, or the error that stopped it (``error_code``, ``error``)."""

    path: Path
    fingerprint: Fingerprint | None = None
    error_code: str = ""
    error: str = ""


def default_jobs() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _one(args: tuple[Path, DecodeLimits]) -> FileResult:
    path, limits = args
    try:
        return FileResult(path=path, fingerprint=fingerprint(path, limits=limits))
    except InputError as err:
        return FileResult(path=path, error_code=err.code, error=str(err))


def fingerprint_files(
    paths: Iterable[Path], *, jobs: int = 1, limits: DecodeLimits | None = None
) -> Iterator[FileResult]:
    """Fingerprint each path, yielding results in the order of ``paths``.

    With ``jobs`` > 1 the work runs in that many processes. A file that cannot
    be read or decoded yields a result with its error; the rest go on.
    """
    limits = limits or DecodeLimits()
    work = ((p, limits) for p in paths)
    if jobs <= 1:
        yield from map(_one, work)
        return
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        yield from pool.map(_one, work, chunksize=8)
