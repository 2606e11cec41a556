"""Folders to duplicate groups: ``find_duplicates``.

1. Walk the folders (``walk.find_files``): each file once, by device and inode, under the path a
   person would use, however many paths (symlinks, hard links, a folder named twice) reach it;
   only regular files (a FIFO is never opened). A path whose size and mtime match the cache is
   not read (``FindCache``).
2. A changed or new path is read; when its SHA-256 is already known, that is all. Otherwise it is
   decoded and fingerprinted with its local features in worker processes (all cores) and added
   to the index scope (no review-on-add: step 2's checks find the same pairs). Then every new
   row is checked, again in worker processes that each open the index, against every other
   image of the scope by the full cascade (``check_stored``: exact bytes, hashes under flips and
   turns, local-feature verification), from what the index keeps of it and its colour grid
   (kept meanwhile in a temporary file, ``_GridSpill``); nothing is decoded twice but for the
   full-size decode that settles ``same_pixels``. A pair of two new rows is checked from both
   ends and keeps the higher score; ``similar`` pairs go to the review list. No N x N matrix is
   ever made; the pairs go to the cache, with the row, and a path is cached once its row is
   checked, so a run cut short checks what it missed next time.
3. Pairs between files of this run, minus those a person marked ``not_duplicate`` (plus those
   marked ``duplicate``), link files whose verdict is a duplicate one (identical, same_pixels,
   near_duplicate; ``similar`` pairs are listed but link nothing). Hash links (judged by the
   hashes, pHashes within ``HASH_LINK_BITS`` under the best flip or turn) build groups as connected components; a pair
   matched by local features alone only attaches a file that has no hash link to a group, and
   never merges two groups: two different pictures that carry the same caption bar, watermark or
   page frame share local features (``link_groups``). ``strict`` splits each group into cliques.
4. Each group's keeper is chosen by the keeper policy (``keeper.py``); files under a ``keep_in``
   folder are always kept.

Memory: a few hundred bytes a file (its path, size and row) plus the index's in-memory hash
index (about 40 bytes a file) in this process and in each worker, and the pairs found; the colour
grids of new files wait on disk (98,304 bytes each, in the temporary folder); nothing quadratic.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits, Thresholds
from lookalike.decode import file_facts, read_source
from lookalike.errors import (
    UNEXPECTED_CODE,
    ConfigError,
    FetchError,
    InputError,
    LookalikeError,
    NotRegularFile,
    unexpected_message,
)
from lookalike.fingerprints import FINGERPRINT_VERSION, Fingerprint, analyse, default_jobs
from lookalike.fingerprints.local import local_features
from lookalike.index import Decision, Index
from lookalike.index.parallel import StoredQuery, check_stored
from lookalike.index.sqlite import NewFile
from lookalike.index.store import is_database_url
from lookalike.match import DUPLICATE_VERDICTS, Verdict
from lookalike.processes import worker_pool
from lookalike.scan.cache import CachedPath, FindCache, RowFacts, StoredPair
from lookalike.scan.groups import cliques, components
from lookalike.scan.keeper import DEFAULT_KEEP, Candidate, KeepCriterion, keep_order
from lookalike.walk import FoundFile, find_files

__all__ = [
    "FIND_SCOPE",
    "FileError",
    "FindOptions",
    "FindResult",
    "FindStats",
    "Group",
    "Member",
    "Pair",
    "find_duplicates",
    "groups_from_links",
]

#: the index scope ``find`` keeps its files in unless told otherwise
FIND_SCOPE = "find"
#: matches asked of each check: a file may have many copies in a folder
_TOP = 200
#: pHash bits (under the best flip or turn) within which a duplicate pair counts as a hash link,
#: which may merge groups (imagededup's default distance threshold is the same 10 of 64 bits)
HASH_LINK_BITS = 10
#: files on each side of the local links that merge two groups (see ``link_groups``); 2 was
#: chosen on the public benchmark (3 gives pair precision 0.995 and recall 0.887 there)
MERGE_FILES = 2
_PERSON = "a person marked these as duplicates"
#: files between two commits of the cache: a crash loses at most this much work
_COMMIT_EVERY = 200

#: ``progress(total, label)`` returns a context manager yielding a function called once per item
#: done: per file read ("reading"), then per new picture checked ("matching")
Progress = Callable[[int, str], AbstractContextManager[Callable[[], None]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FindOptions:
    """How ``find_duplicates`` works (see the module docstring).

    ``link``: the verdicts that put two files in one group. ``rescan``: read every file again
    and rebuild the scope's cache."""

    scope: str = FIND_SCOPE
    jobs: int = 0
    strict: bool = False
    keep: tuple[KeepCriterion, ...] = DEFAULT_KEEP
    keep_in: tuple[str, ...] = ()
    link: frozenset[Verdict] = DUPLICATE_VERDICTS
    rescan: bool = False
    limits: DecodeLimits | None = None
    thresholds: Thresholds | None = None

    def __post_init__(self) -> None:
        if not self.scope:
            raise ConfigError("the scope name must not be empty")
        if Verdict.DIFFERENT in self.link:
            raise ConfigError("'different' pairs cannot link files into groups")


