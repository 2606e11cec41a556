"""Candidate pairs over bare codes by multi-index hashing as a join, for collections of millions.

The stored side is every distinct picture's (pHash, PDQ) as it is; the probe side is every
picture under each of its eight flips and turns (``Dihedral``). A pair is a candidate when
``match.retrieval`` says so: under some turn of one, pHashes within ``PHASH_RADIUS`` and PDQs
within ``PDQ_RADIUS`` bits. The same rule the incremental ``Index`` applies.

Join plan (Norouzi, Punjani, Fleet, "Fast search in Hamming space with multi-index hashing",
CVPR 2012): the 64 pHash bits are cut into m = 3 substrings (22, 21 and 21 bits, as
``index.search.hamming`` cuts them). Writing r = s*m + a (0 <= a < m), two codes within r bits agree
within s bits on one of the first a + 1 substrings or within s - 1 on one of the others
(pigeonhole); at r = 8 that is within 2 bits on one of the three. For each substring the stored
codes are partitioned by its value (``SubstringTable``: codes sorted by the substring, a bucket
per value). The probes of each table are cut into parts by their key in it (``probe_parts``),
so a part's probes share keys; a task joins one part with one table, comparing each run of
probes with one key with every stored bucket within the table's radius of it (a bucket is read
once for the whole run). A pair is emitted by the first table that holds it only (decided from
the pair's own bits), so every (probe, stored) pair appears once over all tasks. Tasks compare
pHashes only and carry 24 bytes a probe; ``admit`` then keeps the pairs whose PDQs agree under
the same turn and folds both directions into pairs (i < j), each once. Identical (pHash, PDQ)
codes (blank images, bursts) are collapsed to one before the join and listed as exact groups;
a hot key is cut between parts. Tasks take and return NumPy arrays only: ``join_chunk`` runs in
a thread, a process or on a Dask worker alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError
from lookalike.fingerprints.kernels import jit as _jit
from lookalike.fingerprints.kernels import popcount as _popcount
from lookalike.fingerprints.kernels import prefetch as _prefetch
from lookalike.match.retrieval import PDQ_RADIUS, PHASH_RADIUS

__all__ = [
    "SubstringTable",
    "admit",
    "build_tables",
    "collapse",
    "fold_pairs",
    "held_by_earlier_table",
    "join_chunk",
    "join_local",
    "probe_parts",
]

I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]


def substring_radii(r: int, widths: tuple[int, ...]) -> tuple[int, ...]:
    """Each substring's radius for an exact search within r bits: s for the first a + 1 and s - 1
    for the rest, where r = s*m + a."""
    s, a = divmod(r, len(widths))
    return tuple(s if t <= a else s - 1 for t in range(len(widths)))


#: substrings of the 64-bit pHash (the top bits first), and each one's radius for ``PHASH_RADIUS``
WIDTHS = (22, 21, 21)
SHIFTS = (42, 21, 0)
RADII = substring_radii(PHASH_RADIUS, WIDTHS)


@dataclass(frozen=True, slots=True)
class SubstringTable:
    """The stored codes partitioned by one substring: codes and ids sorted by it, and each
    bucket's bounds (``offsets[key]``..``offsets[key + 1]``). 12 bytes a code and 16 MB."""

    table: int
    codes: U64
    ids: I32
    offsets: I32


