"""Exact search of binary codes by Hamming distance, in memory.

Method: multi-index hashing (M. Norouzi, A. Punjani, D. J. Fleet, "Fast search in Hamming
space with multi-index hashing", CVPR 2012). Every code is cut into m disjoint substrings,
three per 64-bit word (22, 21 and 21 bits). Write r = s*m + a with 0 <= a < m. If two codes
differ in at most r bits then a + 1 chosen substrings cannot all differ in more than s bits and
the others in more than s - 1, or the distance would be at least (a+1)(s+1) + (m-a-1)s = r + 1.
So a radius-r query probes, in each substring table, every key within s (or s - 1) bits of the
query's own key, gathers the rows filed under those keys and verifies their full distance with
a popcount: no false negatives, no false positives.

Memory layout of a frozen part holding n codes in m tables (numpy arrays only, no dicts):

* ``codes``  uint64 (n, bits/64), big-endian words (bit 0 is the top bit of word 0), with the
  rows grouped by the first substring: that table needs no permutation, and its candidates are
  contiguous runs of ``codes``, the cheapest to gather;
* ``ids``    int64 (n,) in row order, and ``sorter`` uint32 (n,) listing the rows by id, so an id
  is found by binary search;
* ``perm``   uint32 ((m-1)*n,): each other table's rows, sorted by that table's key;
* ``offs``   uint32 (sum of 2**p_t, plus 1), CSR bucket bounds of all tables end to end: bucket k
  of table t spans positions [offs[base_t + k], offs[base_t + k + 1]); positions below (m-1)*n
  index ``perm``, the rest are rows (plus (m-1)*n) of the first table.

A table keys on only the first p_t bits of its substring, p_t as large as lets all offset
arrays fit in 3.5 bytes a code (18 bits at a million codes; 21 and 22 at ten million). A
substring within s bits of the query's is also within s bits on its prefix, so the search stays
exact. A 64-bit code thus costs 8 + 8 + 4 + 8 + <=3.5 < 32 bytes.

A query is one call of a compiled kernel (numba, nopython mode, releasing the GIL). It sums the
sizes of the buckets it would probe and, where verifying would cost more than scanning (about
1/16 of a part as candidates: a small part, a large radius, a query inside a huge cluster), scans
the part instead. Otherwise it verifies every candidate's full distance, the first table's
(contiguous rows) first, then each permuted table's in turn, and reports a hit unless a table
verified before has the row as a candidate too. A row is a candidate of table t exactly when its
key is within t's probe radius of the query's key, so that takes two popcounts on the row's own
code, for hits only: each hit is reported once, with no set of visited rows. The reads are
random (at r = 10 on a million codes some 2,150 buckets and 8,200 candidates, ~6,500 cache
lines), so the kernel goes in stages, each issuing independent reads and prefetching those of
the next: bucket bounds, the permuted tables' rows, the codes. It drops tombstones and returns
the hits sorted by (distance, id); only hits from several parts (or the delta) meet in numpy.

The kernels compile on first use (some seconds for each code width) and numba caches the
machine code on disk: in ``$NUMBA_CACHE_DIR`` if set, else in ``__pycache__`` beside this file,
else in the user's cache directory (``~/.cache/numba``). A later process loads it on its first
query, in about 0.4 s (mostly numba importing its own modules). Where no such directory is
writable (a read-only install without a writable home) numba refuses to cache and the kernels
are compiled in memory instead, once per process.

Updates: new codes go to a small delta buffer that every query scans. A full delta becomes a
new frozen part, and parts are merged log-structured style (a part absorbs the next one once
that is a quarter of its size), so bulk loading costs O(n log n) overall and few parts exist.
Removed or replaced rows become sorted tombstones, filtered out of the hits; a part is rebuilt
once 1/128 of it is tombstones.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import llvmlite.ir  # type: ignore[import-untyped, unused-ignore]
import numba
import numba.core.cgutils
import numba.extending
import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError, StoreError
from lookalike.fingerprints.kernels import jit as _jit
from lookalike.fingerprints.kernels import popcount as _popcount

__all__ = ["Code", "HammingIndex"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
#: one query code: an int, a numpy uint64 (64-bit codes), or bits/8 big-endian bytes
Code = int | np.uint64 | npt.NDArray[np.uint8] | npt.NDArray[np.uint64]
#: a query as the kernels take it: a uint64 for 64-bit codes, else its words (bits/64,)
Query = np.uint64 | U64

_FORMAT = "lookalike.HammingIndex/1"
_WIDTHS = (22, 21, 21)  # substring widths in each 64-bit word (Norouzi et al.: about log2 n)
_TABLES_FROM = 1 << 14  # below this many codes a scan beats any table
_DELTA_MAX = 1 << 13  # scanning this many codes costs a fraction of one probe set
_OFFSET_BYTES = 3.5  # per code, for all offset arrays: with 8 + 8 + 4 + 8, tombstones and the
# delta the total stays under 32 bytes a code from about a million codes
_MAX_PROBES = 1 << 17  # a plan holds 8 bytes a probe; beyond this a scan is as quick anyway
_SCAN_FRACTION = 1 / 16  # verifying a candidate costs about as much as scanning 16 codes
# Shared. Writable, though never written (it is empty), because numba types read-only arrays
# apart and would compile the kernels once more for them.
_NONE = np.empty(0, np.int64)

# Kernels. They take the codes as an (n, w) array of words and the query as its words, or, for
# 64-bit codes, as a 1-d array and a uint64: numba compiles each form apart, and ``codes.ndim`` is
# a constant it prunes branches on, so the one-word form verifies a candidate with one XOR and
# one POPCNT (and a query needs no array made for it). Arithmetic stays in uint64 or int64 (numba
# turns mixed signed/unsigned arithmetic into float64); indices are unsigned where it matters,
# which spares numba's wraparound of negative indices.
_CHUNK = 1024  # rows a scan measures before it looks for hits among them


@_jit
def _word(codes: U64, row: int | np.uint64, word: int) -> np.uint64:
    """Word ``word`` of the code in row ``row``."""
    if codes.ndim == 1:
        return np.uint64(codes[row])
    return np.uint64(codes[row, word])


@_jit
def _qword(codes: U64, q: Any, word: int) -> np.uint64:
    """Word ``word`` of the query ``q`` (a ``Query``: a uint64 beside 1-d codes, else an array)."""
    if codes.ndim == 1:
        return np.uint64(q)
    return np.uint64(q[word])


@_jit
def _bits(codes: U64) -> int:
    """The width of the codes."""
    if codes.ndim == 1:
        return 64
    return int(64 * codes.shape[1])


@_jit
def _distance(codes: U64, row: int | np.uint64, q: Any) -> np.int64:
    """Hamming distance of the code in row ``row`` to the query ``q``."""
    if codes.ndim == 1:
        return _popcount(codes[row] ^ q)
    d = np.int64(0)
    for word in range(len(q)):
        d += _popcount(codes[row, word] ^ q[word])
    return d


@_jit
def _within(codes: U64, row: int | np.uint64, keys: I64, tables: I64, qkey: I64, t: int) -> bool:
    """Whether table t has the row as a candidate: whether the row's key, ``keys[t]`` giving its
    word, shift and mask, is within the table's probe radius ``tables[t, 3]`` of the query's."""
    key = (_word(codes, row, keys[t, 0]) >> np.uint64(keys[t, 1])) & np.uint64(keys[t, 2])
    return bool(_popcount(key ^ np.uint64(qkey[t])) <= tables[t, 3])


@_jit
def _sorted_hits(ids: I64, dead: I64, rows: I64, dist: I64, bits: int) -> tuple[I64, I64]:
    """(ids, distances) of the rows not in ``dead`` (sorted), by distance then id: a sort by id
    (ids are unique), then a stable counting sort by distance."""
    if len(dead):
        at = np.minimum(np.searchsorted(dead, rows), len(dead) - 1)
        live = dead[at] != rows
        rows, dist = rows[live], dist[live]
    hit_ids = ids[rows]
    start = np.zeros(bits + 2, np.int64)
    for d in dist:
        start[d + 1] += 1
    start = np.cumsum(start)
    out_ids, out_d = np.empty(len(dist), np.int64), np.empty(len(dist), np.int64)
    for i in np.argsort(hit_ids):
        at = start[dist[i]]
        out_ids[at], out_d[at] = hit_ids[i], dist[i]
        start[dist[i]] = at + 1
    return out_ids, out_d


@_jit
def _scan(codes: U64, ids: I64, dead: I64, q: Any, r: int) -> tuple[I64, I64]:
    """(ids, distances) of the live codes within r of the query ``q``, by distance then id.

    Chunk by chunk: the distances first (a loop LLVM vectorises), then the hits among them, if any.
    """
    n = len(codes)
    near = np.empty(_CHUNK, np.int64)
    found, rows, dist = 0, np.empty(min(n, _CHUNK), np.int64), np.empty(min(n, _CHUNK), np.int64)
    for start in range(0, n, _CHUNK):
        size = min(_CHUNK, n - start)
        for i in range(size):
            near[i] = _distance(codes, np.uint64(start + i), q)
        if near[:size].min() > r:
            continue
        if found + size > len(rows):  # room for every row of the chunk
            rows = np.concatenate((rows[:found], np.empty(found + size, np.int64)))
            dist = np.concatenate((dist[:found], np.empty(found + size, np.int64)))
        for i in range(size):
            if near[i] <= r:
                rows[found], dist[found] = start + i, near[i]
                found += 1
    return _sorted_hits(ids, dead, rows[:found], dist[:found], _bits(codes))


def _prefetch_typer(typingctx: Any, array: Any, index: Any) -> Any:
    """Typing of the numba intrinsic ``_prefetch(array, i)``: start loading the cache line of
    ``array[i]`` (``array[i, 0]`` if 2-d) into L2, without waiting for it: LLVM's prefetch."""
    if not isinstance(array, numba.types.Array) or not isinstance(index, numba.types.Integer):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        cgutils: Any = numba.core.cgutils
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        zero = context.get_constant(numba.types.intp, 0)
        at = [context.cast(builder, args[1], signature.args[1], numba.types.intp)] + [zero] * (aryty.ndim - 1)
        shape, strides = cgutils.unpack_tuple(builder, ary.shape), cgutils.unpack_tuple(builder, ary.strides)
        ptr = cgutils.get_item_pointer2(
            context, builder, data=ary.data, shape=shape, strides=strides, layout=aryty.layout, inds=at
        )
        i8p, i32 = llvmlite.ir.IntType(8).as_pointer(), llvmlite.ir.IntType(32)
        fnty = llvmlite.ir.FunctionType(llvmlite.ir.VoidType(), [i8p, i32, i32, i32])
        fn = builder.module.declare_intrinsic("llvm.prefetch", [i8p], fnty)  # mangled for llvmlite's pointers
        builder.call(fn, [builder.bitcast(ptr, i8p), i32(0), i32(2), i32(1)])  # read, into L2, data
        return context.get_dummy_value()

    return numba.types.void(array, index), codegen


