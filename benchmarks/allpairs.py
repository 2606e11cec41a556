"""(Benchmark engine, run by ``find_scale.py`` only: the product joins with ``lookalike.scale.join``.)

All pairs of 64-bit codes within a Hamming radius, for collections too large for anything quadratic.

A self-join by multi-index hashing (Norouzi, Punjani, Fleet, CVPR 2012): the 64 bits are cut
into m substrings (m = 3 from about 130,000 codes, 4 below). Writing r = s*m + a (0 <= a < m),
two codes within r bits agree within s bits on one of the first a + 1 substrings or within s - 1
bits on one of the others. So for each substring table in turn the codes are sorted by that
substring (a bucket per value), and each non-empty bucket is compared, code against code, with
itself and with every bucket whose key is within the table's radius and larger: every pair is
looked at from one side, buckets are contiguous runs of one sorted array (sequential reads), and
a pair is reported by the first table that holds it as candidates only (decided by popcounts on
the pair itself, so nothing is remembered between tables).

Memory: the codes, one table at a time (sorted codes and ids, 16 bytes a code, and its bucket
bounds, 8 bytes a bucket), and the pairs found. Never an n x n matrix. The kernel is compiled by
numba (cached on disk) and releases the GIL, so threads split each table's buckets.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from itertools import combinations

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError
from lookalike.fingerprints import default_jobs
from lookalike.fingerprints.kernels import jit as _jit
from lookalike.fingerprints.kernels import popcount as _popcount
from lookalike.scale.join import held_by_earlier_table

__all__ = ["hamming_pairs", "pair_components"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


@_jit
def _join(codes, ids, offs, masks, k_lo, k_hi, t, shifts, widths, radii, radius):  # type: ignore[no-untyped-def]
    """Pairs found by table ``t`` among buckets [k_lo, k_hi): (a ids, b ids, distances)."""
    cap = 1024
    out_a = np.empty(cap, np.int64)
    out_b = np.empty(cap, np.int64)
    out_d = np.empty(cap, np.int64)
    n_out = 0
    n_keys = len(offs) - 1
    for k in range(k_lo, k_hi):
        s0, e0 = offs[k], offs[k + 1]
        if s0 == e0:
            continue
        for mi in range(len(masks)):
            k2 = k ^ masks[mi]
            if k2 < k or k2 >= n_keys:
                continue
            s1, e1 = offs[k2], offs[k2 + 1]
            if s1 == e1:
                continue
            for i in range(s0, e0):
                ci = codes[i]
                j0 = i + 1 if k2 == k else s1
                for j in range(j0, e1):
                    x = ci ^ codes[j]
                    d = _popcount(x)
                    if d > radius:
                        continue
                    if held_by_earlier_table(x, t, shifts, widths, radii):
                        continue
                    if n_out == cap:
                        cap *= 2
                        na = np.empty(cap, np.int64)
                        nb = np.empty(cap, np.int64)
                        nd = np.empty(cap, np.int64)
                        na[:n_out] = out_a[:n_out]
                        nb[:n_out] = out_b[:n_out]
                        nd[:n_out] = out_d[:n_out]
                        out_a, out_b, out_d = na, nb, nd
                    a, b = ids[i], ids[j]
                    out_a[n_out] = min(a, b)
                    out_b[n_out] = max(a, b)
                    out_d[n_out] = d
                    n_out += 1
    return out_a[:n_out], out_b[:n_out], out_d[:n_out]


@_jit
def _label(n, a, b):  # type: ignore[no-untyped-def]
    parent = np.arange(n)
    for k in range(len(a)):
        x, y = a[k], b[k]
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        while parent[y] != y:
            parent[y] = parent[parent[y]]
            y = parent[y]
        if x != y:
            if x < y:
                parent[y] = x
            else:
                parent[x] = y
    for i in range(n):
        r = i
        while parent[r] != r:
            r = parent[r]
        parent[i] = r
    return parent


def pair_components(n: int, a: I64, b: I64) -> I64:
    """Connected components of ``n`` items linked by pairs (a[k], b[k]): each item's label is the
    smallest item of its component (union-find, 8 bytes an item)."""
    labels: I64 = _label(n, np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64))  # type: ignore[no-untyped-call]
    return labels


def _layout(n: int, radius: int) -> tuple[list[int], list[int], list[int]]:
    """(shifts, widths, per-table radii) of the substring tables for ``n`` codes."""
    m = 3 if n >= 1 << 30 else 4
    widths = [64 // m + (1 if i < 64 % m else 0) for i in range(m)]
    shifts = [64 - sum(widths[: i + 1]) for i in range(m)]
    s, a = divmod(radius, m)
    radii = [s if i <= a else s - 1 for i in range(m)]
    return shifts, widths, radii


def _masks(width: int, weight: int) -> I64:
    """Every XOR mask of ``width`` bits with at most ``weight`` bits set (0 first)."""
    out = [0]
    for w in range(1, weight + 1):
        out.extend(sum(1 << b for b in bits) for bits in combinations(range(width), w))
    return np.asarray(out, dtype=np.int64)


def hamming_pairs(codes: U64, radius: int, *, jobs: int = 0) -> tuple[I64, I64, I64]:
    """Every pair of 64-bit ``codes`` within ``radius`` bits (inclusive), as arrays (i, j, distance)
    of positions in ``codes`` with i < j, sorted by i then j. ``jobs`` threads (0 = all cores).

    Raises ``ConfigError`` for codes that are not a 1-d uint64 array or a radius outside 0..32."""
    if not isinstance(codes, np.ndarray) or codes.dtype != np.uint64 or codes.ndim != 1:
        raise ConfigError("codes must be a 1-d uint64 array")
    if not 0 <= radius <= 32:
        raise ConfigError("radius must be between 0 and 32 bits")
    n = len(codes)
    empty = np.empty(0, np.int64)
    if n < 2:
        return empty, empty, empty
    shifts, widths, radii = _layout(n, radius)
    workers = max(1, jobs or default_jobs())
    found: list[tuple[I64, I64, I64]] = []
    for t in range(len(widths)):
        if radii[t] >= 0:
            found.extend(_table_pairs(codes, t, shifts, widths, radii, radius, workers))
    a = np.concatenate([f[0] for f in found]) if found else empty
    b = np.concatenate([f[1] for f in found]) if found else empty
    d = np.concatenate([f[2] for f in found]) if found else empty
    order = np.lexsort((b, a))
    return a[order], b[order], d[order]


def _table_pairs(
    codes: U64, t: int, shifts: list[int], widths: list[int], radii: list[int], radius: int, workers: int
) -> list[tuple[I64, I64, I64]]:
    """The pairs table ``t`` reports (those no earlier table holds), its buckets split over threads."""
    n = len(codes)
    n_keys = 1 << widths[t]
    keys = ((codes >> np.uint64(shifts[t])) & np.uint64(n_keys - 1)).astype(np.int64)
    ids = np.argsort(keys, kind="stable").astype(np.int64)
    sorted_codes = codes[ids]
    offs = np.zeros(n_keys + 1, dtype=np.int64)
    np.cumsum(np.bincount(keys, minlength=n_keys), out=offs[1:])
    del keys
    masks = _masks(widths[t], radii[t])
    t_shifts, t_widths, t_radii = (np.asarray(v, dtype=np.int64) for v in (shifts, widths, radii))
    # split the buckets so that each thread gets about the same number of codes
    bounds = np.searchsorted(offs, np.linspace(0, n, 4 * workers + 1)).tolist()
    bounds[0], bounds[-1] = 0, n_keys
    ranges = [(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]

    def run(r: tuple[int, int]) -> tuple[I64, I64, I64]:
        out: tuple[I64, I64, I64] = _join(  # type: ignore[no-untyped-call]  # an untyped numba kernel
            sorted_codes, ids, offs, masks, r[0], r[1], t, t_shifts, t_widths, t_radii, radius
        )
        return out

    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(run, ranges))


def expected_masks(n: int, radius: int) -> int:
    """How many neighbour buckets each bucket is compared with, summed over tables (for sizing)."""
    _, widths, radii = _layout(n, radius)
    return sum(sum(math.comb(w, k) for k in range(r + 1)) for w, r in zip(widths, radii) if r >= 0)