def collapse(phash: U64, pdq: U64) -> tuple[I64, I64]:
    """Identical codes to one: (index of each distinct code's first row, each row's distinct code).
    ``pdq`` is (n, 4) uint64."""
    keys = np.concatenate([phash[:, None], pdq], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # distinct codes numbered in order of first row
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def _keys(phash: U64, table: int) -> I64:
    return ((phash >> np.uint64(SHIFTS[table])) & np.uint64((1 << WIDTHS[table]) - 1)).astype(np.int64)


def build_tables(phash: U64) -> list[SubstringTable]:
    """One ``SubstringTable`` per substring of the stored pHashes (ids are positions in ``phash``)."""
    out = []
    if len(phash) >= 2**31:
        raise ConfigError(f"a join holds fewer than 2**31 stored codes, got {len(phash):,}: split the stored side")
    for t, width in enumerate(WIDTHS):
        keys = _keys(phash, t)
        ids = np.argsort(keys, kind="stable").astype(np.int32)
        offsets = np.zeros((1 << width) + 1, dtype=np.int32)
        np.cumsum(np.bincount(keys, minlength=1 << width), out=offsets[1:])
        out.append(SubstringTable(t, phash[ids], ids, offsets))
    return out


@_jit
def held_by_earlier_table(x: np.uint64, t: int, shifts: I64, widths: I64, radii: I64) -> bool:
    """Whether a pair whose codes differ by ``x`` is a candidate of some table before ``t`` (its
    substring there within that table's radius): that table reports it, so ``t`` must not."""
    for u in range(t):
        sub = (x >> np.uint64(shifts[u])) & np.uint64((1 << widths[u]) - 1)
        if _popcount(sub) <= radii[u]:
            return True
    return False


def _masks(width: int, weight: int) -> I64:
    out = [0]
    for w in range(1, weight + 1):
        out.extend(sum(1 << b for b in bits) for bits in combinations(range(width), w))
    return np.asarray(out, dtype=np.int64)


#: non-empty buckets between asking for one's codes and reading them
_AHEAD = 8


@_jit
def _probe(t_codes, t_ids, offs, masks, t, shifts, widths, radii, q_keys, q_codes, q_ids, q_rows, r_ph):  # type: ignore[no-untyped-def]
    """(probe rows, stored ids) of the pairs within ``r_ph`` pHash bits that table ``t`` holds
    first; the probes sorted by their key ``q_keys`` in it. A run of probes with one key reads
    each stored bucket within the table's radius once.

    The buckets' bounds are read first, all of them (independent reads, and no branch on what
    they hold, which the processor would mispredict for a quarter of the buckets at a million
    rows and then wait for each read in turn), keeping the non-empty ones; each of those is asked
    for ``_AHEAD`` buckets before it is read. At a million rows, 4,096 random rows' eight turns:
    87 -> 53 µs a row; at 100,000 (a bucket in 40 holds a code) 27.8 -> 27.7."""
    cap = 1024
    out_a = np.empty(cap, np.int64)
    out_b = np.empty(cap, np.int64)
    n_out = 0
    n_keys = len(offs) - 1
    nq = len(q_codes)
    lo_b = np.empty(len(masks), np.int64)
    hi_b = np.empty(len(masks), np.int64)
    lo = 0
    while lo < nq:
        key = q_keys[lo]
        hi = lo + 1
        while hi < nq and q_keys[hi] == key:
            hi += 1
        held = 0
        for mi in range(len(masks)):
            k2 = key ^ masks[mi]
            if k2 < n_keys:
                a, b = offs[k2], offs[k2 + 1]
                lo_b[held], hi_b[held] = a, b
                held += b > a
        for c in range(min(_AHEAD, held)):
            _prefetch(t_codes, lo_b[c])
            _prefetch(t_ids, lo_b[c])
        for c in range(held):
            if c + _AHEAD < held:
                _prefetch(t_codes, lo_b[c + _AHEAD])
                _prefetch(t_ids, lo_b[c + _AHEAD])
            for j in range(lo_b[c], hi_b[c]):
                cj = t_codes[j]
                sid = t_ids[j]
                for qi in range(lo, hi):
                    x = q_codes[qi] ^ cj
                    if _popcount(x) > r_ph or sid == q_ids[qi]:
                        continue
                    if held_by_earlier_table(x, t, shifts, widths, radii):
                        continue
                    if n_out == cap:
                        cap *= 2
                        na = np.empty(cap, np.int64)
                        nb = np.empty(cap, np.int64)
                        na[:n_out] = out_a[:n_out]
                        nb[:n_out] = out_b[:n_out]
                        out_a, out_b = na, nb
                    out_a[n_out] = q_rows[qi]
                    out_b[n_out] = sid
                    n_out += 1
        lo = hi
    return out_a[:n_out], out_b[:n_out]


def probe_parts(probe_phash: U64, table: int, parts: int) -> list[I64]:
    """The probes' positions cut into ``parts`` of about equal size, each a run of the table's
    keys in order: a part's probes share keys, so its task reads each stored bucket it needs once
    for all of them (a hot key may be cut between two parts; that costs a second read only)."""
    order = np.argsort(_keys(probe_phash, table), kind="stable")
    bounds = np.linspace(0, len(order), max(1, parts) + 1).astype(np.int64)
    return [order[lo:hi] for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]


def join_chunk(table: SubstringTable, probe_phash: U64, probe_ids: I64, probe_rows: I64) -> tuple[I64, I64]:
    """The pHash pairs one table holds first between a chunk of probes (each a picture under one
    turn: its pHash, the picture's id, and the probe's row, returned to name it) and the stored
    codes: (probe rows, stored ids). ``admit`` then applies PDQ."""
    masks = _masks(WIDTHS[table.table], RADII[table.table])
    shifts, widths, radii = (np.asarray(v, dtype=np.int64) for v in (SHIFTS, WIDTHS, RADII))
    keys = _keys(probe_phash, table.table)
    order = np.argsort(keys, kind="stable")  # cheap when the chunk is a part, already in key order
    return _probe(  # type: ignore[no-untyped-call, no-any-return]  # an untyped numba kernel
        table.codes, table.ids, table.offsets, masks, table.table, shifts, widths, radii,
        keys[order], probe_phash[order], probe_ids[order], probe_rows[order], PHASH_RADIUS,
    )  # fmt: skip


def admit(rows: I64, stored: I64, probe_pdq: U64, probe_ids: I64, stored_pdq: U64) -> tuple[I64, I64, int]:
    """The pHash pairs (probe rows, stored ids) whose PDQs agree too, folded into pictures' pairs
    (i < j), each once: (i, j, pairs PDQ turned away)."""
    d = np.bitwise_count(probe_pdq[rows] ^ stored_pdq[stored]).sum(axis=1, dtype=np.int64)
    ok = d <= PDQ_RADIUS
    i, j = fold_pairs(probe_ids[rows[ok]], stored[ok])
    return i, j, int(np.count_nonzero(~ok))


def fold_pairs(a: I64, b: I64) -> tuple[I64, I64]:
    """Both directions of every found pair folded into (i, j) with i < j, each once, sorted."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keyed = np.unique(lo.astype(np.int64) << np.int64(32) | hi.astype(np.int64))
    return keyed >> np.int64(32), keyed & np.int64(0xFFFFFFFF)


def join_local(
    stored_phash: U64, stored_pdq: U64, probe_phash: U64, probe_pdq: U64, probe_ids: I64, *, jobs: int = 1
) -> tuple[I64, I64, int]:
    """Every candidate pair in one process (the one-machine engine), ``jobs`` threads sharing the
    parts of each table (the kernel releases the GIL): (i, j) with i < j, and the pairs PDQ
    turned away. Ids must be below 2**32."""
    from concurrent.futures import ThreadPoolExecutor

    tables = build_tables(stored_phash)
    work = [(t, rows) for t in tables for rows in probe_parts(probe_phash, t.table, 4 * max(1, jobs))]

    def run(item: tuple[SubstringTable, I64]) -> tuple[I64, I64]:
        t, rows = item
        return join_chunk(t, probe_phash[rows], probe_ids[rows], rows)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = list(pool.map(run, work))
    rows, stored = np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done])
    return admit(rows, stored, probe_pdq, probe_ids, stored_pdq)
