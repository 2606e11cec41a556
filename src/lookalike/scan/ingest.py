"""Files to checked index rows: the reading and matching half of ``find``.

``sort_paths`` splits the walked paths into those the cache already holds (device, inode, size,
mtime and ctime unchanged), the unreadable, and the stale; ``known_bytes`` settles the stale paths whose bytes
are already searched with one read and a SHA-256. ``FindRun`` reads the rest in worker
processes (``processes.ordered_map``), adds them to the index scope, then checks every new row
against every other image of the scope (``index.parallel.check_stored``), committing the cache as
it goes. The colour grids of the rows waiting for their check wait in a temporary file
(``_GridSpill``) rather than in memory.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits
from lookalike.decode import file_facts, read_source
from lookalike.errors import FetchError, FileError, InputError, LookalikeError
from lookalike.fingerprints import Fingerprint, default_jobs
from lookalike.fingerprints.local import local_features
from lookalike.index import Index
from lookalike.index.parallel import PeerMatch, StoredQuery, check_stored
from lookalike.index.store.records import NewFile
from lookalike.match import Verdict
from lookalike.processes import ordered_map
from lookalike.scan.cache import CachedPath, FileStamp, FindCache, RowFacts, StoredPair
from lookalike.scan.options import FindOptions, Progress, is_under, steps
from lookalike.scan.provenance import PictureFacts, analyse_with_facts
from lookalike.scan.similar import embedder_for

__all__ = ["FindRun", "Seen", "forget_scope", "gone_paths", "known_bytes", "sort_paths", "storable"]

#: matches asked of each check: a file may have many copies in a folder
_TOP = 200
#: files between two commits of the cache: a crash loses at most this much work
_COMMIT_EVERY = 200


@dataclass(slots=True)
class Seen:
    """A path of this run and the index row holding its bytes."""

    path: str
    size: int
    mtime_ns: int
    file_pk: int


def storable(path: str) -> bool:
    """Whether ``path`` can go into the cache and the index (SQLite text is UTF-8): a name that is
    not UTF-8 reaches Python holding lone surrogates (surrogateescape), which cannot."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def forget_scope(index: Index, cache: FindCache, scope: str) -> None:
    """Empty the scope's cache and remove its index rows, so that every file is read and matched anew."""
    for f in index.files(cache.forget_scope(scope)):
        try:
            index.remove(f.image_id, scope=f.scope)
        except LookalikeError:
            pass  # already gone


def sort_paths(
    files: list[str], cached: dict[str, CachedPath], seen: list[Seen], errors: list[FileError]
) -> tuple[list[tuple[str, FileStamp]], int]:
    """(path, stamp) of the files to read: those the cache does not hold as they are now (any of
    device, inode, size, mtime and ctime changed), and how many the cache held. Files it holds go
    to ``seen`` (or, when they could not be read then, to ``errors``), and files that cannot be
    looked at now to ``errors``."""
    stale: list[tuple[str, FileStamp]] = []
    hits = 0
    for path in files:
        try:
            st = os.stat(path)
        except OSError as exc:
            errors.append(FileError(path, FetchError.code, f"{path}: cannot read ({exc.strerror or exc})"))
            continue
        hit = cached.get(path)
        stamp = FileStamp.of(st)
        if hit is not None and hit.stamp == stamp:
            if hit.file_pk is not None:
                seen.append(Seen(path, stamp.size, stamp.mtime_ns, hit.file_pk))
                hits += 1
                continue
            if hit.error is not None:
                errors.append(hit.error)
                hits += 1
                continue
        stale.append((path, stamp))
    return stale, hits


def gone_paths(cached: dict[str, CachedPath], files: list[str], roots: tuple[str, ...]) -> list[str]:
    """Cached paths under ``roots`` that the walk no longer found."""
    listed = set(files)
    return [p for p in cached if p not in listed and any(is_under(p, r) for r in roots)]


