"""The crop tier's vote table of a scale-out run: every stored descriptor, filed by key, on disk.

One machine's ``DescriptorIndex`` finds, for each query descriptor, its nearest stored candidate:
a stored code that shares a ``key_bits``-bit key with it in one of ``TABLES`` tables, the key's
length growing with the codes stored so that a bucket holds about ``BUCKET_CODES`` of them. A
run's matching tasks apply that same rule against this table, built once by ``build_vote_table``
(a counting sort of the run's codes by each table's key, written as memory-mapped arrays):

* ``t{T}.offs.npy`` (int64, 2**bits + 1): where each key's codes start in table T;
* ``t{T}.hot.npy`` and ``t{T}.cold.npy`` ((n, 2) uint64 each) and ``t{T}.owner.npy`` (int32): the
  codes key by key, each split in two halves, and the row each belongs to. The hot half is the
  two words of a code with none of table T's key bits (``hot_words``);
* ``meta.json``: the key length and code count (written last: the mark of a finished table).

A query descriptor then looks at one bucket a table, about ``BUCKET_CODES`` contiguous codes,
so that a query's work does not grow with the run (the shards of stored rows that every part
asked in turn made it grow as n, and the run as n squared). The table is read through the page
cache, shared by a machine's workers: what a worker holds of it is the pages its current task
touched, let go as ``VoteTable.nearest`` leaves them behind, not a copy per worker. Each table keeps its
codes beside their keys (36 bytes a code, six tables: about 14 KB of disk a row) so that a bucket
is one or two pages read, not a page a code.

Votes count only a nearest code within ``MATCH_BITS`` (40 of 256 bits), and two words of an
unrelated code already differ in about 64. So a bucket is scanned on its hot halves (16 bytes a
code), and a code's cold half and owner are read only when those two words lie within the best
distance so far: each code is one or two cache lines less to read. At a million rows a task's
queries fall a bucket or more apart, and its time went on reading the table, not on comparing.
"""

from __future__ import annotations

import json
import mmap
import os
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pyarrow.parquet as pq

from lookalike.fingerprints.kernels import jit, popcount, prefetch
from lookalike.index.search.descriptors import (
    DESCRIPTOR_BYTES,
    MATCH_BITS,
    PROBE_BITS,
    TABLES,
    DescriptorVoter,
    _closer,  # the rule's own kernels
    _flips,
    key_bits,
    wide_key,
)

__all__ = ["NearestVotes", "VoteTable", "build_vote_table", "hot_words", "release_pages"]

U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
#: codes sorted at a time while building (8 MB of codes): what the build holds besides its counts.
#: 2**20 held 32 MB of codes in five or six arrays at once, so that a stored task's memory grew by
#: ~150 MB between 2,000 photos (their 128,000 codes one chunk) and 16,000
_CHUNK = 1 << 18
#: codes of a table a ``VoteTable.nearest`` pass reads before letting go of their pages (8 MB).
#: Measured on 2 million queries at 100,000 rows (busy machine): votes' CPU +8 % over letting go
#: after each task at 4 MB windows, +4 % at 8 MB, +3 % at 16 MB (the pages faulted in again)
_WINDOW_CODES = 1 << 18
#: bytes ``_read_back`` reads at a time
_READ_BACK_BYTES = 1 << 24
#: queries whose buckets' bounds are looked up (and their first lines asked for) while the
#: previous block's buckets are scanned
_BLOCK = 16
#: hot halves in a cache line (16 bytes each)
_LINE_CODES = 4
#: cache lines of a bucket asked for ahead, when the table has more buckets than the queries: each
#: bucket is then a miss of the caches of its own (a bucket holds about 16 codes, 4 lines). Measured
#: on a table of a million rows, a task's 1.6 million queries: 244-250 -> 191-196 ns a query and
#: table; on one of 100,000 rows (3 queries a bucket), asking cost 126-131 -> 137-143, so it is not
#: asked there
_PREFETCH_LINES = 4
#: top bits of a key the queries are put in order by
_ORDER_BITS = 16
#: queries copied into key order at a time (2 MB), with their best so far. Read in place, in key
#: order, each query was a miss of the caches (a task's queries, 52 MB, in another order for each
#: table). Measured on a table of the 1M run's vote table, a task's 1.6 million queries, the same
#: answers: 297 -> 224 ns a query and table (on a table held in the caches: 230 -> 55)
_GATHER = 1 << 16


