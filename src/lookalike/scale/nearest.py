"""The k nearest pHashes within r bits of every query, against a run's stored rows, in one call.

``Mirror.nearest_in_scope``'s rule past ``NEAREST_ANY_UP_TO`` rows (``match.retrieval``): the k
stored codes nearest a query (itself among them when it is stored), by distance, ties to the lower
id, within ``NEAREST_RADIUS`` (12) bits. ``HammingIndex.radius`` answers it one query at a time,
with keys as wide as n allows on three substrings: at r = 12 a query then probes 3,000 buckets at
100,000 rows and 6,000 at a million, each a random read, and the reads miss the caches more as the
tables grow (in the product 27 µs a query at 100,000 rows, 133 µs at a million: n^1.63 in all).

Here the 64 bits are cut into four 16-bit substrings (Norouzi, Punjani and Fleet, "Fast search in
Hamming space with multi-index hashing", CVPR 2012: m about b / log2 n; a wider m trades random
probes for candidates read in order). Two codes within 12 bits agree within 3 bits on the first
substring or within 2 on one of the others (pigeonhole, ``join.substring_radii``): 697 + 3 × 137 =
1,108 buckets a query. Each table keeps its own copy of the codes sorted by its substring, so a
bucket's candidates are contiguous and are verified as a scan is (one XOR and one POPCNT each), and
its 65,536 bucket bounds (256 KB) stay in the caches. A code within r is kept by the first table
whose radius it meets only (decided from its own bits), so it is counted once with no set of
visited rows; the k best so far are kept in order as the candidates come, so a query in a cluster
of thousands of equal codes holds k of them. A query whose buckets hold more than n codes (such a
cluster) is answered by one scan of the first table instead.

The reads are still random at a million rows (1,108 buckets of about 15 codes a query, from four
tables of 8 MB), so the scan asks for each bucket's first cache lines ``_AHEAD`` buckets
before it reads them. Measured on random codes, 4,096 queries: 35-46 µs a query at a million rows
(``HammingIndex.radius``: 120-150), 14 µs at 100,000 (28-34); in the product at a million rows the
nearest pHashes cost 53.0 s of CPU, against 133.1.

Memory: 12 bytes a row a table (the code and its row), 48 bytes a row, and 1 MB of bounds.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError
from lookalike.fingerprints.kernels import jit as _jit
from lookalike.fingerprints.kernels import popcount as _popcount
from lookalike.fingerprints.kernels import prefetch as _prefetch
from lookalike.scale.join import _masks, held_by_earlier_table, substring_radii  # the join's own rule

__all__ = ["NearestCodes"]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

_KEY_BITS = 16
_SHIFTS = (48, 32, 16, 0)  # the top bits first


_AHEAD = 8  # buckets between asking for one's codes and reading them
_LINES = 4  # cache lines asked for a bucket (8 codes each; a million rows fill ~15 a bucket)


@_jit
def _bounds(offs: I32, shifts: I64, masks: I64, counts: I64, q: np.uint64, lo: I64, hi: I64, table: I64) -> int:
    """Every bucket ``q`` probes: its bounds and table into ``lo``, ``hi``, ``table`` (independent
    reads, which the processor overlaps); returns the codes they hold."""
    kmask = np.uint64((1 << 16) - 1)
    p, total = 0, 0
    for t in range(len(shifts)):
        qkey = np.int64((q >> np.uint64(shifts[t])) & kmask)
        for m in range(counts[t]):
            key = qkey ^ masks[m]
            lo[p], hi[p], table[p] = offs[t, key], offs[t, key + 1], t
            total += hi[p] - lo[p]
            p += 1
    return total


@_jit
def _ask(codes: U64, lo: I64, hi: I64, table: I64, p: int) -> None:
    """Ask for the first lines of bucket ``p``'s codes, if there is such a bucket."""
    if p < len(lo):
        for line in range(_LINES):
            at = lo[p] + 8 * line
            if at >= hi[p]:
                break
            _prefetch(codes[table[p]], at)