_prefetch = cast(Callable[[Any, Any], None], numba.extending.intrinsic(_prefetch_typer))


@_jit
def _search(
    codes: U64,
    ids: I64,
    dead: I64,
    perm: U32,
    offs: U32,
    keys: I64,
    tables: I64,
    masks: I64,
    q: Any,
    r: int,
    most: float,
) -> tuple[I64, I64]:
    """(ids, distances) of the live codes within r of the query ``q``, by distance then id.

    Table t's key is word ``keys[t, 0]`` shifted right by ``keys[t, 1]``, masked by ``keys[t, 2]``;
    it probes the buckets of the query's key XOR ``masks[tables[t, 0]:tables[t, 1]]``, bucket k's
    bounds at ``offs[tables[t, 2] + k]``; ``tables[t, 3]`` is its radius. If the buckets hold more
    than ``most`` rows it scans instead. The reads are random, so it goes in stages, each issuing
    independent reads and prefetching those of the next: bucket bounds, the permuted tables'
    rows, the codes.
    """
    n, m, probes = len(codes), len(keys), len(masks)
    explicit, split = (m - 1) * n, tables[m - 1, 0]  # the first table's positions and probes
    qkey = np.empty(m, np.int64)
    for t in range(m):
        qkey[t] = (_qword(codes, q, keys[t, 0]) >> np.uint64(keys[t, 1])) & np.uint64(keys[t, 2])
    for t in range(m):
        for j in range(tables[t, 0], tables[t, 1]):
            _prefetch(offs, tables[t, 2] + (qkey[t] ^ masks[j]))
    lo, hi, total = np.empty(probes, np.int64), np.empty(probes, np.int64), 0
    for t in range(m):
        for j in range(tables[t, 0], tables[t, 1]):
            bucket = np.uint64(tables[t, 2] + (qkey[t] ^ masks[j]))
            lo[j], hi[j] = offs[bucket], offs[bucket + np.uint64(1)]
            total += hi[j] - lo[j]
    if total > most:
        return _scan(codes, ids, dead, q, r)
    for j in range(split, probes):  # a run's first and last line: it may straddle two
        _prefetch(codes, lo[j] - explicit)
        _prefetch(codes, max(hi[j] - 1, lo[j]) - explicit)
    for j in range(split):
        _prefetch(perm, lo[j])
        _prefetch(perm, max(hi[j] - 1, lo[j]))
    # Verify the first table's candidates (contiguous rows) while the permuted tables' rows arrive.
    found, rows, dist = 0, np.empty(total, np.int64), np.empty(total, np.int64)  # hits <= candidates
    for j in range(split, probes):
        for row in range(np.uint64(lo[j] - explicit), np.uint64(hi[j] - explicit)):
            d = _distance(codes, row, q)
            if d <= r:
                rows[found], dist[found] = row, d
                found += 1
    # The permuted tables' candidate rows, table by table (table t's end at ends[t]), then their
    # verification, skipping the rows a table verified before (the first table, then in order)
    # has reported.
    cand, ends, k = np.empty(total, np.uint32), np.empty(m, np.int64), 0
    for t in range(m - 1):
        for j in range(tables[t, 0], tables[t, 1]):
            for pos in range(np.uint64(lo[j]), np.uint64(hi[j])):
                cand[k] = perm[pos]
                _prefetch(codes, cand[k])
                k += 1
        ends[t] = k
    for t in range(m - 1):
        for i in range(ends[t - 1] if t else 0, ends[t]):
            other = np.uint64(cand[i])
            d = _distance(codes, other, q)
            if d <= r and not _within(codes, other, keys, tables, qkey, m - 1):
                seen = False
                for u in range(t):
                    seen = seen or _within(codes, other, keys, tables, qkey, u)
                if not seen:
                    rows[found], dist[found] = other, d
                    found += 1
    return _sorted_hits(ids, dead, rows[:found], dist[:found], _bits(codes))