@jit
def _table_keys(words: U64, table: int, bits: int) -> I64:
    """Each code's ``bits``-bit key of ``table`` (``DescriptorIndex``'s)."""
    drop = np.uint64(32 - bits)
    out = np.empty(words.shape[0], np.int64)
    for i in range(words.shape[0]):
        out[i] = np.int64(wide_key(words, i, table) >> drop)
    return out


@jit
def _count(words: U64, table: int, bits: int, counts: I64) -> None:
    """Add each code's key of ``table`` to ``counts`` (at ``key + 1``), with no array of keys."""
    drop = np.uint64(32 - bits)
    for i in range(words.shape[0]):
        counts[np.int64(wide_key(words, i, table) >> drop) + 1] += 1


def hot_words(table: int) -> I64:
    """The words of a code in the order ``table`` files them: first its hot half, the two words
    that hold none of the table's key bits (slice ``table`` and its extension, ``wide_key``), then
    the other two. A bucket's codes share their key, so its words would say least of them."""
    keyed = {table // 4, ((table + TABLES) % 16) // 4}
    hot = [w for w in (3, 2, 1, 0) if w not in keyed][:2]
    return np.array([*hot, *(w for w in range(4) if w not in hot)], np.int64)


@jit
def _scatter(
    words: U64, owners: I32, keys: I64, cursor: I64, w: I64, out_hot: U64, out_cold: U64, out_owner: I32
) -> None:
    """Each code to the next free place of its key's bucket, its words split by ``w`` (``hot_words``)."""
    for i in range(words.shape[0]):
        at = cursor[keys[i]]
        cursor[keys[i]] = at + 1
        out_hot[at, 0], out_hot[at, 1] = words[i, w[0]], words[i, w[1]]
        out_cold[at, 0], out_cold[at, 1] = words[i, w[2]], words[i, w[3]]
        out_owner[at] = owners[i]


@jit
def _key_order(keys: I64, bits: int, starts: I64) -> I64:
    """The positions of ``keys`` (each below 2**bits) in key order (a counting sort); ``starts``
    (2**bits + 1 zeros) is set to where each key's positions start in it, the last the count."""
    for k in keys:
        starts[k + 1] += 1
    for b in range(1 << bits):
        starts[b + 1] += starts[b]
    counts = starts.copy()
    order = np.empty(len(keys), np.int64)
    for j in range(len(keys)):
        order[counts[keys[j]]] = j
        counts[keys[j]] += 1
    return order


@jit
def _bounds(
    hot: U64, offs: I64, table: int, drop: np.uint64, probes: U64, q: U64, start: int, stop: int, lines: int,
    bounds: I64,
) -> None:  # fmt: skip
    """The bounds of the buckets of queries ``start:stop`` (into ``bounds``, by query from
    ``start``, probe, first and past), the first ``lines`` cache lines of each asked for ahead."""
    low = np.uint64(0xFFFF)
    for i in range(start, stop):
        qw = wide_key(q, i, table)
        for p in range(len(probes)):
            key = np.int64(((((qw >> np.uint64(16)) ^ probes[p]) << np.uint64(16)) | (qw & low)) >> drop)
            first, past = offs[key], offs[key + 1]
            bounds[i - start, p, 0], bounds[i - start, p, 1] = first, past
            for k in range(first, min(past, first + lines * _LINE_CODES), _LINE_CODES):
                prefetch(hot, k)


@jit
def _nearest_in_table(
    hot: U64, cold: U64, owners: I32, offs: I64, table: int, bits: int, probes: U64, q: U64, w: I64,
    lines: int, best_owner: I32, best_dist: I64,
) -> None:  # fmt: skip
    """``DescriptorIndex``'s ``_nearest_in_part`` over one table of the vote table: each query
    code's bucket (its key with the slice XOR each probe), nearest first, ties to the lower owner,
    no farther than ``best_dist`` (a code is read whole only when its hot half is that near).
    The queries ``q`` come in key order (gathered so by ``VoteTable.nearest``), with their best so
    far: the table is then read forward, page after page, and so are they.

    The bounds of the next ``_BLOCK`` queries' buckets are looked up while this block's buckets
    are scanned, and (``lines`` > 0) the first ``lines`` cache lines of each of those buckets
    asked for (``prefetch``): the loads do not wait on one another, so the processor has many
    in flight, where looking each up just before its scan waited on each in turn."""
    drop = np.uint64(32 - bits)
    n_probes = len(probes)
    this, following = np.empty((_BLOCK, n_probes, 2), np.int64), np.empty((_BLOCK, n_probes, 2), np.int64)
    _bounds(hot, offs, table, drop, probes, q, 0, min(_BLOCK, len(q)), lines, this)
    for start in range(0, len(q), _BLOCK):
        stop = min(start + _BLOCK, len(q))
        _bounds(hot, offs, table, drop, probes, q, stop, min(stop + _BLOCK, len(q)), lines, following)
        for j in range(start, stop):
            q0, q1, q2, q3 = q[j, w[0]], q[j, w[1]], q[j, w[2]], q[j, w[3]]
            bd, bo = best_dist[j], best_owner[j]
            for p in range(n_probes):
                for k in range(this[j - start, p, 0], this[j - start, p, 1]):
                    d = popcount(hot[k, 0] ^ q0) + popcount(hot[k, 1] ^ q1)
                    if d > bd:  # farther already: not nearer, nor as near
                        continue
                    d += popcount(cold[k, 0] ^ q2) + popcount(cold[k, 1] ^ q3)
                    if _closer(d, owners[k], bd, bo):
                        bd, bo = d, owners[k]
            best_owner[j], best_dist[j] = bo, bd
        this, following = following, this


def release_pages(a: np.ndarray) -> None:
    """Drop a memory-mapped array's pages from this process (the page cache keeps them)."""
    m = getattr(a, "_mmap", None)
    if isinstance(m, mmap.mmap) and hasattr(m, "madvise"):
        m.madvise(mmap.MADV_DONTNEED)


def build_vote_table(codes_paths: list[str], out_dir: str) -> int:
    """The vote table (module doc) of the ``descriptors`` and ``pk`` of every codes part, in
    ``out_dir``. Holds one part and ``_CHUNK`` codes at a time (or a range of keys, about as
    many), and each table's key counts (8 bytes a bucket, about half a byte a code); writes each
    table's codes a second time on the way (spilled by range of keys). Returns the codes filed."""
    os.makedirs(out_dir, exist_ok=True)
    raw_codes, raw_owner = os.path.join(out_dir, "all.codes"), os.path.join(out_dir, "all.owner")
    n = 0
    with open(raw_codes, "wb") as fc, open(raw_owner, "wb") as fo:
        for path in codes_paths:
            t = pq.read_table(path, columns=["pk", "descriptors"])
            for pk, codes in zip(t.column("pk").to_pylist(), t.column("descriptors").to_pylist()):
                if codes:
                    fc.write(codes)
                    fo.write(np.full(len(codes) // DESCRIPTOR_BYTES, pk, np.int32).tobytes())
                    n += len(codes) // DESCRIPTOR_BYTES
    bits = key_bits(n)

    def chunks() -> list[tuple[int, int]]:
        return [(lo, min(n, lo + _CHUNK)) for lo in range(0, n, _CHUNK)]

    def read(lo: int, hi: int) -> tuple[U64, I32]:
        """Codes ``lo:hi`` mapped from the raw files (the page cache's pages, not a copy of them)."""
        words = np.memmap(raw_codes, np.uint64, "r", offset=32 * lo, shape=(hi - lo, 4))
        return np.asarray(words), np.asarray(np.memmap(raw_owner, np.int32, "r", offset=4 * lo, shape=(hi - lo,)))

    for table in range(TABLES):
        # one array of 2**bits counts (half a byte a code), summed in place into the offsets
        offs = np.zeros((1 << bits) + 1, np.int64)
        for lo, hi in chunks():
            _count(read(lo, hi)[0], table, bits, offs)
        np.cumsum(offs, out=offs)
        # Written range by range of keys (each about ``_CHUNK`` codes), not scattered at once: a
        # scatter of every chunk into the whole table touched a page of it a code, n^2 / _CHUNK
        # page faults in all (the stored task grew as n^1.7). The codes of each range are first
        # appended to a file of their own, then sorted in memory and written out in order.
        cuts = _ranges(offs)
        spill = _spill((read(lo, hi) for lo, hi in chunks()), table, bits, cuts, out_dir)
        w = hot_words(table)
        with _Appender(out_dir, table, n) as out:
            for r, path in enumerate(spill):
                first, last = int(offs[cuts[r]]), int(offs[cuts[r + 1]])
                if last > first:
                    words = np.asarray(np.memmap(f"{path}.codes", np.uint64, "r")).reshape(-1, 4)
                    owners = np.asarray(np.memmap(f"{path}.owner", np.int32, "r"))
                    cursor = offs[cuts[r] : cuts[r + 1]] - first
                    # in chunk order within a key, as the scatter put them: the same table
                    keys = _table_keys(words, table, bits) - cuts[r]
                    hot, cold = np.empty((last - first, 2), np.uint64), np.empty((last - first, 2), np.uint64)
                    owner = np.empty(last - first, np.int32)
                    _scatter(words, owners, keys, cursor, w, hot, cold, owner)
                    out.append(hot, cold, owner)
                    del words, owners, keys, cursor, hot, cold, owner
                    os.remove(f"{path}.codes")
                    os.remove(f"{path}.owner")
        np.save(_name(out_dir, table, "offs"), offs)
    os.remove(raw_codes)
    os.remove(raw_owner)
    for table in range(TABLES):
        for what in ("hot", "cold", "owner", "offs"):
            _read_back(_name(out_dir, table, what))
    with open(os.path.join(out_dir, "meta.json"), "w") as fh:
        json.dump({"bits": bits, "codes": n}, fh)
    return n


class _Appender:
    """Table ``table``'s three code files (``t{T}.hot/cold/owner.npy``, ``n`` codes), written range
    after range by ``append``, by plain buffered writes: the build holds one range's codes (about
    9 MB), and no mapping of the table whose pages it must flush and let go of."""

    def __init__(self, out_dir: str, table: int, n: int) -> None:
        self._files = []
        for what, dtype, shape in (("hot", np.uint64, (n, 2)), ("cold", np.uint64, (n, 2)), ("owner", np.int32, (n,))):
            fh = open(_name(out_dir, table, what), "wb")
            np.lib.format.write_array_header_1_0(
                fh, {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape}
            )
            self._files.append(fh)

    def append(self, *arrays: np.ndarray) -> None:
        """The next range's hot halves, cold halves and owners."""
        for fh, a in zip(self._files, arrays, strict=True):
            fh.write(np.ascontiguousarray(a).data)

    def __enter__(self) -> _Appender:
        return self

    def __exit__(self, *exc: object) -> None:
        for fh in self._files:
            fh.close()


def _read_back(path: str) -> None:
    """Write ``path`` out, drop its pages from the page cache and read it back in, front to back.

    A file written (or mapped) a page at a time sits in the page cache in 4 KB pages, and a
    process that maps it takes a page fault for every 16 of them. Read in by ``read``, a recent
    kernel (Linux 6.18 here) files it in large folios, and a fault maps a folio's worth. Each
    match task maps the whole table again (``VoteTable`` lets go of its pages as it goes), so
    at a million rows the faults had cost a task more than the table's reading: measured on a
    task's 1.6 million queries, 23,500 -> 7,800 faults a table and pass, and 320 -> 245 ns a
    query and table. Elsewhere on Linux this is one sequential read of the table (about 6 s of
    kernel time a million rows, 14 GB); where the page cache cannot be told to drop a file's pages
    (no ``posix_fadvise``: macOS), it is not done."""
    if not hasattr(os, "posix_fadvise"):
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fdatasync(fd)  # written out: the page cache drops only clean pages
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        buffer = bytearray(_READ_BACK_BYTES)
        while os.readv(fd, [buffer]):
            pass
    finally:
        os.close(fd)


def _spill(chunks: Iterable[tuple[U64, I32]], table: int, bits: int, cuts: I64, out_dir: str) -> list[str]:
    """Append the codes and owners of each chunk to the files of their range of keys of ``table``
    (``cuts``: ``_ranges``), in chunk order; returns each range's files' stem."""
    spill = [os.path.join(out_dir, f"spill{r}") for r in range(len(cuts) - 1)]
    for path in [f"{p}.{what}" for p in spill for what in ("codes", "owner")]:
        if os.path.exists(path):  # a killed build's leftovers
            os.remove(path)
    for words, owners in chunks:
        where = np.searchsorted(cuts, _table_keys(words, table, bits), side="right") - 1
        order = np.argsort(where, kind="stable")
        bounds = np.searchsorted(where[order], np.arange(len(spill) + 1))
        for r in np.flatnonzero(np.diff(bounds)).tolist():
            at = order[bounds[r] : bounds[r + 1]]
            with open(f"{spill[r]}.codes", "ab") as fc, open(f"{spill[r]}.owner", "ab") as fo:
                fc.write(np.ascontiguousarray(words[at]).tobytes())
                fo.write(owners[at].tobytes())
    return spill


def _ranges(offs: I64) -> I64:
    """Key boundaries cutting a table into ranges of about ``_CHUNK`` codes (a key's codes never
    split): the first key of each range, and 2**bits last."""
    keys = len(offs) - 1
    cuts = np.unique(np.searchsorted(offs[1:], np.arange(_CHUNK, int(offs[-1]), _CHUNK), side="left") + 1)
    return np.concatenate([[0], cuts[cuts < keys], [keys]]).astype(np.int64)


def _name(out_dir: str, table: int, what: str) -> str:
    return os.path.join(out_dir, f"t{table}.{what}.npy")


class _Mapped:
    """A ``.npy`` file memory-mapped read-only by this process, whose pages can be let go by range
    (``drop_to``) as a forward pass leaves them behind: np.load's map gives no offsets to do so."""

    def __init__(self, path: str) -> None:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = header(fh)
            self._start = fh.tell()
            self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
        count = int(np.prod(shape))
        self.array: np.ndarray = np.frombuffer(self._map, dtype, count, self._start).reshape(shape)
        self._row = int(dtype.itemsize * np.prod(shape[1:]))
        self._done = 0  # bytes of the map let go from its start

    def drop_to(self, rows: int) -> None:
        """Let go of the whole pages before row ``rows`` not let go yet (the page cache keeps them)."""
        end = (self._start + rows * self._row) // mmap.PAGESIZE * mmap.PAGESIZE
        if end > self._done:
            self._map.madvise(mmap.MADV_DONTNEED, self._done, end - self._done)
            self._done = end

    def release(self) -> None:
        """Let go of every page read so far."""
        self._map.madvise(mmap.MADV_DONTNEED)
        self._done = 0


class VoteTable:
    """The vote table in ``folder`` (``build_vote_table``), memory-mapped. Raises OSError when it
    is missing.

    ``nearest`` lets go of each table's pages as its key-ordered pass leaves them behind, about
    ``_WINDOW_CODES`` codes at a time: a match task asks for so many codes (a 4,096-row part asks
    2 million) that it touched most pages of every table, so that a worker's resident memory held
    the whole table (14 KB a row) by the end of each task."""

    def __init__(self, folder: str) -> None:
        with open(os.path.join(folder, "meta.json")) as fh:
            meta = json.load(fh)
        self.bits, self.codes = int(meta["bits"]), int(meta["codes"])
        self._tables = [
            tuple(_Mapped(_name(folder, t, what)) for what in ("hot", "cold", "owner", "offs")) for t in range(TABLES)
        ]
        self._words = [hot_words(t) for t in range(TABLES)]
        self._probes = _flips(PROBE_BITS)

    def nearest(self, descriptors: npt.NDArray[np.uint8]) -> tuple[I32, I64]:
        """For each query descriptor ((k, 32) uint8), the row of its nearest stored candidate
        within ``MATCH_BITS`` (-1: none) and the distance in bits (257: none), ties to the lower
        row: ``DescriptorIndex.nearest`` over every row's codes, where it is that near, the only
        answers its votes count."""
        q = np.ascontiguousarray(descriptors, np.uint8).reshape(-1, DESCRIPTOR_BYTES).view(np.uint64)
        best_owner = np.full(len(q), -1, np.int32)
        if not self.codes or not len(q):
            return best_owner, np.full(len(q), 257, np.int64)
        best_dist = np.full(len(q), MATCH_BITS + 1, np.int64)  # as near as a code may be, plus one
        # queries ordered by their key's top _ORDER_BITS bits (a counting sort over 2**16 values,
        # not over every key: its counts would grow with the table); a window ends at a top value
        top_bits = min(self.bits, _ORDER_BITS)
        shift = self.bits - top_bits
        lines = _PREFETCH_LINES if len(q) < 1 << self.bits else 0  # fewer queries than buckets
        qs = np.empty((_GATHER, 4), np.uint64)
        owner_s, dist_s = np.empty(_GATHER, np.int32), np.empty(_GATHER, np.int64)
        for t, maps in enumerate(self._tables):
            hot, cold, owner, offs = (m.array for m in maps)
            starts = np.zeros((1 << top_bits) + 1, np.int64)
            order = _key_order(_table_keys(q, t, top_bits), top_bits, starts)
            ends = np.asarray(offs[np.arange(1, (1 << top_bits) + 1) << shift])  # past each top value's codes
            last = np.flatnonzero(np.diff(ends // _WINDOW_CODES))  # top values that end a window
            for lo, hi, done in zip(
                [0, *(last + 1).tolist()], [*(last + 1).tolist(), 1 << top_bits], ends[[*last, -1]]
            ):
                for a in range(int(starts[lo]), int(starts[hi]), _GATHER):
                    at = order[a : min(a + _GATHER, int(starts[hi]))]
                    c = len(at)
                    np.take(q, at, axis=0, out=qs[:c])
                    np.take(best_owner, at, out=owner_s[:c])
                    np.take(best_dist, at, out=dist_s[:c])
                    _nearest_in_table(
                        hot, cold, owner, offs, t, self.bits, self._probes, qs[:c], self._words[t], lines,
                        owner_s[:c], dist_s[:c],
                    )  # fmt: skip
                    best_owner[at], best_dist[at] = owner_s[:c], dist_s[:c]
                if len(self._probes) == 1:  # one bucket a query: the pass reads the table forward
                    for m in maps[:3]:
                        m.drop_to(int(done))
                    maps[3].drop_to(hi << shift)
            for m in maps:
                m.release()
        best_dist[best_owner < 0] = 257
        return best_owner, best_dist


class NearestVotes(DescriptorVoter):
    """Votes from a ``nearest`` answer found already (by ``VoteTable``), for the query codes it
    was found for."""

    def __init__(self, owners: I32, dist: I64) -> None:
        self._owners, self._dist = owners, dist

    def __len__(self) -> int:
        """The codes answered (the votes need them non-empty)."""
        return len(self._owners)

    def nearest(self, descriptors: npt.NDArray[np.uint8]) -> tuple[I32, I64]:
        """The answer given (``descriptors`` must be the codes it was found for)."""
        return self._owners, self._dist
