"""The matching stage of a scale-out run as tasks over Parquet parts: no index of everything.

``find`` on one machine checks each stored row against its index by the cascade
(``index.cascade``): its candidates are the rows ``match.retrieval`` admits under a flip or turn
(pHash within 8 bits and PDQ within 100), the five nearest pHashes, and the rows its strongest
local descriptors vote for. Here each of those is computed by a task over a bounded slice, with
the same answer:

* ``codes_task`` (one a fingerprint part) writes the compact codes of the part's index rows:
  pHash, PDQ, the eight turned pHashes and PDQs, and the ``LOCAL_CODES`` descriptors a row is
  found by (``CODES``); ``stored_task`` concatenates the pHashes and PDQs of every row (40 bytes
  a row, memory-mapped by the tasks that read them).
* ``match_task`` (one a part) finds its rows' candidates: the multi-index-hashing join
  (``scale.join``: each turned pHash against the three substring tables of the stored pHashes,
  PDQ applied after), the five nearest pHashes (the one-machine rule; within ``NEAREST_RADIUS``
  past ``NEAREST_ANY_UP_TO`` rows, all of a task's rows in one call of ``scale.nearest``), and
  the descriptor votes:
  each descriptor's nearest stored candidate by the run's vote table (``scale.votes``: every
  row's codes filed by ``DescriptorIndex``'s keys, built once by ``stored_task``), so that a
  query looks at a bounded bucket a table, not at every row.
  It then checks its rows in batches of up to ``VERIFY_CANDIDATES`` candidates by the cascade
  itself (``_PlannedCascade``: ``index.cascade.Cascade`` with those candidates), so that the
  pairs are ``find``'s: for each
  batch it reads the fingerprints and local features of the batch's candidates from the row
  files ``codes_task`` wrote (one ``pread`` a row: ``part_rows``), and lets them go after.

A worker keeps, between tasks, the join's substring tables and the nearest pHashes' tables (about
84 bytes a row, and 33 MB of the tables' bucket bounds); the memory-mapped codes and the vote table are read
through the page cache, their pages let go as a task leaves them behind (``VoteTable.nearest``) or
after it (the rest); a task holds
besides its own partition's rows and one batch's candidates, neither of which grows with the run.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits, Thresholds
from lookalike.fingerprints import FINGERPRINT_VERSION, Dihedral, fingerprint_from_bytes
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index.cascade import _VOTING_FEATURES, Cascade, revote_pool, second_count, voted_in_scope
from lookalike.index.results import CheckMatch
from lookalike.index.search.hamming import HammingIndex
from lookalike.index.search.memory import Mirror
from lookalike.index.store.records import LOCAL_CODES
from lookalike.match import Query
from lookalike.match.retrieval import NEAREST_ANY_UP_TO, NEAREST_RADIUS, PDQ_RADIUS
from lookalike.scale.join import build_tables, join_chunk
from lookalike.scale.nearest import NearestCodes
from lookalike.scale.part_rows import NoLog, PartRows, features_of, read_rows, write_rows
from lookalike.scale.partitions import digest
from lookalike.scale.reuse import RowReuse, content_key
from lookalike.scale.schema import CODES, PAIRS, turned_fingerprints
from lookalike.scale.stages import check_rows, write_atomically
from lookalike.scale.votes import NearestVotes, VoteTable, build_vote_table, release_pages

__all__ = ["STORED_VERSION", "codes_task", "match_task", "rows_path", "stored_task"]

#: what ``codes_task`` and ``stored_task`` write, in the codes parts' and stored folder's names: 2
#: since the stored folder holds the crop tier's vote table (``votes/``) and the rows' content keys,
#: 3 since each codes part has its row file and the stored folder each row's record there
#: (``span.npy``), 4 since the vote table files each code in two halves (``scale.votes``), so that
#: a run folder of an older layout is rebuilt
STORED_VERSION = 4
#: candidates whose fingerprints and local features (about 13 KB each) a task reads at a time:
#: the rows of a part are checked in batches that bring up to this many distinct candidates (or
#: one row's, when it has more), read from the row files and let go after. Batches of 64 rows held
#: up to 21 MB (a photo's row brings up to 25, its votes' pool), reached between 2,000 and 16,000
#: photos; 400 hold about 5 MB. A batch of rows with few candidates each (most rows of a large
#: run) spans many rows, and candidates shared by its rows are read once: checks of 16 rows at a
#: time cost 27 % more CPU than of 64 at a million rows
VERIFY_CANDIDATES = 400
#: nearest pHashes a check looks at beyond the retrieval radius (``index.cascade._KNN``)
_KNN = 5

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
T = TypeVar("T")


# ---- the codes of a part, and of the whole run ------------------------------------------------


def codes_task(part_path: str, row_at: npt.ArrayLike, pk_of: npt.ArrayLike, out: str) -> int:
    """The ``CODES`` of the rows ``row_at`` of fingerprint part ``part_path`` (the index rows first
    fingerprinted there, numbered ``pk_of``), written to ``out``, and their records to its row file
    (``rows_path``). Returns the rows written."""
    names = ("url", "sha256", "fingerprint", "turns", "local")
    rows, pks = np.asarray(row_at, np.int64).tolist(), np.asarray(pk_of, np.int64).tolist()
    part = pq.read_table(part_path, columns=list(names)).take(pa.array(rows, pa.int64()))
    cols: dict[str, list[Any]] = {n: [] for n in CODES.names}
    url, sha, fps, turns_of, local_of = (part.column(n).to_pylist() for n in names)
    spans = write_rows(rows_path(out), url, sha, fps, local_of)  # first: the codes file marks the task finished
    cols["at"], cols["size"] = spans[:, 0].tolist(), spans[:, 1].tolist()
    for pk, row, fpb, turns, local in zip(pks, rows, fps, turns_of, local_of):
        fp = fingerprint_from_bytes(fpb)
        turned = turned_fingerprints(fp, turns)
        cols["pk"].append(pk)
        cols["row"].append(row)
        cols["key"].append(content_key(fp.sha256))
        cols["phash"].append(int(fp.phash))
        cols["pdq"].append(fp.pdq)
        cols["variants"].append(np.asarray(fp.phash_variants, np.uint64).tobytes())
        cols["turned_pdq"].append(b"".join(turned[Dihedral(k)].pdq for k in range(8)))
        found_by = LocalFeatures.from_bytes(local).descriptors[:LOCAL_CODES] if local else np.zeros((0, 32), np.uint8)
        cols["descriptors"].append(found_by.tobytes())
    write_atomically(pa.table(cols, schema=CODES), out)
    return len(pks)


def stored_task(codes_paths: list[str], out_dir: str) -> int:
    """Every row's pHash (``phash.npy``, uint64), codes part (``part.npy``, int32: its index in
    ``codes_paths``), record in that part's row file (``span.npy``, (n, 2) int64: offset and size),
    content key (``key.npy``,
    uint64: ``reuse.content_key``) and PDQ (``pdq.npy``, (n, 4)
    uint64, written last: the mark of a finished task) in ``out_dir``, row ``pk`` at position
    ``pk - 1``, and the crop tier's vote table of every row's codes (``votes/``, ``scale.votes``).
    The codes parts hold every row once, in any order (a grown source's partitions interleave).

    Each array is written part by part into its memory-mapped file, whose pages are let go after
    each part: the task holds one part, not five run-sized arrays (76 bytes a row) and their sort
    beside the vote table's build."""
    os.makedirs(out_dir, exist_ok=True)
    build_vote_table(codes_paths, os.path.join(out_dir, "votes"))
    n = int(sum(pq.ParquetFile(path).metadata.num_rows for path in codes_paths))
    names = ("phash", "part", "span", "key", "pdq")
    kinds = ((np.uint64, (n,)), (np.int32, (n,)), (np.int64, (n, 2)), (np.uint64, (n,)), (np.uint64, (n, 4)))
    tmps = [os.path.join(out_dir, f"{name}.{os.getpid()}.tmp.npy") for name in names]
    out = [np.lib.format.open_memmap(tmp, "w+", dtype, shape) for tmp, (dtype, shape) in zip(tmps, kinds)]
    for i, path in enumerate(codes_paths):
        t = pq.read_table(path, columns=["pk", "key", "phash", "pdq", "at", "size"])
        at = t.column("pk").to_numpy().astype(np.int64) - 1
        codes = t.column("pdq").combine_chunks()  # fixed-size binary: one buffer of 32-byte codes
        words = np.frombuffer(codes.buffers()[1], np.uint64, count=4 * len(codes), offset=32 * codes.offset)
        out[0][at] = t.column("phash").to_numpy().astype(np.uint64)
        out[1][at] = i
        out[2][at] = np.stack([t.column(c).to_numpy().astype(np.int64) for c in ("at", "size")], axis=1)
        out[3][at] = t.column("key").to_numpy().astype(np.uint64)
        out[4][at] = words.reshape(-1, 4)
        del t, codes, words
        for a in out:
            release_pages(a)  # written to the page cache: the task holds a part's pages, not the run's
    for a, tmp, name in zip(out, tmps, names):
        a.flush()
        os.replace(tmp, os.path.join(out_dir, f"{name}.npy"))  # pdq last: the mark of a finished task
    return n


def _pdq_words(values: list[bytes], turns: int) -> U64:
    """PDQ bytes (``turns`` hashes each) as (n, turns * 4) uint64 words."""
    raw = np.frombuffer(b"".join(values), dtype=np.uint64)
    return raw.reshape(len(values), 4 * turns) if values else np.zeros((0, 4 * turns), np.uint64)


# ---- what a worker keeps between tasks --------------------------------------------------------

_kept: OrderedDict[tuple[str, ...], tuple[Any, int]] = OrderedDict()
_kept_lock = threading.Lock()


def _keep(key: tuple[str, ...], build: Callable[[], tuple[Any, int]], budget: int | None = None) -> Any:
    """What ``build`` returns (an object and its bytes), kept per worker under ``key``; objects of
    ``key[0]`` past ``budget`` bytes are let go, least recently used first."""
    with _kept_lock:
        if key in _kept:
            _kept.move_to_end(key)
            return _kept[key][0]
    obj, size = build()
    with _kept_lock:
        _kept[key] = (obj, size)
        if budget is not None:
            same = [k for k in _kept if k[0] == key[0]]
            while same and sum(_kept[k][1] for k in same) > budget and same[0] != key:
                del _kept[same.pop(0)]
    return obj


def _stored(stored_dir: str) -> tuple[U64, U64, npt.NDArray[np.int32], I64]:
    def build() -> tuple[tuple[U64, U64, npt.NDArray[np.int32], I64], int]:
        names = ("phash", "pdq", "part", "span")
        return tuple(np.load(os.path.join(stored_dir, f"{n}.npy"), mmap_mode="r") for n in names), 0

    for key in [k for k in _kept if k[0] in ("stored", "tables", "knn", "votes") and k[1] != stored_dir]:
        del _kept[key]  # another run's
    return _keep(("stored", stored_dir), build)  # type: ignore[no-any-return]


def rows_path(codes_path: str) -> str:
    """The row file (``part_rows.write_rows``) written with the codes part ``codes_path``."""
    return codes_path.removesuffix(".parquet") + ".rows"


def _tables(stored_dir: str) -> list[Any]:
    def build() -> tuple[list[Any], int]:
        tables = build_tables(np.ascontiguousarray(_stored(stored_dir)[0]))
        return tables, sum(t.codes.nbytes + t.ids.nbytes + t.offsets.nbytes for t in tables)

    return _keep(("tables", stored_dir), build)  # type: ignore[no-any-return]


def _knn_index(stored_dir: str) -> HammingIndex | NearestCodes:
    """The stored pHashes, searched for their nearest: a ``HammingIndex`` (k nearest at any
    distance) up to ``NEAREST_ANY_UP_TO`` rows, else ``NearestCodes`` (within a radius, all of a
    task's rows in one call)."""

    def build() -> tuple[HammingIndex | NearestCodes, int]:
        ph = np.ascontiguousarray(_stored(stored_dir)[0])
        if len(ph) > NEAREST_ANY_UP_TO:
            codes = NearestCodes.build(ph)
            return codes, codes.nbytes
        index = HammingIndex(64)
        index.add(np.arange(1, len(ph) + 1, dtype=np.int64), ph)
        return index, index.nbytes()

    return _keep(("knn", stored_dir), build)  # type: ignore[no-any-return]


def _vote_table(stored_dir: str) -> VoteTable:
    return _keep(("votes", stored_dir), lambda: (VoteTable(os.path.join(stored_dir, "votes")), 0))  # type: ignore[no-any-return]


# ---- candidates -------------------------------------------------------------------------------


def _retrieved(codes: pa.Table, stored_dir: str) -> list[set[int]]:
    """For each row of ``codes``, the stored rows ``match.retrieval`` admits under one of its turns
    (the multi-index-hashing join, then PDQ under the same turn)."""
    n = codes.num_rows
    out: list[set[int]] = [set() for _ in range(n)]
    if not n:
        return out
    stored_pdq = _stored(stored_dir)[1]
    probe_phash = np.frombuffer(b"".join(codes.column("variants").to_pylist()), np.uint64).copy()
    probe_pdq = _pdq_words(codes.column("turned_pdq").to_pylist(), 8).reshape(n * 8, 4)
    pks = np.asarray(codes.column("pk").to_pylist(), np.int64)
    probe_ids = np.repeat(pks - 1, 8)
    rows = np.arange(n * 8, dtype=np.int64)
    found = [join_chunk(t, probe_phash, probe_ids, rows) for t in _tables(stored_dir)]
    q = np.concatenate([f[0] for f in found])
    s = np.concatenate([f[1] for f in found])
    ok = np.bitwise_count(probe_pdq[q] ^ np.asarray(stored_pdq[s])).sum(axis=1) <= PDQ_RADIUS
    for qi, si in zip((q[ok] // 8).tolist(), (s[ok] + 1).tolist()):
        out[qi].add(si)
    return out


def _nearest(codes: pa.Table, stored_dir: str) -> list[set[int]]:
    """For each row of ``codes``, the ``_KNN`` rows of nearest pHash (itself among them), ties to
    the lower row, within ``NEAREST_RADIUS`` bits once the run holds more than ``NEAREST_ANY_UP_TO``
    rows: ``Mirror.nearest_in_scope``'s rule."""
    index = _knn_index(stored_dir)
    if isinstance(index, HammingIndex):  # a run is one scope: its rows are the scope's
        return [{int(p) for p in index.knn(ph, _KNN)[0]} for ph in codes.column("phash").to_pylist()]
    phashes = codes.column("phash").to_numpy().astype(np.uint64)
    rows, _ = index.nearest(phashes, NEAREST_RADIUS, _KNN)
    return [{p + 1 for p in found if p >= 0} for found in rows.tolist()]  # ids are rows + 1


def _voted(features: list[LocalFeatures], stored_dir: str) -> tuple[list[list[int]], list[list[int]]]:
    """For each query's features, the rows its strongest descriptors vote for as ``Cascade._voted``
    does against one index of every row (each descriptor's nearest by the vote table, the same
    candidate rule), and the rows to count again (``second_count``, once their features are read)."""
    sets = [f.descriptors[:_VOTING_FEATURES] for f in features]
    allq = np.concatenate(sets) if sets else np.zeros((0, 32), np.uint8)
    table = _vote_table(stored_dir)
    owner, dist = table.nearest(allq)  # its pages let go as it reads: the page cache keeps them
    out, pools, at = [], [], 0
    for s in sets:
        voter = NearestVotes(owner[at : at + len(s)], dist[at : at + len(s)])
        at += len(s)
        # every owner's votes, then the one rule (a run is one scope: every row is in it)
        votes = voter.vote_each([s], top=None)
        out.append(voted_in_scope(votes, lambda pk: True))
        pools.append(revote_pool(votes, lambda pk: True))
    return out, pools


# ---- the check --------------------------------------------------------------------------------


class _PlannedCascade(Cascade):
    """``Cascade`` whose candidates (retrieved, nearest, voted) were found by the join tasks."""

    plan: dict[int, tuple[set[int], set[int], list[int], list[int]]]
    current: int = 0
    first: dict[int, CheckMatch | None]
    asked: set[int]

    def _candidates(self, query: Query, scope_pk: int) -> tuple[list[int], set[int]]:
        retrieved, nearest, _, _ = self.plan[self.current]
        return sorted(retrieved | nearest), nearest

    def _voted(self, features: LocalFeatures, scope_pk: int) -> tuple[list[int], list[int]]:
        self.asked.add(self.current)  # step 5 ran: the check's answer depends on the votes (``reuse``)
        _, _, voted, recounted = self.plan[self.current]
        return voted, recounted

    def matches(self, query: Query, scope: str, *, exclude_image: int | None = None) -> list[CheckMatch]:
        found = super().matches(query, scope, exclude_image=exclude_image)
        self.first[self.current] = found[0] if found else None  # before step 4 settles it (``reuse``)
        return found


def match_task(
    index: int,
    plan_path: str,
    stored_dir: str,
    pairs_path: str,
    scope: str,
    top: int,
    limits: DecodeLimits,
    thresholds: Thresholds,
    storage_options: Mapping[str, Any],
    checks_path: str,
    earlier: str | None,
) -> int:
    """Find and check the candidates of the index rows first fingerprinted in part ``index`` of
    the plan (``plan_path``: each part's codes file and fingerprint file); their pairs
    go to ``pairs_path`` (``schema.PAIRS``), and each row's check to ``checks_path``
    (``reuse.CHECKED``). A row whose candidates are those of its check in ``earlier`` (the
    ``CHECKED`` file an earlier run wrote for this partition, or None) is not checked again: that
    check's pairs are its pairs. Returns the pair count."""
    plan = _keep(("plan", plan_path), lambda: (pq.read_table(plan_path), 0))
    codes_paths = plan.column("codes").to_pylist()
    part_paths = plan.column("part").to_pylist()
    codes = pq.read_table(codes_paths[index])
    pks = codes.column("pk").to_pylist()

    _, _, part_index, spans = _stored(stored_dir)
    row_files = [rows_path(p) for p in codes_paths]

    def where(pk: int) -> tuple[str, int, int]:
        return row_files[int(part_index[pk - 1])], int(spans[pk - 1, 0]), int(spans[pk - 1, 1])

    clock = _Clock()
    files, local = read_rows(where, pks, scope)
    features = [features_of(local.get(pk), files[pk]) for pk in pks]
    clock.lap("read", None)
    retrieved = clock.lap("join", _retrieved(codes, stored_dir))
    nearest = clock.lap("nearest", _nearest(codes, stored_dir))
    rows = PartRows(scope, files, local)
    cascade = _PlannedCascade(rows, rows, Mirror(NoLog()), thresholds, limits)  # type: ignore[arg-type]
    cascade.plan, cascade.first, cascade.asked = {}, {}, set()

    def check(pk: int, query: Query, feats: LocalFeatures) -> list[Any]:
        cascade.current = pk
        found = cascade.check(query, feats, scope, exclude_image=pk)
        reuse.saw(pk, found, cascade.first.get(pk), pk in cascade.asked)
        return found

    def score(pk: int, query: Query, feats: LocalFeatures) -> list[Any]:
        """Steps 1 to 3 alone, over the row's gained candidates (``reuse``)."""
        cascade.current = pk
        found = cascade.matches(query, scope, exclude_image=pk)
        reuse.saw(pk, found, found[0] if found else None, False)
        return found

    part = pq.read_table(part_paths[index], columns=["url", "turns", "lossless"])
    part = part.take(pa.array(codes.column("row").to_pylist(), pa.int64()))
    # a grown run checks in full only the rows whose answer may change otherwise (``reuse``)
    salt = digest(FINGERPRINT_VERSION, scope, top, thresholds, limits).encode()
    reuse = RowReuse(earlier, salt, np.load(os.path.join(stored_dir, "key.npy"), mmap_mode="r"), top)
    need = reuse.split(pks, part.column("url").to_pylist(), [r | n for r, n in zip(retrieved, nearest)])
    voted: list[list[int]] = [[] for _ in pks]
    pools: list[list[int]] = [[] for _ in pks]

    def votes_of(at: list[int]) -> dict[int, tuple[list[int], list[int]]]:
        """The vote sets of the rows at ``at`` (of every row in a fresh run; of the rows ``reuse``
        names in a grown one)."""
        v, p = _voted(_take(features, at), stored_dir)
        for j, vj, pj in zip(at, v, p, strict=True):
            voted[j], pools[j] = vj, pj
        return {j: (voted[j], pools[j]) for j in at}

    todo, extend = reuse.settle(clock.lap("votes", votes_of(need)))
    own = set(pks)

    def candidates(j: int, gained: dict[int, set[int]] | None) -> set[int]:
        """The rows row ``j`` is checked against, or (``gained``) scored against, besides its part's."""
        if gained is not None:
            return gained[j] - own
        return (retrieved[j] | nearest[j] | set(voted[j]) | set(pools[j])) - own

    def checked(at: list[int], gained: dict[int, set[int]] | None) -> pa.Table:
        """The pairs of the rows at positions ``at``: checked in full, or (``gained``) scored
        against their gained candidates alone, a batch of rows at a time, so that the candidates
        held (about 13 KB each, mostly local features) stay bounded by VERIFY_CANDIDATES, not by
        the partition (a part's rows reach ~2,000 candidates)."""
        tables = []
        for batch, wanted in _batches(at, lambda j: candidates(j, gained), VERIFY_CANDIDATES):
            b_pks, b_retrieved, b_nearest = _take(pks, batch), _take(retrieved, batch), _take(nearest, batch)
            b_voted, b_pools, b_features = _take(voted, batch), _take(pools, batch), _take(features, batch)
            if gained is not None:  # each admitted as a nearest is: a full check admits every row of C
                b_retrieved = b_nearest = [gained[j] for j in batch]
                b_voted, b_pools = [[] for _ in batch], [[] for _ in batch]
            more_files, more_local = read_rows(where, wanted, scope)
            held_local = {**local, **more_local}
            rows.load({**files, **more_files}, held_local)
            del more_files, more_local
            # the second count, as one machine's crop tier makes it, from the pool's codes read for this batch
            recounted = [
                second_count(v, p, [f.descriptors[:_VOTING_FEATURES]], held_local)
                for v, p, f in zip(b_voted, b_pools, b_features, strict=True)
            ]
            del held_local
            batch_plan = zip(b_pks, b_retrieved, b_nearest, b_voted, recounted, strict=True)
            cascade.plan.update({pk: (r, n, v, c) for pk, r, n, v, c in batch_plan})
            chunk = part.take(pa.array(batch, pa.int64()))
            check_one = score if gained is not None else check
            tables.append(check_rows(chunk, b_pks, rows.held, b_features, check_one, top, limits, storage_options))
            pa.default_memory_pool().release_unused()  # the row groups read: else kept by the pool for the next reads
        return pa.concat_tables(tables) if tables else PAIRS.empty_table()

    scored = checked(sorted(extend), extend)
    # a gained candidate that would come first changes steps 4 and 5: that row is checked in full
    demoted = [j for j in sorted(extend) if not reuse.first_stays(pks[j], j)]
    for j, (v, p) in votes_of(demoted).items():
        reuse.demote(j)
        reuse.with_votes(j, v, p)
    scored = scored.filter(pc.invert(pc.is_in(scored.column("file_pk"), pa.array(_take(pks, demoted), pa.int64()))))
    full = checked(sorted(todo + demoted), None)
    table, checks = reuse.tables(pa.concat_tables([scored, full]))
    clock.lap("verify", None)
    write_atomically(checks, checks_path)  # first: the pairs file marks the task finished
    # the CPU each step took, for benchmarks/scale_find.py (nothing reads it to decide anything)
    meta = {"cpu_seconds": json.dumps(clock.laps), "rows": json.dumps(reuse.counts)}
    write_atomically(table.replace_schema_metadata(meta), pairs_path)
    for a in _stored(stored_dir):
        release_pages(a)  # the candidates' PDQs and spans read, at random: the page cache keeps them
    return int(table.num_rows)


class _Clock:
    """CPU seconds of this thread, step by step."""

    def __init__(self) -> None:
        self.laps: dict[str, float] = {}
        self._last = time.thread_time()

    def lap(self, name: str, value: T) -> T:
        """Charge the time since the last lap to ``name``; returns ``value``."""
        now = time.thread_time()
        self.laps[name] = round(self.laps.get(name, 0.0) + now - self._last, 3)
        self._last = now
        return value


def _batches(at: list[int], candidates: Callable[[int], set[int]], most: int) -> Iterator[tuple[list[int], set[int]]]:
    """``at`` cut into runs of rows, each with the union of their candidates: a run ends once
    that union holds ``most`` or more (a row is never split, so a run may pass ``most`` by
    one row's candidates)."""
    batch: list[int] = []
    wanted: set[int] = set()
    for j in at:
        batch.append(j)
        wanted |= candidates(j)
        if len(wanted) >= most:
            yield batch, wanted
            batch, wanted = [], set()
    if batch:
        yield batch, wanted


def _take(values: Sequence[T], at: list[int]) -> list[T]:
    """``values`` at positions ``at``."""
    return [values[j] for j in at]