def known_bytes(
    cache: FindCache, scope: str, stale: list[tuple[str, FileStamp]], seen: list[Seen]
) -> list[tuple[str, FileStamp]]:
    """Changed or new paths whose bytes are already searched (copied, renamed, touched): one read and a
    SHA-256 each, no decode. Returns the paths still to analyse. Skipped on a scope with nothing in it."""
    if not stale or not cache.has_rows(scope):
        return stale
    left: list[tuple[str, FileStamp]] = []
    known: list[CachedPath] = []
    for path, stamp in stale:
        hashed = _digest(path)
        if hashed is None:
            left.append((path, stamp))  # reading it again reports the error
            continue
        digest, stamp = hashed
        row = cache.row_by_sha(scope, digest)
        if row is None:
            left.append((path, stamp))
            continue
        seen.append(Seen(path, stamp.size, stamp.mtime_ns, row.file_pk))
        known.append(CachedPath(path, stamp, row.file_pk))
    if known:
        cache.put_paths(scope, known)
    return left


def _digest(path: str) -> tuple[bytes, FileStamp] | None:
    """The SHA-256 of a regular file's bytes and the stamp of the bytes hashed; None when it
    cannot be read, or changed while it was (reading it again reports or settles it)."""
    try:
        # non-blocking and checked: a file swapped for a FIFO since the walk must not hang the run
        with open(os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)), "rb") as fh:
            before = os.fstat(fh.fileno())
            if not stat.S_ISREG(before.st_mode):
                return None
            digest = hashlib.file_digest(fh, "sha256").digest()
            if FileStamp.of(os.fstat(fh.fileno())) != FileStamp.of(before):
                return None
    except OSError:
        return None
    return digest, FileStamp.of(before)


def same_bytes(
    stale: list[tuple[str, FileStamp]],
) -> tuple[list[tuple[str, FileStamp]], dict[str, list[tuple[str, FileStamp]]]]:
    """Identical bytes collapse before anything is decoded: among the files to read, those of one
    size are hashed (one read and a SHA-256 each; a file of a size no other has cannot have a twin
    here), and of each set of identical files only the first is decoded. Returns the files to
    decode and, for each, its twins, which join its index row (one node with n paths, as jdupes
    and czkawka compare size, then hash)."""
    by_size: dict[int, list[tuple[str, FileStamp]]] = defaultdict(list)
    for item in stale:
        by_size[item[1].size].append(item)
    first_of: dict[bytes, str] = {}
    twins: dict[str, list[tuple[str, FileStamp]]] = defaultdict(list)
    for items in by_size.values():
        if len(items) < 2:
            continue
        for path, _ in items:
            hashed = _digest(path)
            if hashed is not None and first_of.setdefault(hashed[0], path) != path:
                twins[first_of[hashed[0]]].append((path, hashed[1]))
    if not twins:
        return stale, {}
    skip = {p for ts in twins.values() for p, _ in ts}
    return [item for item in stale if item[0] not in skip], dict(twins)


@dataclass(frozen=True, slots=True)
class _Read:
    """What the main process needs of one analysed file (not its pixels or bytes), or its error."""

    path: str
    fingerprint: Fingerprint | None = None
    local: bytes = b""
    grid: npt.NDArray[np.float64] | None = None
    lossless: bool = False
    taken_at: str | None = None
    source: PictureFacts | None = None  # what the keeper choice reads
    error: FileError | None = None
    embedding: tuple[str, bytes] | None = None  # with --similar: (model, vector), from the same decode


def _read_one(path: str, limits: DecodeLimits, opts: FindOptions) -> _Read:
    """Decode and analyse one file (in a worker process): fingerprint, local features, colour grid,
    facts, and with ``--similar`` its embedding."""
    try:
        src = read_source(Path(path), max_bytes=limits.max_bytes)
        a, source = analyse_with_facts(src.data, name=src.name, limits=limits, local=True)
        facts = file_facts(a.data, a.fingerprint.mime)
        local = (a.local or local_features(a.image.pixels)).to_bytes()
    except InputError as err:
        return _Read(path, error=FileError.of(path, err))
    except Exception as exc:  # noqa: BLE001 - one file's failure is its error row; the run goes on
        return _Read(path, error=FileError.of(path, exc))
    embedding = None
    if opts.similar:  # outside the try: a missing extra is no file's fault, and ends the run
        encoder = embedder_for(opts.model)
        embedding = encoder.name, encoder.embed_pixels([a.image.pixels])[0].tobytes()
    return _Read(path, a.fingerprint, local, a.grid, facts.lossless, facts.taken_at, source, embedding=embedding)


