"""Checking many files against one index, with every core.

A check is decoding, hashing, and — for the queries the hashes cannot settle —
local features and their verification; all of it is CPU work of similar
size. So each worker process opens the index itself (its in-memory structures
are rebuilt from the database, as any process's are) and runs whole checks;
the caller receives small results, in the order of the inputs. Memory: each
worker holds its own in-memory index (``Index.memory_bytes``).

``check_files`` checks new pictures (paths or URLs). ``check_stored`` checks
files already in the index against the rest of their scope (every other
image), from what the index keeps of them: no decode, except the full-size one
that settles ``same_pixels``. The caller passes each file's 64 x 64 colour
grid, which the index does not keep, so that flipped and turned copies are
scored on every hash as in a check.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits, FetchLimits, Thresholds
from lookalike.decode import read_file, read_source
from lookalike.errors import FetchError, FileError, InputError, LookalikeError, TooLarge
from lookalike.fingerprints import analyse
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index.collection import Index
from lookalike.index.results import CheckResult
from lookalike.learned import requested_embedder
from lookalike.match import Query, Verdict
from lookalike.processes import ordered_map

__all__ = ["FileCheck", "PeerMatch", "StoredCheck", "StoredQuery", "check_files", "check_stored"]


@dataclass(frozen=True, slots=True)
class FileCheck:
    """One input's check result, or the error that stopped it."""

    source: str
    result: CheckResult | None = None
    error: FileError | None = None


@dataclass(frozen=True, slots=True)
class _Settings:
    db: str
    scope: str
    top: int
    limits: DecodeLimits
    fetch: FetchLimits | None
    thresholds: Thresholds
    #: the learned tier: off (False), or on with the built-in encoder (None) or a user's model
    learned: bool = False
    model: str | None = None


_worker_index: Index | None = None
_Item = TypeVar("_Item")
_Out = TypeVar("_Out")


def _open(settings: _Settings) -> Index:
    return Index(
        settings.db, limits=settings.limits, fetch=settings.fetch, thresholds=settings.thresholds, create=False,
        embedder=requested_embedder(settings.learned, settings.model),
    )  # fmt: skip


def _start_worker(settings: _Settings) -> None:
    global _worker_index
    _worker_index = _open(settings)


def _check_one(index: Index, source: str, settings: _Settings) -> FileCheck:
    try:
        src = read_source(source, max_bytes=settings.limits.max_bytes, fetch=settings.fetch)
        analysis = analyse(src.data, name=src.name, limits=settings.limits)
        return FileCheck(source, result=index.check_analysis(analysis, scope=settings.scope, top=settings.top))
    except InputError as err:
        return FileCheck(source, error=FileError.of(source, err))
    except LookalikeError:
        raise  # the index or its settings: not this input's fault, and no run can go on without them
    except Exception as exc:  # noqa: BLE001 - one input's failure is its error row; the run goes on
        return FileCheck(source, error=FileError.of(source, exc))


def _in_worker(one: Callable[[Index, _Item, _Settings], _Out], item: _Item, settings: _Settings) -> _Out:
    assert _worker_index is not None, "worker started without its index"
    return one(_worker_index, item, settings)


def _checks(
    one: Callable[[Index, _Item, _Settings], _Out], items: Iterable[_Item], jobs: int, settings: _Settings
) -> Iterator[_Out]:
    """``one(index, item, settings)`` of each item, in order: here, or in ``jobs`` processes that
    each open the index."""
    if jobs <= 1:
        with _open(settings) as index:
            for item in items:
                yield one(index, item, settings)
        return
    _open(settings).close()  # fail here, once, rather than in every worker
    yield from ordered_map(
        partial(_in_worker, one, settings=settings), items, jobs=jobs, initializer=_start_worker, initargs=(settings,)
    )


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
    learned: bool = False,
    model: str | os.PathLike[str] | None = None,
) -> Iterator[FileCheck]:
    """Check each source (a path or URL) against the index at ``db``, yielding results in order.

    With ``jobs`` > 1, that many processes each open the index and run whole checks. An input
    that cannot be read or decoded yields its error; the rest go on. ``learned``/``model``: fuse
    the learned tier in (each process loads the encoder: ``lookalike.learned.load_embedder``).
    Raises ``NotFound`` when there is no index at ``db``, ``StoreError`` when it cannot be opened
    and ``ConfigError`` when the learned tier is asked for without its extra.
    """
    settings = _Settings(
        str(db), scope, top, limits or DecodeLimits(), fetch, thresholds or Thresholds(),
        learned or model is not None, None if model is None else str(model),
    )  # fmt: skip
    return _checks(_check_one, (str(s) for s in sources), jobs, settings)