@dataclass(frozen=True, slots=True)
class Member:
    """One file of a group: why it is there (its best link, to the keeper when it has one:
    ``score``, ``verdict``, ``evidence``, and ``match``, the file at the other end) and whether it is kept."""

    path: str
    score: float
    verdict: str
    evidence: str
    match: str
    keep: bool
    width: int
    height: int
    byte_size: int
    mime: str
    taken_at: str | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "path": self.path, "score": round(self.score, 4), "verdict": self.verdict, "evidence": self.evidence,
            "match": self.match, "keep": self.keep, "width": self.width, "height": self.height,
            "bytes": self.byte_size, "mime": self.mime, "taken_at": self.taken_at,
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class Group:
    """Copies of one picture: the keeper's path, and every member (the keeper first)."""

    keep: str
    members: tuple[Member, ...]

    @property
    def removable(self) -> tuple[Member, ...]:
        """The members an action may touch: neither the keeper nor in a keep-in folder."""
        return tuple(m for m in self.members if not m.keep)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"keep": self.keep, "members": [m.to_dict() for m in self.members]}


@dataclass(frozen=True, slots=True)
class Pair:
    """Two files the cascade linked (or a person did)."""

    a: str
    b: str
    score: float
    verdict: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"a": self.a, "b": self.b, "score": round(self.score, 4), "verdict": self.verdict}


@dataclass(frozen=True, slots=True)
class FileError:
    """A file that could not be read, and why."""

    path: str
    code: str
    message: str

    def to_dict(self) -> dict[str, str]:
        """JSON-ready form."""
        return {"path": self.path, "code": self.code, "error": self.message}


