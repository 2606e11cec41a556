"""Candidate pairs over bare codes by multi-index hashing as a join, for collections of millions.

The stored side is every distinct picture's (pHash, PDQ) as it is; the probe side is every
picture under each of its eight flips and turns (``Dihedral``). A pair is a candidate when
``match.retrieval`` says so: under some turn of one, pHashes within ``PHASH_RADIUS`` and PDQs
within ``PDQ_RADIUS`` bits. The same rule the incremental ``Index`` applies.

Join plan (Norouzi, Punjani, Fleet, "Fast search in Hamming space with multi-index hashing",
CVPR 2012): the 64 pHash bits are cut into m = 4 substrings of 16 bits; two codes within r = 16
bits agree within 4 bits on the first substring or within 3 on one of the others (pigeonhole).
For each substring the stored codes are partitioned by its value (``SubstringTable``: codes
sorted by the substring, a bucket per value). A task joins one chunk of probes with one table:
each probe visits the buckets whose key is within that table's radius of its own, and a pair is
emitted by the first table that holds it only (decided from the pair's own bits), so every
(probe, stored) pair appears once over all tasks; both directions are then folded into pairs
(i < j), each once. Identical (pHash, PDQ) codes (blank images, bursts) are collapsed to one
before the join and listed as exact groups; a hot bucket is split by the probe chunks that visit
it. Tasks take and return NumPy arrays only: ``join_chunk`` runs in a thread, a process or on a
Dask worker alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import combinations

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.kernels import jit as _jit
from lookalike.fingerprints.kernels import popcount as _popcount
from lookalike.match.retrieval import PDQ_RADIUS, PHASH_RADIUS
from lookalike.scan.allpairs import held_by_earlier_table as _held_by_earlier_table

__all__ = ["SubstringTable", "build_tables", "collapse", "fold_pairs", "join_chunk", "join_local"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]

#: substrings of the 64-bit pHash (16 bits each), and each one's radius for r = 16
WIDTHS = (16, 16, 16, 16)
SHIFTS = (48, 32, 16, 0)
RADII = (4, 3, 3, 3)


@dataclass(frozen=True, slots=True)
class SubstringTable:
    """The stored codes partitioned by one 16-bit substring: codes and ids sorted by it, and each
    bucket's bounds (``offsets[key]``..``offsets[key + 1]``). 16 bytes a code and 0.5 MB."""

    table: int
    codes: U64
    ids: I64
    offsets: I64


def collapse(phash: U64, pdq: U64) -> tuple[I64, I64]:
    """Identical codes to one: (index of each distinct code's first row, each row's distinct code).
    ``pdq`` is (n, 4) uint64."""
    keys = np.concatenate([phash[:, None], pdq], axis=1)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # distinct codes numbered in order of first row
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return first[order].astype(np.int64), rank[inverse.ravel()].astype(np.int64)


def build_tables(phash: U64) -> list[SubstringTable]:
    """One ``SubstringTable`` per substring of the stored pHashes (ids are positions in ``phash``)."""
    out = []
    for t, (shift, width) in enumerate(zip(SHIFTS, WIDTHS)):
        keys = ((phash >> np.uint64(shift)) & np.uint64((1 << width) - 1)).astype(np.int64)
        ids = np.argsort(keys, kind="stable").astype(np.int64)
        offsets = np.zeros((1 << width) + 1, dtype=np.int64)
        np.cumsum(np.bincount(keys, minlength=1 << width), out=offsets[1:])
        out.append(SubstringTable(t, phash[ids], ids, offsets))
    return out


def _masks(width: int, weight: int) -> I64:
    out = [0]
    for w in range(1, weight + 1):
        out.extend(sum(1 << b for b in bits) for bits in combinations(range(width), w))
    return np.asarray(out, dtype=np.int64)