def _read_files(paths: list[str], jobs: int, limits: DecodeLimits, opts: FindOptions) -> Iterator[_Read]:
    """``_read_one`` of each path, in order, in ``jobs`` processes with a bounded window in flight."""
    if jobs <= 1:
        return (_read_one(p, limits, opts) for p in paths)
    return ordered_map(partial(_read_one, limits=limits, opts=opts), paths, jobs=jobs)


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


class FindRun:
    """The reading and matching half of one ``find`` run (see ``scan.find``): ``read_and_match``
    reads the stale files and adds them to the index scope, then checks each new row against every
    other image of the scope, committing the cache as it goes. ``seen`` and ``errors`` then hold
    the paths it read (with their rows) and those it could not.

    A path is cached only once its row has been checked, so that a run cut short reads the
    unchecked files again and checks them then."""

    def __init__(self, index: Index, cache: FindCache, db: str, opts: FindOptions) -> None:
        self._index, self._cache, self._db, self._scope = index, cache, db, opts.scope
        self._opts = opts
        self._jobs = opts.jobs or default_jobs()
        self.seen: list[Seen] = []
        self.errors: list[FileError] = []
        #: rows checked in an earlier run (their bytes were searched then)
        self._done_rows: set[int] = set()
        self._unchecked: dict[int, _Unchecked] = {}

    def read_and_match(self, stale: list[tuple[str, FileStamp]], progress: Progress | None) -> None:
        """Read ``stale`` (path, stamp) into the index, then check every new row."""
        self._done_rows = set(self._cache.rows_in_scope(self._scope)) if stale else set()
        stale, twins = same_bytes(stale)
        with _GridSpill() as grids:
            self._read(stale, twins, grids, progress)
            self._match(grids, progress)

    def _read(
        self,
        stale: list[tuple[str, FileStamp]],
        twins: dict[str, list[tuple[str, FileStamp]]],
        grids: _GridSpill,
        progress: Progress | None,
    ) -> None:
        """Analyse the files in worker processes and store them a batch at a time."""
        held = {path: [(path, stamp), *twins.get(path, ())] for path, stamp in stale}
        batch: list[_Read] = []
        with steps(progress, len(stale), "reading") as advance:
            for r in _read_files(list(held), min(self._jobs, len(stale)), self._index.limits, self._opts):
                advance()
                batch.append(r)
                if len(batch) >= _COMMIT_EVERY:
                    self._store(batch, held, grids)
                    batch = []
            self._store(batch, held, grids)

    def _store(self, batch: list[_Read], held: dict[str, list[tuple[str, FileStamp]]], grids: _GridSpill) -> None:
        """Add a batch of analysed files to the index; cache the paths that need no check (errors,
        bytes searched before) and keep the new rows for ``_match``. ``held``: each file read and
        its twins (the same bytes), as (path, stamp)."""
        ready: list[CachedPath] = []
        good = [r for r in batch if r.fingerprint is not None]
        added = self._index.add_files(
            NewFile(fingerprint=r.fingerprint, scope=self._scope, source=r.path, local=r.local, embedding=r.embedding)
            for r in good
            if r.fingerprint is not None
        )
        for r in batch:
            if r.error is not None:
                for p, stamp in held[r.path]:
                    error = FileError(p, r.error.code, r.error.message.replace(r.path, p))
                    self.errors.append(error)
                    ready.append(CachedPath(p, stamp, None, error))
        for r, (f, _) in zip(good, added):
            paths = [CachedPath(p, stamp, f.pk) for p, stamp in held[r.path]]
            self.seen.extend(Seen(c.path, c.stamp.size, c.stamp.mtime_ns, f.pk) for c in paths)
            if f.pk in self._done_rows:  # bytes searched in an earlier run
                ready.extend(paths)
            elif f.pk in self._unchecked:  # the same bytes as another file of this run
                self._unchecked[f.pk].paths.extend(paths)
            else:
                self._unchecked[f.pk] = _Unchecked(_row_facts(r, f.pk, f.image_pk), grids.put(_grid_of(r)), paths)
        if ready:
            self._cache.put_paths(self._scope, ready)

    def _match(self, grids: _GridSpill, progress: Progress | None) -> None:
        """Check each new row against the scope in worker processes; its pairs and its paths go
        to the cache ``_COMMIT_EVERY`` paths at a time, ``similar`` pairs to the review list."""
        pending = _Pending()
        queries = (StoredQuery(pk, grids.get(u.slot)) for pk, u in self._unchecked.items())
        checks = check_stored(
            self._db, queries, scope=self._scope, top=_TOP, jobs=min(self._jobs, len(self._unchecked)),
            limits=self._index.limits, thresholds=self._index.thresholds,
        )  # fmt: skip
        with steps(progress, len(self._unchecked), "matching") as advance:
            for c in checks:
                advance()
                if c.image_pk is None:
                    continue  # removed meanwhile: read again next time
                u = self._unchecked[c.file_pk]
                pending.rows.append(u.facts)
                pending.paths.extend(u.paths)
                for m in c.matches:
                    pending.look(c.file_pk, m)
                    if m.verdict is Verdict.SIMILAR:  # on the review list, as Index.add would put it
                        self._index.add_review(
                            self._scope, c.image_pk, m.image_pk, score=m.score, verdict=m.verdict.value,
                            evidence=m.explanation,
                        )  # fmt: skip
                if len(pending.paths) >= _COMMIT_EVERY:
                    pending.commit(self._cache, self._scope)
            pending.commit(self._cache, self._scope)


