"""Fingerprinting many files, in parallel processes when asked."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits
from lookalike.decode import read_source
from lookalike.errors import FileError, InputError
from lookalike.fingerprints.compute import Analysis, analyse
from lookalike.fingerprints.local import LocalFeatures
from lookalike.fingerprints.model import Fingerprint
from lookalike.processes import ordered_map

__all__ = ["FileResult", "analyse_files", "default_jobs", "fingerprint_files"]


@dataclass(frozen=True, slots=True)
class FileResult:
    """One file's fingerprint (and analysis, when asked for), or the error that stopped it."""

    path: Path
    fingerprint: Fingerprint | None = None
    analysis: Analysis | None = None
    error: FileError | None = None
    #: what ``analyse_files(embed=...)`` computed from the decoded pixels (the learned tier's vector)
    vector: npt.NDArray[np.float16] | None = None
    #: what ``analyse_files(query=...)`` computed from them (the features a check matches with)
    query_local: LocalFeatures | None = None


#: functions of a file's decoded working-size pixels run where it is decoded (``analyse_files``)
Embed = Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float16]]
QueryLocal = Callable[[npt.NDArray[np.uint8]], LocalFeatures]


def default_jobs() -> int:
    """All the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


#: what an analysis holds for pixels when they are not sent back (``analyse_files(pixels=False)``)
_NO_PIXELS = np.zeros((0, 0, 3), np.uint8)


def _one(args: tuple[Path, DecodeLimits, bool, bool, bool, Embed | None, QueryLocal | None]) -> FileResult:
    path, limits, keep, pixels, local, embed, query = args
    try:
        src = read_source(path, max_bytes=limits.max_bytes)
        a = analyse(src.data, name=src.name, limits=limits, local=local)
        vector = None if embed is None else embed(a.image.pixels)
        features = None if query is None else query(a.image.pixels)
        if not pixels:
            a = replace(a, image=replace(a.image, pixels=_NO_PIXELS))
        return FileResult(path, a.fingerprint, a if keep else None, vector=vector, query_local=features)
    except InputError as err:
        return FileResult(path=path, error=FileError.of(path, err))
    except Exception as exc:  # noqa: BLE001 - one file's failure is its error row; the run goes on
        return FileResult(path=path, error=FileError.of(path, exc))


def _run(
    paths: Iterable[Path], jobs: int, limits: DecodeLimits | None, keep: bool, local: bool = False,
    embed: Embed | None = None, query: QueryLocal | None = None, pixels: bool = True,
) -> Iterator[FileResult]:  # fmt: skip
    work = ((p, limits or DecodeLimits(), keep, pixels, local, embed, query) for p in paths)
    if jobs <= 1:
        yield from map(_one, work)
        return
    _warm_before_forking(local, embed, query)
    yield from ordered_map(_one, work, jobs=jobs)


def _warm_before_forking(local: bool, embed: Embed | None, query: QueryLocal | None) -> None:
    """Run each step once here, on a small picture, when the workers are to be forked from this
    process: they inherit the loaded encoder and the compiled kernels instead of each loading them
    (about 1.3 s of CPU a worker with the learned tier: 2.96 -> 0.27 s for two workers on six
    files), which is most of what the workers add to a short run. A spawned worker starts afresh
    whatever this process holds, so then nothing is run here."""
    if multiprocessing.get_start_method() != "fork":
        return
    from lookalike.fingerprints.isolated import sample_png  # only here: the service imports it alone

    try:
        pixels = analyse(sample_png(), name="warm-up", local=local).image.pixels
        if embed is not None:
            embed(pixels)
        if query is not None:
            query(pixels)
    except Exception:  # noqa: BLE001 - a step that fails here fails in each worker, which reports it per file
        return


def fingerprint_files(
    paths: Iterable[Path], *, jobs: int = 1, limits: DecodeLimits | None = None
) -> Iterator[FileResult]:
    """Fingerprint each path, yielding results in the order of ``paths``.

    With ``jobs`` > 1 the work runs in that many processes. A file that cannot
    be read or decoded yields a result with its error; the rest go on.
    """
    return _run(paths, jobs, limits, keep=False)


def analyse_files(
    paths: Iterable[Path], *, jobs: int = 1, limits: DecodeLimits | None = None, local: bool = False,
    embed: Embed | None = None, query: QueryLocal | None = None, pixels: bool = True,
) -> Iterator[FileResult]:  # fmt: skip
    """``fingerprint_files``, keeping each ``Analysis`` (pixels and bytes) for matching; with
    ``local``, also the local features a stored file keeps; with ``embed`` (a picklable function:
    the learned tier's encoder, ``learned.isolated.embed_pixels``), its result of the decoded pixels
    as ``FileResult.vector``, and with ``query`` (``match.local.query_features``) the features its
    check matches with as ``FileResult.query_local``. All computed in the worker processes. Without
    ``pixels``, each analysis comes back with an empty (0, 0, 3) array for its decoded pixels: for a
    caller that has what it needs of them (``local``, ``embed``, ``query``), as they are most of a
    result's bytes (about 0.5 MB), which a worker pickles and the caller's process unpickles."""
    return _run(paths, jobs, limits, keep=True, local=local, embed=embed, query=query, pixels=pixels)