@_jit
def _nearest(
    codes: U64, rows: I32, offs: I32, shifts: I64, widths: I64, masks: I64, counts: I64, radii: I64, queries: U64,
    r: int, k: int,
) -> tuple[I64, I64]:  # fmt: skip
    n = codes.shape[1]
    out_ids = np.full((len(queries), k), -1, np.int64)
    out_d = np.full((len(queries), k), r + 1, np.int64)
    probes = counts.sum()
    lo, hi, table = np.empty(probes, np.int64), np.empty(probes, np.int64), np.empty(probes, np.int64)
    for qi in range(len(queries)):
        q, best_d, best_id, held = queries[qi], out_d[qi], out_ids[qi], 0
        if _bounds(offs, shifts, masks, counts, q, lo, hi, table) > n:  # inside a huge cluster: scan
            for j in range(n):
                d = _popcount(codes[0, j] ^ q)
                if d <= r:
                    held = _keep(best_d, best_id, held, k, d, np.int64(rows[0, j]))
            continue
        for p in range(_AHEAD):
            _ask(codes, lo, hi, table, p)
        for p in range(probes):
            _ask(codes, lo, hi, table, p + _AHEAD)
            t = table[p]
            for j in range(lo[p], hi[p]):
                x = codes[t, j] ^ q
                d = _popcount(x)
                if d <= r and not held_by_earlier_table(x, t, shifts, widths, radii):
                    held = _keep(best_d, best_id, held, k, d, np.int64(rows[t, j]))
    return out_ids, out_d


@_jit
def _keep(best_d: I64, best_id: I64, held: int, k: int, d: np.int64, row: np.int64) -> int:
    """Insert (d, row) into the first ``held`` entries, sorted by (distance, row), if it is among
    the k best; the number held after."""
    if held == k and (d > best_d[k - 1] or (d == best_d[k - 1] and row > best_id[k - 1])):
        return held
    i = held if held < k else k - 1
    while i > 0 and (best_d[i - 1] > d or (best_d[i - 1] == d and best_id[i - 1] > row)):
        best_d[i], best_id[i] = best_d[i - 1], best_id[i - 1]
        i -= 1
    best_d[i], best_id[i] = d, row
    return held + 1 if held < k else k


def _check(r: int, k: int) -> None:
    if not 0 <= r <= 15 or k < 1:
        raise ConfigError(f"NearestCodes answers 0 <= r <= 15 and k >= 1, got r={r}, k={k}")


@dataclass(frozen=True, eq=False)
class NearestCodes:
    """A run's stored 64-bit codes in four tables, one per 16-bit substring, each sorted by it."""

    codes: U64  # (4, n): each table's copy of the codes, sorted by its substring
    rows: I32  # (4, n): their rows (positions in the codes given to ``build``)
    offs: I32  # (4, 65537): each table's bucket bounds

    @staticmethod
    def build(codes: U64) -> NearestCodes:
        """Tables over ``codes`` (n,) uint64; rows are positions in it. Raises ConfigError past
        2**31 codes (rows are int32)."""
        codes = np.ascontiguousarray(codes, np.uint64)
        if len(codes) >= 1 << 31:
            raise ConfigError(f"{len(codes)} codes are too many for one NearestCodes (int32 rows)")
        sorted_codes = np.empty((len(_SHIFTS), len(codes)), np.uint64)
        rows = np.empty((len(_SHIFTS), len(codes)), np.int32)
        offs = np.zeros((len(_SHIFTS), (1 << _KEY_BITS) + 1), np.int32)
        for t, shift in enumerate(_SHIFTS):
            key = ((codes >> np.uint64(shift)) & np.uint64((1 << _KEY_BITS) - 1)).astype(np.int64)
            order = np.argsort(key, kind="stable")
            sorted_codes[t], rows[t] = codes[order], order
            offs[t, 1:] = np.cumsum(np.bincount(key, minlength=1 << _KEY_BITS))
        return NearestCodes(sorted_codes, rows, offs)

    def __len__(self) -> int:
        return int(self.codes.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.rows.nbytes + self.offs.nbytes)

    def nearest(self, queries: U64, r: int, k: int) -> tuple[I64, I64]:
        """For each query, the rows of the ``k`` stored codes nearest it within ``r`` bits, by
        distance then row, and their distances: (len(queries), k) arrays, padded with row -1 and
        distance r + 1. Raises ConfigError unless 0 <= r <= 15 (wider, the probes cost more than a
        scan) and k >= 1."""
        _check(r, k)
        queries = np.ascontiguousarray(queries, np.uint64)
        return _nearest(self.codes, self.rows, self.offs, *self._plan(r), queries, r, k)

    @staticmethod
    def _plan(r: int) -> tuple[I64, I64, I64, I64, I64]:
        """The kernels' shifts, widths, masks, mask count of each table and each table's radius."""
        widths = (_KEY_BITS,) * len(_SHIFTS)
        radii = np.array(substring_radii(r, widths), np.int64)
        masks = _masks(_KEY_BITS, max(int(radii.max()), 0))
        weights = np.bitwise_count(masks)
        counts = np.array([np.count_nonzero(weights <= rad) for rad in radii], np.int64)
        return np.array(_SHIFTS, np.int64), np.array(widths, np.int64), masks, counts, radii