@dataclass(slots=True)
class _Pending:
    """Checked rows, their paths and their pairs not yet in the cache."""

    rows: list[RowFacts] = field(default_factory=list)
    paths: list[CachedPath] = field(default_factory=list)
    #: each pair of this run, as the better of its two ends' checks saw it: the check of one end
    #: stops at the hashes when it has a sure duplicate elsewhere, the other's may verify the pair
    #: by local features (measured on the public benchmark: the lower of the two, or one end's
    #: check alone, finds fewer true pairs without fewer false ones)
    looks: dict[tuple[int, int], StoredPair] = field(default_factory=dict)
    #: the pairs seen since the last commit
    touched: set[tuple[int, int]] = field(default_factory=set)

    def look(self, file_pk: int, m: PeerMatch) -> None:
        """Row ``file_pk``'s check found ``m``: keep the pair, the higher score of its two ends."""
        lo, hi = sorted((file_pk, m.file_pk))
        look = StoredPair(lo, hi, m.score, m.verdict, m.explanation, m.phash_bits, m.by_local_features)
        if (lo, hi) not in self.looks or look.score > self.looks[lo, hi].score:
            self.looks[lo, hi] = look
        self.touched.add((lo, hi))

    def commit(self, cache: FindCache, scope: str) -> None:
        """Put the rows, their pairs and their paths in the cache, and start again."""
        cache.put_rows(scope, self.rows, [self.looks[k] for k in self.touched])
        cache.put_paths(scope, self.paths)
        self.rows.clear()
        self.paths.clear()
        self.touched.clear()


def _row_facts(r: _Read, file_pk: int, image_pk: int) -> RowFacts:
    """The cached facts of a new row from its analysed file."""
    assert r.fingerprint is not None and r.source is not None, "only analysed files make rows"
    fp, k = r.fingerprint, r.source
    return RowFacts(
        file_pk, image_pk, fp.sha256, fp.width, fp.height, fp.mime, r.lossless, r.taken_at,
        k.jpeg_quality, k.padding, k.content_aspect, k.colours, k.grid_step,
    )  # fmt: skip


def _grid_of(r: _Read) -> npt.NDArray[np.float64]:
    assert r.grid is not None, "an analysed file has its colour grid"
    return r.grid
