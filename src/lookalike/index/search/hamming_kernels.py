"""The compiled kernels of ``lookalike.index.search.hamming`` (a scan and a multi-index probe of one
frozen part: numpy arrays in, sorted (ids, distances) out) and the probe plans they follow.

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
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, cast

import llvmlite.ir  # type: ignore[import-untyped, unused-ignore]
import numba
import numba.core.cgutils
import numba.extending
import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.kernels import jit as _jit
from lookalike.fingerprints.kernels import popcount as _popcount

__all__: list[str] = []  # private to lookalike.index.search.hamming

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
_MAX_PROBES = 1 << 17  # a plan holds 8 bytes a probe; beyond this a scan is as quick anyway

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