@dataclass(frozen=True, slots=True)
class StoredQuery:
    """A file already in the index, to check against the rest of its scope: its row, and its
    64 x 64 x 3 colour grid (``Analysis.grid``; None scores flips and turns by pHash alone)."""

    file_pk: int
    grid: npt.NDArray[np.float64] | None = None


@dataclass(frozen=True, slots=True)
class PeerMatch:
    """A file of another image that a stored file matches: the other row and image, the cascade's
    score, verdict and explanation, the pHash bits between the two under the best flip or turn,
    and whether local-feature verification gave the score (it found or raised the match)."""

    file_pk: int
    image_pk: int
    score: float
    verdict: Verdict
    explanation: str
    phash_bits: int
    by_local_features: bool


@dataclass(frozen=True, slots=True)
class StoredCheck:
    """A stored file's image and its matches among the other images of its scope, best first
    (``different`` ones left out); no image and no matches when the row is gone."""

    file_pk: int
    image_pk: int | None
    matches: tuple[PeerMatch, ...] = ()


def _check_stored_one(index: Index, item: StoredQuery, settings: _Settings) -> StoredCheck:
    """``Index.check_analysis`` for a stored file, with its own image left out of every stage (it
    would match itself as identical and cut the cascade short)."""
    index.refresh()
    found = index.files([item.file_pk])
    if not found:
        return StoredCheck(item.file_pk, None)
    f = found[0]
    fp = f.fingerprint
    query = Query(fp, item.grid, _bytes_if_unchanged(f.source, fp.sha256, settings.limits.max_bytes))
    stored = index.local_features([f.pk]).get(f.pk)
    local = LocalFeatures.from_bytes(stored) if stored else _no_features(fp.width / max(1, fp.height))
    matches = index.check_query(query, local, scope=f.scope, exclude_image=f.image_pk)
    peers = tuple(
        PeerMatch(m.file.pk, m.file.image_pk, m.score, m.verdict, m.explanation,
                  fp.dihedral_distance_bits(m.file.fingerprint)[0], m.by_local_features)
        for m in matches[: settings.top]
        if m.verdict is not Verdict.DIFFERENT
    )  # fmt: skip
    return StoredCheck(f.pk, f.image_pk, peers)


def _bytes_if_unchanged(source: str, sha256: bytes, max_bytes: int) -> bytes:
    """The file's bytes when it still holds what was stored (for the pixel digest), else none."""
    try:
        data = read_file(source, max_bytes=max_bytes)
    except (FetchError, TooLarge):
        return b""
    return data if hashlib.sha256(data).digest() == sha256 else b""


def _no_features(aspect: float) -> LocalFeatures:
    return LocalFeatures(
        points=np.zeros((0, 2), np.float32), descriptors=np.zeros((0, 32), np.uint8), aspect=aspect or 1.0
    )


def check_stored(
    db: str | os.PathLike[str],
    items: Iterable[StoredQuery],
    *,
    scope: str,
    top: int = 10,
    jobs: int = 1,
    limits: DecodeLimits | None = None,
    thresholds: Thresholds | None = None,
) -> Iterator[StoredCheck]:
    """Check each stored file against every other image of ``scope`` (the full cascade, as
    ``check_files``), yielding results in order; ``top`` matches at most each.

    With ``jobs`` > 1, that many processes each open the index. Raises ``NotFound`` when there is
    no index at ``db`` and ``StoreError`` when it cannot be opened.
    """
    settings = _Settings(str(db), scope, top, limits or DecodeLimits(), None, thresholds or Thresholds())
    return _checks(_check_stored_one, items, jobs, settings)