@_jit
def _probe(t_codes, t_ids, offs, masks, t, shifts, widths, radii, q_codes, q_pdq, q_ids, s_pdq, r_ph, r_pdq):  # type: ignore[no-untyped-def]
    """(probe ids, stored ids, count of pairs that passed pHash but not PDQ) for table ``t``."""
    cap = 1024
    out_a = np.empty(cap, np.int64)
    out_b = np.empty(cap, np.int64)
    n_out = 0
    phash_only = 0
    shift = np.uint64(shifts[t])
    kmask = np.uint64((1 << widths[t]) - 1)
    n_keys = len(offs) - 1
    for qi in range(len(q_codes)):
        c = q_codes[qi]
        key = np.int64((c >> shift) & kmask)
        for mi in range(len(masks)):
            k2 = key ^ masks[mi]
            if k2 >= n_keys:
                continue
            for j in range(offs[k2], offs[k2 + 1]):
                x = c ^ t_codes[j]
                if _popcount(x) > r_ph:
                    continue
                if _held_by_earlier_table(x, t, shifts, widths, radii):
                    continue
                sid = t_ids[j]
                if sid == q_ids[qi]:
                    continue
                d = np.int64(0)
                for w in range(4):
                    d += _popcount(q_pdq[qi, w] ^ s_pdq[sid, w])
                if d > r_pdq:
                    phash_only += 1
                    continue
                if n_out == cap:
                    cap *= 2
                    na = np.empty(cap, np.int64)
                    nb = np.empty(cap, np.int64)
                    na[:n_out] = out_a[:n_out]
                    nb[:n_out] = out_b[:n_out]
                    out_a, out_b = na, nb
                out_a[n_out] = q_ids[qi]
                out_b[n_out] = sid
                n_out += 1
    return out_a[:n_out], out_b[:n_out], phash_only


def join_chunk(
    table: SubstringTable, stored_pdq: U64, probe_phash: U64, probe_pdq: U64, probe_ids: I64
) -> tuple[I64, I64, int]:
    """The candidate pairs one table holds first between a chunk of probes (each a picture under
    one turn: pHash, PDQ as (n, 4) uint64, the picture's id) and the stored codes: (probe ids,
    stored ids, pairs within the pHash radius that PDQ turned away)."""
    masks = _masks(WIDTHS[table.table], RADII[table.table])
    shifts, widths, radii = (np.asarray(v, dtype=np.int64) for v in (SHIFTS, WIDTHS, RADII))
    a, b, rejected = _probe(  # type: ignore[no-untyped-call]  # an untyped numba kernel
        table.codes, table.ids, table.offsets, masks, table.table, shifts, widths, radii,
        probe_phash, probe_pdq, probe_ids, stored_pdq, PHASH_RADIUS, PDQ_RADIUS,
    )  # fmt: skip
    return a, b, int(rejected)


def fold_pairs(a: I64, b: I64) -> tuple[I64, I64]:
    """Both directions of every found pair folded into (i, j) with i < j, each once, sorted."""
    lo, hi = np.minimum(a, b), np.maximum(a, b)
    keyed = np.unique(lo.astype(np.int64) << np.int64(32) | hi.astype(np.int64))
    return keyed >> np.int64(32), keyed & np.int64(0xFFFFFFFF)


def join_local(
    stored_phash: U64, stored_pdq: U64, probe_phash: U64, probe_pdq: U64, probe_ids: I64, *, jobs: int = 1
) -> tuple[I64, I64, int]:
    """Every candidate pair in one process (the one-machine engine), ``jobs`` threads splitting the
    probes (the kernel releases the GIL): (i, j) with i < j, and the pairs PDQ turned away. Ids
    must be below 2**32."""
    from concurrent.futures import ThreadPoolExecutor

    tables = build_tables(stored_phash)
    bounds = np.linspace(0, len(probe_phash), 4 * max(1, jobs) + 1).astype(np.int64)
    work = [(t, lo, hi) for t in tables for lo, hi in zip(bounds[:-1], bounds[1:]) if hi > lo]

    def run(item: tuple[SubstringTable, int, int]) -> tuple[I64, I64, int]:
        t, lo, hi = item
        return join_chunk(t, stored_pdq, probe_phash[lo:hi], probe_pdq[lo:hi], probe_ids[lo:hi])

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        done = list(pool.map(run, work))
    i, j = fold_pairs(np.concatenate([d[0] for d in done]), np.concatenate([d[1] for d in done]))
    return i, j, sum(d[2] for d in done)