@dataclass(frozen=True, eq=False)
class _Plan:
    """The probes of one radius: XOR masks on the query's keys, grouped by table."""

    mask: I64  # (probes,)
    tables: I64  # (m, 4): per table its first and end probe, where it starts in offs, its radius


def _masks(bits: int, weight: int) -> I64:
    """All integers below 2**bits with at most ``weight`` set bits, built one bit at a time."""
    out = np.zeros(1, np.int64)
    for b in range(bits):
        out = np.concatenate([out, out[np.bitwise_count(out) < weight] | (1 << b)])
    return out


@functools.lru_cache(maxsize=64)
def _plan(key_bits: tuple[int, ...], r: int) -> _Plan | None:
    """Probes for radius r, or None if there are too many. The last table is the first
    substring's, whose candidates are cheapest, so it is first to get the larger radius s."""
    m = len(key_bits)
    s, a = divmod(r, m)
    rank = [m - 1, *range(m - 1)]  # position in the order of preference
    radii = [min(p, s if rank.index(t) <= a else s - 1) for t, p in enumerate(key_bits)]
    if sum(math.comb(p, j) for p, rad in zip(key_bits, radii) for j in range(rad + 1)) > _MAX_PROBES:
        return None
    masks = [_masks(p, rad) if rad >= 0 else np.empty(0, np.int64) for p, rad in zip(key_bits, radii)]
    ends = np.cumsum([0, *(len(x) for x in masks)])
    bases = np.cumsum([0, *(1 << p for p in key_bits[:-1])])
    tables = np.stack([ends[:-1], ends[1:], bases, radii], axis=1).astype(np.int64)
    return _Plan(np.concatenate(masks), tables)