@dataclass(frozen=True, slots=True)
class FindStats:
    """Counts of one run."""

    files: int
    read: int
    cached: int
    errors: int
    groups: int
    duplicates: int
    reclaimable_bytes: int
    pairs: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "files": self.files, "read": self.read, "cached": self.cached, "errors": self.errors,
            "groups": self.groups, "duplicates": self.duplicates, "reclaimable_bytes": self.reclaimable_bytes,
            "pairs": self.pairs, "seconds": round(self.seconds, 2),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class FindResult:
    """What ``find_duplicates`` found: groups (largest first), linked pairs, unreadable files, counts."""

    groups: tuple[Group, ...]
    pairs: tuple[Pair, ...]
    errors: tuple[FileError, ...]
    stats: FindStats
    roots: tuple[str, ...] = field(default=())
    #: files reached through more than one path (symlinks, hard links, a folder named twice): each
    #: is listed once, under ``path``, and never acted on as a duplicate of itself
    aliases: tuple[FoundFile, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        """The JSON document of ``lookalike find --json``."""
        return {
            "groups": [g.to_dict() for g in self.groups],
            "pairs": [p.to_dict() for p in self.pairs],
            "stats": self.stats.to_dict(),
            "errors": [e.to_dict() for e in self.errors],
            "aliases": [{"path": a.path, "also": list(a.also)} for a in self.aliases],
        }


@dataclass(slots=True)
class _Seen:
    path: str
    size: int
    mtime_ns: int
    file_pk: int


def matcher_stamp(thresholds: Thresholds) -> str:
    """What the cached pairs depend on: the installed lookalike, the fingerprint version, the thresholds."""
    try:
        installed = version("lookalike")
    except PackageNotFoundError:  # running from a source tree
        installed = "source"
    return (
        f"lookalike {installed}; fingerprint v{FINGERPRINT_VERSION}; {thresholds.near_duplicate}/{thresholds.similar}"
    )


def is_under(path: str, folder: str) -> bool:
    """Whether absolute ``path`` is ``folder`` or inside it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def find_duplicates(
    paths: Sequence[str | os.PathLike[str]],
    *,
    db: str | os.PathLike[str],
    options: FindOptions | None = None,
    progress: Progress | None = None,
) -> FindResult:
    """Groups of copies among the image files under ``paths`` (see the module docstring).

    ``db`` holds the index scope and the cache (an SQLite file; created if missing). Files that
    cannot be read are listed in ``FindResult.errors`` and the rest go on.
    Raises ``StoreError`` when the database is unusable, ``ConfigError`` for bad options.
    """
    opts = options or FindOptions()
    if is_database_url(db):
        raise ConfigError("find keeps its cache in an SQLite file: give --db a file path, not a database URL")
    started = time.perf_counter()
    keep_in = tuple(os.path.abspath(k) for k in opts.keep_in)
    roots = tuple(os.path.abspath(p) for p in paths) + tuple(k for k in keep_in if k not in paths)
    found = find_files(dict.fromkeys(roots))  # one path per file: never a file its own duplicate
    named = [f for f in found.files if _storable(f.path)]
    files = [f.path for f in named]
    aliases = tuple(f for f in named if f.also)
    not_read = [FileError(p, NotRegularFile.code, why) for p, why in found.skipped]
    not_read += [FileError(p, FetchError.code, why) for p, why in found.unreadable]
    not_read += [
        FileError(f.path, FetchError.code, f"{f.path}: the file name is not valid UTF-8 and cannot be kept in the "
                  "cache: not read (rename the file to include it)")
        for f in found.files if not _storable(f.path)
    ]  # fmt: skip
    errors: list[FileError] = []
    seen: list[_Seen] = []
    read = 0
    with Index(db, limits=opts.limits, thresholds=opts.thresholds) as index, FindCache(db) as cache:
        stamp = matcher_stamp(index.thresholds)
        if opts.rescan or cache.stamp() != stamp:
            _forget(index, cache, opts.scope)
            cache.set_stamp(stamp)
        cached = cache.paths(opts.scope)
        stale: list[tuple[str, int, int]] = []
        for path in files:
            try:
                st = os.stat(path)
            except OSError as exc:
                errors.append(FileError(path, "fetch_failed", f"{path}: cannot read ({exc.strerror or exc})"))
                continue
            hit = cached.get(path)
            if hit is not None and hit.size == st.st_size and hit.mtime_ns == st.st_mtime_ns:
                if hit.file_pk is not None:
                    seen.append(_Seen(path, hit.size, hit.mtime_ns, hit.file_pk))
                else:
                    errors.append(FileError(path, hit.error_code, hit.error))
                continue
            stale.append((path, st.st_size, st.st_mtime_ns))
        listed = set(files)
        gone = [p for p in cached if p not in listed and any(is_under(p, r) for r in roots)]
        if gone:
            cache.forget_paths(opts.scope, gone)
        stale = _known_bytes(cache, opts.scope, stale, seen)
        read = len(stale)
        _read_and_match(index, cache, str(db), opts, stale, seen, errors, progress)
        result = _group(index, cache, opts, seen, keep_in, {f.path: f.also for f in aliases})
    groups, pairs = result
    from_cache = len(files) - read - sum(1 for e in errors if e.code == "fetch_failed")
    errors += not_read
    stats = FindStats(
        files=len(files) + len(not_read), read=read, cached=from_cache,
        errors=len(errors), groups=len(groups), duplicates=sum(len(g.removable) for g in groups),
        reclaimable_bytes=sum(m.byte_size for g in groups for m in g.removable), pairs=len(pairs),
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    errors.sort(key=lambda e: e.path)
    return FindResult(
        groups=tuple(groups), pairs=tuple(pairs), errors=tuple(errors), stats=stats, roots=roots, aliases=aliases
    )


def _storable(path: str) -> bool:
    """Whether ``path`` can go into the cache and the index (SQLite text is UTF-8): a name that is
    not UTF-8 reaches Python holding lone surrogates (surrogateescape), which cannot."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _forget(index: Index, cache: FindCache, scope: str) -> None:
    """Empty the scope's cache and remove its index rows, so that every file is read and matched anew."""
    for f in index.store.files(cache.forget_scope(scope)):
        try:
            index.remove(f.image_id, scope=f.scope)
        except LookalikeError:
            pass  # already gone


def _known_bytes(
    cache: FindCache, scope: str, stale: list[tuple[str, int, int]], seen: list[_Seen]
) -> list[tuple[str, int, int]]:
    """Changed or new paths whose bytes are already searched (copied, renamed, touched): one read and a
    SHA-256 each, no decode. Returns the paths still to analyse. Skipped on a scope with nothing in it."""
    if not stale or not cache.has_rows(scope):
        return stale
    left: list[tuple[str, int, int]] = []
    known: list[CachedPath] = []
    for path, size, mtime in stale:
        try:
            # non-blocking and checked: a file swapped for a FIFO since the walk must not hang the run
            with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as fh:
                if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                    raise OSError(f"{path}: not a regular file")
                digest = hashlib.file_digest(fh, "sha256").digest()
        except OSError:
            left.append((path, size, mtime))  # reading it again reports the error
            continue
        row = cache.row_by_sha(scope, digest)
        if row is None:
            left.append((path, size, mtime))
            continue
        seen.append(_Seen(path, size, mtime, row.file_pk))
        known.append(CachedPath(path, size, mtime, row.file_pk))
    if known:
        cache.put_paths(scope, known)
    return left


@dataclass(frozen=True, slots=True)
class _Read:
    """What the main process needs of one analysed file (not its pixels or bytes), or its error."""

    path: str
    fingerprint: Fingerprint | None = None
    local: bytes = b""
    grid: npt.NDArray[np.float64] | None = None
    lossless: bool = False
    taken_at: str | None = None
    error_code: str = ""
    error: str = ""


def _read_one(path: str, limits: DecodeLimits) -> _Read:
    """Decode and analyse one file (in a worker process): fingerprint, local features, colour grid, facts."""
    try:
        src = read_source(Path(path), max_bytes=limits.max_bytes)
        a = analyse(src.data, name=src.name, limits=limits, local=True)
        facts = file_facts(a.data, a.fingerprint.mime)
        local = (a.local or local_features(a.image.pixels)).to_bytes()
    except InputError as err:
        return _Read(path, error_code=err.code, error=str(err))
    except Exception as exc:  # noqa: BLE001 - one file's failure is its error row; the run goes on
        return _Read(path, error_code=UNEXPECTED_CODE, error=unexpected_message(path, exc))
    return _Read(path, a.fingerprint, local, a.grid, facts.lossless, facts.taken_at)


def _read_files(paths: list[str], jobs: int, limits: DecodeLimits) -> Iterator[_Read]:
    """``_read_one`` of each path, in order, in ``jobs`` processes with a bounded window in flight."""
    if jobs <= 1:
        yield from (_read_one(p, limits) for p in paths)
        return
    window = 8 * jobs
    with worker_pool(jobs) as pool:
        pending: deque[Future[_Read]] = deque()
        for p in paths:
            pending.append(pool.submit(_read_one, p, limits))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _GridSpill:
    """The colour grids of the files waiting for their check (98 KB each), in a temporary file
    rather than in memory, so that memory does not grow by that much a file."""

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile(prefix="lookalike-find-")
        self._shape: tuple[int, ...] | None = None
        self._count = 0

    def __enter__(self) -> _GridSpill:
        return self

    def __exit__(self, *exc: object) -> None:
        self._file.close()

    def put(self, grid: npt.NDArray[np.float64]) -> int:
        """Keep ``grid``; returns its slot."""
        if self._shape is None:
            self._shape = grid.shape
        if grid.shape != self._shape:
            raise ValueError(f"colour grids differ in shape: {grid.shape} and {self._shape}")
        data = np.ascontiguousarray(grid, dtype=np.float64).tobytes()
        os.pwrite(self._file.fileno(), data, self._count * len(data))
        self._count += 1
        return self._count - 1

    def get(self, slot: int) -> npt.NDArray[np.float64]:
        """The grid kept in ``slot``."""
        assert self._shape is not None, "no grid was kept"
        size = 8 * int(np.prod(self._shape))
        data = os.pread(self._file.fileno(), size, slot * size)
        return np.frombuffer(data, dtype=np.float64).reshape(self._shape)


@dataclass(slots=True)
class _Unchecked:
    """A new index row waiting for its check: its facts, its grid's slot, the paths that hold it."""

    facts: RowFacts
    slot: int
    paths: list[CachedPath]


def _read_and_match(
    index: Index,
    cache: FindCache,
    db: str,
    opts: FindOptions,
    stale: list[tuple[str, int, int]],
    seen: list[_Seen],
    errors: list[FileError],
    progress: Progress | None,
) -> None:
    """Read the stale files and add them to the index, then check each new row against every
    other image of the scope, committing the cache as it goes (see the module docstring).

    A path is cached only once its row has been checked, so that a run cut short reads the
    unchecked files again and checks them then."""
    scope = opts.scope
    jobs = opts.jobs or default_jobs()
    done_rows: set[int] = set(cache.rows_in_scope(scope)) if stale else set()
    unchecked: dict[int, _Unchecked] = {}
    meta = {p: (size, mtime) for p, size, mtime in stale}
    with _GridSpill() as grids:

        def store(batch: list[_Read]) -> None:
            ready: list[CachedPath] = []
            good = [r for r in batch if r.fingerprint is not None]
            added = index.store.add_files(
                NewFile(fingerprint=r.fingerprint, scope=scope, source=r.path, local=r.local)
                for r in good
                if r.fingerprint is not None
            )
            for r in batch:
                size, mtime = meta[r.path]
                if r.fingerprint is None:
                    errors.append(FileError(r.path, r.error_code, r.error))
                    ready.append(CachedPath(r.path, size, mtime, None, r.error_code, r.error))
            for r, (f, _) in zip(good, added):
                size, mtime = meta[r.path]
                seen.append(_Seen(r.path, size, mtime, f.pk))
                path = CachedPath(r.path, size, mtime, f.pk)
                if f.pk in done_rows:  # bytes searched in an earlier run
                    ready.append(path)
                elif f.pk in unchecked:  # the same bytes as another file of this run
                    unchecked[f.pk].paths.append(path)
                else:
                    assert r.fingerprint is not None and r.grid is not None
                    fp = r.fingerprint
                    facts = RowFacts(f.pk, f.image_pk, fp.sha256, fp.width, fp.height, fp.mime, r.lossless, r.taken_at)
                    unchecked[f.pk] = _Unchecked(facts, grids.put(r.grid), [path])
            if ready:
                cache.put_paths(scope, ready)
            batch.clear()

        with _progress(progress, len(stale), "reading") as advance:
            batch: list[_Read] = []
            for r in _read_files([p for p, _, _ in stale], jobs, index.limits):
                advance()
                batch.append(r)
                if len(batch) >= _COMMIT_EVERY:
                    store(batch)
            store(batch)

        rows: list[RowFacts] = []
        paths: list[CachedPath] = []
        # each pair of this run, as the better of its two ends' checks saw it: the check of one end
        # stops at the hashes when it has a sure duplicate elsewhere, the other's may verify the
        # pair by local features (measured on the public benchmark: the lower of the two, or one
        # end's check alone, finds fewer true pairs without fewer false ones)
        looks: dict[tuple[int, int], StoredPair] = {}
        touched: set[tuple[int, int]] = set()

        def commit() -> None:
            cache.put_rows(scope, rows, [looks[k] for k in touched])
            cache.put_paths(scope, paths)
            rows.clear()
            paths.clear()
            touched.clear()

        queries = (StoredQuery(pk, grids.get(u.slot)) for pk, u in unchecked.items())
        checks = check_stored(
            db, queries, scope=scope, top=_TOP, jobs=jobs, limits=index.limits, thresholds=index.thresholds
        )
        with _progress(progress, len(unchecked), "matching") as advance:
            for c in checks:
                advance()
                if c.image_pk is None:
                    continue  # removed meanwhile: read again next time
                u = unchecked[c.file_pk]
                rows.append(u.facts)
                paths.extend(u.paths)
                for m in c.matches:
                    lo, hi = sorted((c.file_pk, m.file_pk))
                    look = StoredPair(
                        lo, hi, m.score, m.verdict.value, m.explanation, m.phash_bits, m.by_local_features
                    )
                    if (lo, hi) not in looks or look.score > looks[lo, hi].score:
                        looks[lo, hi] = look
                    touched.add((lo, hi))
                    if m.verdict is Verdict.SIMILAR:  # on the review list, as Index.add would put it
                        index.store.add_review(
                            scope, c.image_pk, m.image_pk, score=m.score, verdict=m.verdict.value,
                            evidence=m.explanation,
                        )  # fmt: skip
                if len(paths) >= _COMMIT_EVERY:
                    commit()
            commit()


def _progress(progress: Progress | None, total: int, label: str) -> AbstractContextManager[Callable[[], None]]:
    return progress(total, label) if progress else nullcontext(lambda: None)


def _group(
    index: Index,
    cache: FindCache,
    opts: FindOptions,
    seen: list[_Seen],
    keep_in: tuple[str, ...],
    also: dict[str, tuple[str, ...]],
) -> tuple[list[Group], list[Pair]]:
    """Pairs among this run's files to groups with keepers, and the linked pairs as paths.
    ``also``: the other paths of files reached through several (a file under a keep-in folder by
    any of its paths is kept)."""
    paths_of: dict[int, list[str]] = defaultdict(list)
    size_of: dict[str, int] = {}
    for s in seen:
        paths_of[s.file_pk].append(s.path)
        size_of[s.path] = s.size
    for ps in paths_of.values():
        ps.sort()
    facts = cache.rows(paths_of)
    pks = [pk for pk in paths_of if pk in facts]
    stored = _with_phash_bits(index, cache, cache.pairs_among(pks))
    decided = index.store.decisions(facts[pk].image_pk for pk in pks)
    image_of = {pk: facts[pk].image_pk for pk in pks}
    links: dict[tuple[int, int], StoredPair] = {}
    for p in stored:
        key = (min(image_of[p.a_pk], image_of[p.b_pk]), max(image_of[p.a_pk], image_of[p.b_pk]))
        d = decided.get(key)
        if d is Decision.NOT_DUPLICATE:
            continue
        if d is Decision.DUPLICATE and Verdict(p.verdict) not in DUPLICATE_VERDICTS:
            p = StoredPair(p.a_pk, p.b_pk, max(p.score, 0.7), Verdict.NEAR_DUPLICATE.value, _PERSON, 0)
        links[(p.a_pk, p.b_pk)] = p
    by_image = {facts[pk].image_pk: pk for pk in pks}
    for (ia, ib), d in decided.items():
        if d is Decision.DUPLICATE and ia in by_image and ib in by_image:
            a, b = sorted((by_image[ia], by_image[ib]))
            links.setdefault((a, b), StoredPair(a, b, 0.7, Verdict.NEAR_DUPLICATE.value, _PERSON, 0))
    return groups_from_links(pks, paths_of, size_of, facts, links, opts, keep_in, also)


def groups_from_links(
    pks: list[int],
    paths_of: dict[int, list[str]],
    size_of: dict[str, int],
    facts: dict[int, RowFacts],
    links: dict[tuple[int, int], StoredPair],
    opts: FindOptions,
    keep_in: tuple[str, ...],
    also: Mapping[str, tuple[str, ...]] | None = None,
) -> tuple[list[Group], list[Pair]]:
    """Groups with keepers, and the linked pairs as paths, from the cascade's pairs between index rows
    (``links``, keyed ``(a_pk, b_pk)`` with ``a_pk < b_pk``, a person's decisions applied): the last
    step of ``find``, a pure function of its inputs so that the scale-out pipeline calls it too.
    ``paths_of`` lists each row's paths (sorted), ``size_of`` each path's size in bytes, ``also`` the
    other paths of files reached through several (a file under a keep-in folder by any path is kept)."""
    also = also or {}

    def candidate(pk: int, path: str) -> Candidate:
        f = facts[pk]
        return Candidate(path, f.width, f.height, size_of[path], f.lossless, f.taken_at)

    linking = {k: p for k, p in links.items() if Verdict(p.verdict) in opts.link}
    node_groups = link_groups(pks, linking)
    if opts.strict:
        ranked = keep_order([candidate(pk, paths_of[pk][0]) for pk in pks], opts.keep)
        rank = {c.path: i for i, c in enumerate(ranked)}
        strict: list[list[int]] = []
        for nodes in node_groups:
            order = sorted(nodes, key=lambda pk: rank[paths_of[pk][0]])
            inside = [k for k in linking if k[0] in set(nodes) and k[1] in set(nodes)]
            strict.extend(cliques(nodes, inside, order=order))
        node_groups = strict
    grouped = {pk for g in node_groups for pk in g}
    node_groups += [[pk] for pk in pks if pk not in grouped and len(paths_of[pk]) > 1]
    best_link: dict[int, dict[int, StoredPair]] = defaultdict(dict)
    for (a, b), p in links.items():
        if Verdict(p.verdict) in opts.link:
            best_link[a][b] = p
            best_link[b][a] = p

    groups: list[Group] = []
    for nodes in node_groups:
        members = [candidate(pk, path) for pk in nodes for path in paths_of[pk]]
        # a symlink is never kept over a real file: the file it points to may live outside the
        # scanned folders, and removing the real copy would leave only a link to keep the picture
        ranked = sorted(keep_order(members, opts.keep), key=lambda c: os.path.islink(c.path))
        protected = [c for c in ranked if any(is_under(p, k) for p in (c.path, *also.get(c.path, ())) for k in keep_in)]
        keeper = (protected or ranked)[0]
        pk_of = {path: pk for pk in nodes for path in paths_of[pk]}
        kpk = pk_of[keeper.path]
        out: list[Member] = []
        for c in [keeper] + [c for c in ranked if c is not keeper]:
            pk = pk_of[c.path]
            score, verdict, evidence, match = _why(pk, c.path, kpk, keeper.path, paths_of, best_link, set(nodes))
            f = facts[pk]
            keep = c is keeper or c in protected
            if c is keeper:
                evidence = _keep_reason(c, f.mime, bool(protected), opts.keep)
            elif keep:
                evidence = f"kept: in a --keep-in folder; {evidence}"
            out.append(
                Member(
                    c.path, score, verdict, evidence, match, keep, f.width, f.height, c.byte_size, f.mime, f.taken_at
                )
            )
        groups.append(Group(keep=keeper.path, members=tuple(out)))
    groups.sort(key=lambda g: (-len(g.members), g.keep))

    pairs: list[Pair] = []
    for pk in pks:
        ps = paths_of[pk]
        pairs.extend(Pair(x, y, 1.0, Verdict.IDENTICAL.value) for i, x in enumerate(ps) for y in ps[i + 1 :])
    for (a, b), p in sorted(links.items()):
        pairs.extend(Pair(x, y, p.score, p.verdict) for x in paths_of[a] for y in paths_of[b])
    return groups, pairs


def _with_phash_bits(index: Index, cache: FindCache, pairs: list[StoredPair]) -> list[StoredPair]:
    """Pairs from a cache made before their pHash distance was kept get it from the stored fingerprints."""
    missing = [p for p in pairs if p.phash_bits is None]
    if not missing:
        return pairs
    fps = {f.pk: f.fingerprint for f in index.store.files(sorted({x for p in missing for x in (p.a_pk, p.b_pk)}))}
    filled = {
        (p.a_pk, p.b_pk): replace(p, phash_bits=fps[p.a_pk].dihedral_distance_bits(fps[p.b_pk])[0])
        for p in missing
        if p.a_pk in fps and p.b_pk in fps
    }
    cache.set_phash_bits(list(filled.values()))
    return [filled.get((p.a_pk, p.b_pk), p) for p in pairs]


def link_groups(nodes: list[int], links: dict[tuple[int, int], StoredPair]) -> list[list[int]]:
    """Groups from linking pairs: hash links build groups, local-feature links only attach single files.

    A *hash link* is a pair judged by its hashes whose pHashes (under the best flip or turn) are
    within ``HASH_LINK_BITS``, or identical bytes or pixels, or a person's word. Groups start as the
    connected components of hash links. A pair matched only by its local features (crops,
    screenshots, captions, overlays: pHashes farther apart) never merges two such groups, because
    two different pictures that carry the same caption bar, watermark or page frame share local
    features too. Instead, each file without a hash link joins the group it has the most local
    links to (ties: no group), and two such files that are each other's best local match form a
    group of two. Two groups merge only when local links join at least ``MERGE_FILES`` different
    files of each: a picture's crops that hash-link among themselves and are matched to the
    picture again and again, where a shared caption bar or watermark joins one file to one file.
    """
    hash_edges = [k for k, p in links.items() if _is_hash_link(p)]
    groups = components(nodes, hash_edges)
    group_of = {pk: i for i, g in enumerate(groups) for pk in g}
    support: dict[int, dict[int, list[float]]] = defaultdict(dict)
    loose: list[StoredPair] = []
    for (a, b), p in links.items():
        if _is_hash_link(p):
            continue
        for x, y in ((a, b), (b, a)):
            if x not in group_of and y in group_of:
                votes = support[x].setdefault(group_of[y], [0.0, 0.0])
                votes[0] += 1
                votes[1] = max(votes[1], p.score)
        if a not in group_of and b not in group_of:
            loose.append(p)
    attached: set[int] = set()
    for x, by_group in support.items():
        ranked = sorted(by_group.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        if len(ranked) > 1 and ranked[1][1][0] == ranked[0][1][0]:
            continue  # as many links to another group: not for a machine to say which
        groups[ranked[0][0]].append(x)
        attached.add(x)
    best: dict[int, tuple[float, int]] = {}
    for p in loose:
        if p.a_pk in attached or p.b_pk in attached:
            continue
        for x, y in ((p.a_pk, p.b_pk), (p.b_pk, p.a_pk)):
            if x not in best or (p.score, -y) > (best[x][0], -best[x][1]):
                best[x] = (p.score, y)
    pairs = [[x, y] for x, (_, y) in best.items() if x < y and best.get(y, (0.0, -1))[1] == x]
    return sorted(sorted(g) for g in _merge_well_linked(groups, links) + pairs)


def _merge_well_linked(groups: list[list[int]], links: dict[tuple[int, int], StoredPair]) -> list[list[int]]:
    """Merge groups joined by local links from several files on each side (``MERGE_FILES``): a
    picture's cropped or reframed copies that hash-link among themselves, found again and again
    by local features. A shared caption bar or watermark joins one file to one file."""
    group_of = {pk: i for i, g in enumerate(groups) for pk in g}
    ends: dict[tuple[int, int], tuple[set[int], set[int]]] = {}
    for (a, b), p in links.items():
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is None or gb is None or ga == gb or _is_hash_link(p):
            continue
        key, (x, y) = ((ga, gb), (a, b)) if ga < gb else ((gb, ga), (b, a))
        left, right = ends.setdefault(key, (set(), set()))
        left.add(x)
        right.add(y)
    edges = [k for k, (left, right) in ends.items() if min(len(left), len(right)) >= MERGE_FILES]
    if not edges:
        return groups
    merged = components(list(range(len(groups))), edges)
    used = {i for m in merged for i in m}
    return [sum((groups[i] for i in m), []) for m in merged] + [g for i, g in enumerate(groups) if i not in used]


def _is_hash_link(p: StoredPair) -> bool:
    if p.verdict in (Verdict.IDENTICAL.value, Verdict.SAME_PIXELS.value) or p.evidence == _PERSON:
        return True
    # a verdict that rests on local features is local evidence however close the pHashes: two
    # screenshots of different pictures in the same window share the frame and most pHash bits
    return not p.by_local_features and p.phash_bits is not None and p.phash_bits <= HASH_LINK_BITS


def _keep_reason(c: Candidate, mime: str, protected: bool, policy: tuple[KeepCriterion, ...]) -> str:
    """Why the keeper was kept, in the words of the policy."""
    where = "in a --keep-in folder, then " if protected else ""
    facts = f"{c.width}x{c.height}, {'lossless' if c.lossless else 'lossy'} {mime.split('/')[-1].upper()}"
    facts += f", {c.byte_size:,} bytes" + (f", taken {c.taken_at}" if c.taken_at else "")
    return f"kept ({where}first by {' > '.join(k.value for k in policy)}): {facts}"


def _why(
    pk: int,
    path: str,
    keeper_pk: int,
    keeper_path: str,
    paths_of: dict[int, list[str]],
    best_link: dict[int, dict[int, StoredPair]],
    nodes: set[int],
) -> tuple[float, str, str, str]:
    """(score, verdict, evidence, matched path) of a member: its link to the keeper, else its best link in the group."""
    if pk == keeper_pk and path != keeper_path:
        return 1.0, Verdict.IDENTICAL.value, "the same file (identical bytes)", keeper_path
    if pk != keeper_pk and keeper_pk in best_link[pk]:
        p = best_link[pk][keeper_pk]
        return p.score, p.verdict, p.evidence, keeper_path
    if pk == keeper_pk and len(paths_of[pk]) > 1:
        twin = next(x for x in paths_of[pk] if x != path)
        return 1.0, Verdict.IDENTICAL.value, "the same file (identical bytes)", twin
    inside = [(p, o) for o, p in best_link[pk].items() if o in nodes]
    if not inside:
        return 1.0, Verdict.IDENTICAL.value, "the same file (identical bytes)", path
    best, other = max(inside, key=lambda po: (po[0].score, -po[1]))
    return best.score, best.verdict, best.evidence, paths_of[other][0]