def _distances(codes: U64, q: Query) -> I64:
    """Hamming distance of each row of ``codes`` (k, w) to the query ``q``."""
    x: npt.NDArray[np.uint8] = np.bitwise_count(codes ^ q)
    return (x[:, 0] if x.shape[1] == 1 else x.sum(axis=1, dtype=np.uint16)).astype(np.int64)


def _unique(values: I64) -> I64:
    """Sorted distinct values (np.unique is many times slower than a sort in numpy 2.4)."""
    values = np.sort(values)
    return values[_firsts(values)]


def _firsts(values: I64) -> npt.NDArray[np.bool_]:
    """Where each run of equal values starts."""
    first = np.ones(len(values), np.bool_)
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return first


def _cat(arrays: list[I64]) -> I64:
    """np.concatenate, without its copy for a single array or its error for none."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays) if arrays else _NONE


def _in_sorted(values: I64, sorted_set: I64) -> npt.NDArray[np.bool_]:
    """Membership of each value in a sorted array (np.isin sorts both sides; this sorts neither)."""
    if not len(sorted_set):
        return np.zeros(len(values), np.bool_)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return np.asarray(sorted_set[pos] == values)


@dataclass(frozen=True, eq=False)
class _Part:
    """An immutable, searchable set of codes; see the module docstring for the layout."""

    ids: I64
    codes: U64
    sorter: U32
    perm: U32
    offs: U32
    key_bits: tuple[int, ...]  # p_t of each table, the first substring's last; empty: always scan
    keys: I64  # (m, 3): per table the word, shift and mask giving its key
    words: U64  # ``codes`` as the kernels take them (a view): 1-d for 64-bit codes

    @staticmethod
    def build(ids: I64, codes: U64) -> _Part:
        """Freeze unique ``ids`` with their ``codes`` (n, w) into tables chosen for n."""
        n, w = codes.shape
        layout: list[tuple[int, int, int]] = []  # (key bits, word, shift)
        if n >= _TABLES_FROM:
            widths = [width for _ in range(w) for width in _WIDTHS]
            # Key prefixes as wide as the offsets budget allows: equal ones first, then one bit
            # more for each table in turn, the first substring's (cheapest to verify) first.
            room = _OFFSET_BYTES * n / 4 / len(widths)
            keys = [min(width, max(1, int(math.log2(room)))) for width in widths]
            for t in range(len(keys)):
                if keys[t] < widths[t] and 4 * (sum(1 << p for p in keys) + (1 << keys[t])) <= _OFFSET_BYTES * n:
                    keys[t] += 1
            layout = [(p, t // 3, 64 - (0, 22, 43)[t % 3] - p) for t, p in enumerate(keys)]
            # Widest keys first (fewer candidates per probe); the first substring goes last.
            layout = sorted(layout[1:], key=lambda t: -t[0]) + layout[:1]
        m = len(layout)
        if m * n >= 1 << 32:
            raise StoreError(f"{n} codes are too many for one index part (uint32 positions)")

        def key(t: int) -> I64:
            p, word, shift = layout[t]
            return ((codes[:, word] >> np.uint64(shift)) & np.uint64((1 << p) - 1)).astype(np.int64)

        if m:  # group the rows by the first substring's key: that table is then implicit
            order = np.argsort(key(m - 1))
            ids, codes = ids[order], codes[order]
        perm = np.empty(max(m - 1, 0) * n, np.uint32)
        offs = np.zeros(sum(1 << p for p, _, _ in layout) + 1, np.uint32)
        base = 0
        for t, (p, _, _) in enumerate(layout):
            k = key(t)
            if t < m - 1:
                perm[t * n : (t + 1) * n] = np.argsort(k)
            offs[base + 1 : base + (1 << p) + 1] = t * n + np.cumsum(np.bincount(k, minlength=1 << p))
            base += 1 << p
        key_words = np.array([(word, shift, (1 << p) - 1) for p, word, shift in layout], np.int64).reshape(m, 3)
        sorter = np.argsort(ids).astype(np.uint32)
        codes = np.ascontiguousarray(codes)
        words = codes.reshape(-1) if w == 1 else codes
        return _Part(
            np.ascontiguousarray(ids), codes, sorter, perm, offs, tuple(p for p, _, _ in layout), key_words, words
        )

    def find(self, ids: I64) -> I64:
        """The row of each id, or -1: a binary search over ``sorter``, vectorised across ids."""
        n = len(self.ids)
        if len(ids) * n.bit_length() > n // 8:  # many ids: materialising the sorted ids is cheaper
            pos = np.searchsorted(self.ids[self.sorter], ids)
        else:
            pos = np.zeros(len(ids), np.int64)  # ends as the count of stored ids below each id
            step = 1 << (n.bit_length() - 1)
            while step:
                probe = np.minimum(pos + step, n)
                pos = np.where(self.ids[self.sorter[probe - 1]] < ids, probe, pos)
                step >>= 1
        rows = self.sorter[np.minimum(pos, n - 1)].astype(np.int64)
        return np.where(self.ids[rows] == ids, rows, -1)

    def search(self, q: Query, r: int, dead: I64) -> tuple[I64, I64]:
        """(ids, distances) of the live codes within r of the query ``q``, by distance then id."""
        plan = _plan(self.key_bits, r) if self.key_bits else None
        if plan is None:  # no tables, or too many probes
            return _scan(self.words, self.ids, dead, q, r)
        most = _SCAN_FRACTION * len(self.ids)
        return _search(self.words, self.ids, dead, self.perm, self.offs, self.keys, plan.tables, plan.mask, q, r, most)


def _as_ids(ids: object) -> I64:
    if not isinstance(ids, np.ndarray) or ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ConfigError("ids must be a one-dimensional int64 array")
    if not np.can_cast(ids.dtype, np.int64):
        raise ConfigError(f"ids of dtype {ids.dtype} do not fit in int64")
    return ids.astype(np.int64)


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


class HammingIndex:
    """Exact radius and k-nearest search of binary codes by Hamming distance.

    Codes are ``bits`` wide (a positive multiple of 64: 64 for dHash/pHash, 256 for PDQ or ORB).
    A batch of codes is a uint8 array (n, bits/8) of big-endian bytes, as ``np.packbits`` gives,
    or a uint64 array (n, bits/64) of big-endian words; 64-bit codes may also be uint64 (n,).
    """

    def __init__(self, bits: int = 64) -> None:
        """Make an empty index of ``bits``-bit codes; raises ConfigError unless a multiple of 64."""
        if isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0 or bits % 64:
            raise ConfigError(f"bits must be a positive multiple of 64, got {bits!r}")
        self._bits, self._words = bits, bits // 64
        self._parts: list[_Part] = []
        self._dead: list[I64] = []  # per part: sorted rows removed or replaced since it froze
        self._delta_ids, self._delta_codes = _NONE, np.empty((0, self._words), np.uint64)

    @property
    def bits(self) -> int:
        """The width of the codes, in bits."""
        return self._bits

    def __len__(self) -> int:
        return len(self._delta_ids) + sum(len(p.ids) - len(d) for p, d in zip(self._parts, self._dead))

    def nbytes(self) -> int:
        """Bytes held in numpy arrays: ids, codes, tables, tombstones and the delta buffer."""
        held = [self._delta_ids, self._delta_codes, *self._dead]
        return sum(a.nbytes for a in held) + sum(
            a.nbytes for p in self._parts for a in (p.ids, p.codes, p.sorter, p.perm, p.offs)
        )

    def _as_codes(self, codes: object) -> U64:
        """Codes in any accepted form as uint64 words (n, bits/64); raises ConfigError."""
        w, dtype, shape = self._words, getattr(codes, "dtype", None), getattr(codes, "shape", None)
        if isinstance(codes, np.ndarray) and dtype == np.uint8 and shape == (len(codes), 8 * w):
            return np.ascontiguousarray(codes).view(">u8").astype(np.uint64)
        if (
            isinstance(codes, np.ndarray)
            and dtype == np.uint64
            and (shape == (len(codes), w) or shape == (len(codes),) and w == 1)
        ):
            return np.array(codes, np.uint64).reshape(-1, w)  # a copy: the caller may reuse its array
        raise ConfigError(
            f"codes must be uint8 of shape (n, {8 * w}) or uint64 of shape (n, {w})"
            f"{' or (n,)' if w == 1 else ''}, got {type(codes).__name__} {dtype} {shape}"
        )

    def _as_query(self, code: Code) -> Query:
        """One query code as the kernels take it (see ``Query``); raises ConfigError."""
        if isinstance(code, np.uint64) and self._words == 1:  # the usual query, kept lean
            return code
        if isinstance(code, int) and not isinstance(code, bool):
            if not 0 <= code < 1 << self._bits:
                raise ConfigError(f"code {code} does not fit in {self._bits} bits")
            if self._words == 1:
                return np.uint64(code)
            words: U64 = np.frombuffer(code.to_bytes(self._bits // 8, "big"), ">u8").astype(np.uint64)
        elif isinstance(code, np.uint64) or isinstance(code, np.ndarray) and code.ndim == 1:
            words = self._as_codes(np.array([code]) if isinstance(code, np.uint64) else code[None])[0]
        else:
            raise ConfigError(f"a query code must be an int, np.uint64 or 1-d array, not {type(code).__name__}")
        return words[0] if self._words == 1 else words

    def add(self, ids: npt.NDArray[np.int64], codes: npt.NDArray[np.uint8] | U64) -> None:
        """File ``codes[i]`` under ``ids[i]``; an id already present gets the new code.

        Within one call the last occurrence of an id wins. Raises ConfigError on a wrong dtype or
        shape, or when ids and codes differ in length.
        """
        ids, words = _as_ids(ids), self._as_codes(codes)
        if len(ids) != len(words):
            raise ConfigError(f"{len(ids)} ids but {len(words)} codes")
        if not len(ids):
            return
        order = np.argsort(ids, kind="stable")
        last = order[np.append(ids[order][1:] != ids[order][:-1], True)]  # the last of each id's run
        ids, words = ids[last], words[last]
        self._forget(ids)
        self._delta_ids = np.concatenate([self._delta_ids, ids])
        self._delta_codes = np.concatenate([self._delta_codes, words])
        if len(self._delta_ids) >= _DELTA_MAX:  # freeze the delta into a part of its own
            self._parts.append(_Part.build(self._delta_ids, self._delta_codes))
            self._dead.append(_NONE)
            self._delta_ids, self._delta_codes = _NONE, np.empty((0, self._words), np.uint64)
            self._compact()

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        """Remove these ids; ids not in the index are ignored. Raises ConfigError on bad ids."""
        self._forget(_unique(_as_ids(ids)))
        self._compact()

    def _forget(self, ids: I64) -> None:
        """Tombstone the rows of these (sorted, unique) ids and drop them from the delta."""
        for i, part in enumerate(self._parts):
            rows = part.find(ids)
            if (rows >= 0).any():
                self._dead[i] = _unique(np.concatenate([self._dead[i], rows[rows >= 0]]))
        keep = ~_in_sorted(self._delta_ids, ids)
        self._delta_ids, self._delta_codes = self._delta_ids[keep], self._delta_codes[keep]

    def _compact(self) -> None:
        """Merge the newest part into its elder once it is a quarter of that size (so merges cost
        O(n log n) in all); rebuild a part once 1/128 of it is tombstones, whose rows still hold
        about 36 bytes each: 0.3 bytes a live code at most."""
        while True:
            live = [len(p.ids) - len(d) for p, d in zip(self._parts, self._dead)]
            rotten = [i for i, (p, d) in enumerate(zip(self._parts, self._dead)) if 128 * len(d) > len(p.ids)]
            if len(live) > 1 and 4 * live[-1] >= live[-2]:
                merge = slice(len(live) - 2, None)
            elif rotten:
                merge = slice(rotten[0], rotten[0] + 1)
            else:
                return
            ids, codes = self._live(self._parts[merge], self._dead[merge], delta=False)
            built = [_Part.build(ids, codes)] if len(ids) else []
            self._parts[merge], self._dead[merge] = built, [_NONE for _ in built]

    def _live(self, parts: list[_Part], dead: list[I64], delta: bool) -> tuple[I64, U64]:
        """The ids and codes of these parts (less tombstones), and of the delta if asked."""
        keep = [np.delete(np.arange(len(p.ids)), d) for p, d in zip(parts, dead)]
        ids = [p.ids[k] for p, k in zip(parts, keep)] + [self._delta_ids] * delta
        codes = [p.codes[k] for p, k in zip(parts, keep)] + [self._delta_codes] * delta
        return _cat(ids), np.concatenate(codes) if codes else np.empty((0, self._words), np.uint64)

    def radius(self, code: Code, r: int) -> tuple[I64, I64]:
        """Ids and distances of every code within Hamming distance ``r`` of ``code`` (inclusive).

        Sorted by distance, then id. Raises ConfigError on a malformed code or a negative r.
        """
        return self._radius(self._as_query(code), _check_int(r, "r"))

    def _radius(self, q: Query, r: int) -> tuple[I64, I64]:
        r = min(r, self._bits)  # no code is farther; keeps r within int64 for the kernels
        if len(self._parts) == 1 and not len(self._delta_ids):  # the usual case, kept lean
            return self._parts[0].search(q, r, self._dead[0])
        found = [part.search(q, r, dead) for part, dead in zip(self._parts, self._dead)]
        if len(self._delta_ids):
            delta = self._delta_codes.reshape(-1) if self._words == 1 else self._delta_codes
            found.append(_scan(delta, self._delta_ids, _NONE, q, r))
        found = [hits for hits in found if len(hits[0])]
        if len(found) <= 1:  # the kernels sort their hits
            return found[0] if found else (np.empty(0, np.int64), np.empty(0, np.int64))
        ids, d = np.concatenate([hits[0] for hits in found]), np.concatenate([hits[1] for hits in found])
        order = np.lexsort((ids, d))  # an id lives in one part or the delta only
        return ids[order], d[order]

    def knn(self, code: Code, k: int) -> tuple[I64, I64]:
        """Ids and distances of the ``k`` codes nearest ``code``, by distance then id (exact).

        Fewer than k when the index holds fewer. Raises ConfigError on a malformed code or k < 0.
        """
        q, k = self._as_query(code), min(_check_int(k, "k"), len(self))
        big, r = max(self._parts, key=lambda p: len(p.ids), default=None), 0
        # Widen the radius while the biggest part can still be probed cheaply (about 1/16 of it
        # verified): every code within r is found, so once k are, the first k are the nearest.
        while k and big is not None and big.key_bits and r < self._bits:
            plan = _plan(big.key_bits, r)
            if plan is None or len(plan.mask) > _SCAN_FRACTION * (1 << big.key_bits[-1]):
                break
            ids, d = self._radius(q, r)
            if len(ids) >= k:
                return ids[:k], d[:k]
            r += 1 + r // 3
        # Otherwise scan: keep, from each part and the delta, the codes up to its k-th distance.
        cand_ids, cand_d = [self._delta_ids], [_distances(self._delta_codes, q)]
        for part, dead in zip(self._parts, self._dead):
            d = _distances(part.codes, q)
            d[dead] = self._bits + 1  # marks the tombstones: no live code is that far
            kth = np.partition(d, min(k, len(d)) - 1)[min(k, len(d)) - 1]
            sel = np.flatnonzero(d <= min(kth, self._bits))
            cand_ids.append(part.ids[sel])
            cand_d.append(d[sel])
        ids, d = np.concatenate(cand_ids), np.concatenate(cand_d)
        order = np.lexsort((ids, d))[:k]
        return ids[order], d[order]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the live ids and codes to one .npz file (atomically); raises StoreError."""
        ids, codes = self._live(self._parts, self._dead, delta=True)
        tmp = f"{os.fspath(path)}.tmp"
        try:
            with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
                np.savez(f, format=np.array(_FORMAT), bits=np.int64(self._bits), ids=ids, codes=codes)
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StoreError(f"cannot save Hamming index to {os.fspath(path)}: {e}") from e

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HammingIndex:
        """Read an index written by ``save``; raises StoreError if the file is missing or corrupt."""
        where = os.fspath(path)
        try:
            with open(path, "rb") as f:  # our own handle: np.load leaks its own on some errors
                z = np.load(f, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile) or str(z["format"]) != _FORMAT:
                    raise StoreError(f"{where} is not a lookalike Hamming index")
                # Reading each member to its end makes zipfile check its CRC-32.
                bits, ids, codes = int(z["bits"]), z["ids"], z["codes"]
        except StoreError:
            raise
        except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreError(f"cannot read Hamming index {where}: {msg}") from e
        if bits <= 0 or bits % 64 or ids.dtype != np.int64 or ids.ndim != 1 or codes.dtype != np.uint64:
            raise StoreError(f"Hamming index {where} has a bad header or dtypes")
        if codes.shape != (len(ids), bits // 64) or len(_unique(ids)) != len(ids):
            raise StoreError(f"Hamming index {where} has mismatched or duplicate entries")
        index = cls(bits)
        if len(ids):
            index._parts, index._dead = [_Part.build(ids, codes)], [_NONE]
        return index
