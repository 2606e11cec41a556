"""Benchmark lookalike.index.search.hamming.HammingIndex against a brute-force NumPy scan.

Data: n codes, half uniform random and half in heavy-tailed clusters (a centre plus 0-4 random
bit flips per member, as bursts and re-saves of one photo look), plus for every query one
planted neighbour at each distance 0..10. Queries: a third random, a third near (mostly big)
cluster centres, a third codes already in the index.

For every query it checks that ``radius(q, r)`` equals the brute-force answer exactly (same ids,
distances and order) and times it against ``np.bitwise_count(codes ^ q)`` over the same array,
interleaved in the same run. Prints medians, their ratio, build time and bytes per code. A few
warm-up queries first compile the numba kernels (or load them from numba's cache), untimed.

    python benchmarks/hamming_index.py --n 1000000 --queries 200 --radius 10
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np
import numpy.typing as npt

from lookalike.index.search.hamming import HammingIndex

U64 = npt.NDArray[np.uint64]


def flip(codes: U64, counts: npt.NDArray[np.int64], bits: int, rng: np.random.Generator) -> U64:
    """Each row of ``codes`` (k, w) with ``counts[i]`` distinct random bits flipped."""
    k, w = codes.shape
    rank = np.argsort(rng.random((k, bits)), axis=1)  # a random order of the bit positions
    chosen = rank < counts[:, None]  # the first counts[i] of them
    masks = np.packbits(chosen, axis=1).view(">u8").astype(np.uint64)
    return codes ^ masks.reshape(k, w)


def flip_few(codes: U64, counts: npt.NDArray[np.int64], rng: np.random.Generator) -> U64:
    """Like ``flip`` for 64-bit codes and counts <= 4, without a (k, 64) array (flips may repeat)."""
    out = codes.copy()
    for j in range(int(counts.max(initial=0))):
        bit = rng.integers(0, 64, len(codes)).astype(np.uint64)
        out[counts > j, 0] ^= (np.uint64(1) << bit)[counts > j]
    return out


def make_data(n: int, queries: int, radius: int, bits: int, seed: int) -> tuple[U64, U64, str]:
    rng = np.random.default_rng(seed)
    w = bits // 64
    half = n // 2
    codes = rng.integers(0, 2**64, (n, w), dtype=np.uint64)
    centres = codes[half : half + max(1, half // 50)].copy()  # ~50 members a cluster on average
    # u**2 skews membership towards low centre numbers: a few clusters of thousands, many small.
    which = (len(centres) * rng.random(half) ** 2).astype(np.int64)
    members = centres[which]
    counts = rng.integers(0, 5, half)
    codes[:half] = flip_few(members, counts, rng) if w == 1 else flip(members, counts, bits, rng)
    # Queries: random codes, near-centre codes, and codes already stored.
    third = queries // 3
    near = centres[(len(centres) * rng.random(third) ** 2).astype(np.int64)]
    qs = np.concatenate(
        [
            rng.integers(0, 2**64, (queries - 2 * third, w), dtype=np.uint64),
            flip(near, rng.integers(0, 3, third), bits, rng),
            codes[rng.integers(0, n, third)],
        ]
    )
    kinds = "r" * (queries - 2 * third) + "c" * third + "s" * third
    dists = np.tile(np.arange(min(radius, bits) + 1), queries)
    planted = flip(np.repeat(qs, min(radius, bits) + 1, axis=0), dists, bits, rng)
    return np.concatenate([codes, planted]), qs, kinds


def brute(ids: npt.NDArray[np.int64], codes: U64, q: U64, r: int) -> tuple[npt.NDArray[np.int64], ...]:
    d = np.bitwise_count(codes ^ q).sum(axis=1, dtype=np.int64)
    sel = np.flatnonzero(d <= r)
    order = np.lexsort((ids[sel], d[sel]))
    return ids[sel][order], d[sel][order]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000, help="codes before planting (default 1e6)")
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--radius", type=int, default=10)
    ap.add_argument("--bits", type=int, default=64)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    r = args.radius

    t0 = time.perf_counter()
    codes, qs, kinds = make_data(args.n, args.queries, r, args.bits, args.seed)
    ids = (np.random.default_rng(args.seed + 1).permutation(len(codes)) * 1_000_003 + 17).astype(np.int64)
    print(f"data: {len(codes):,} codes of {args.bits} bits, {len(qs)} queries, r={r} "
          f"({time.perf_counter() - t0:.1f} s to generate)")  # fmt: skip

    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    t0 = time.perf_counter()
    index = HammingIndex(args.bits)
    index.add(ids, codes)
    build = time.perf_counter() - t0
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    n = len(index)
    print(f"build: {build:.2f} s for {n:,} codes; index arrays {index.nbytes() / n:.2f} bytes/code; "
          f"tracemalloc retained {(held - base) / n:.2f} bytes/code, build peak {(peak - base) / n:.1f}")  # fmt: skip

    flat = codes[:, 0].copy() if args.bits == 64 else codes  # the scan's array, as a user would hold it
    queries = [q[0] if args.bits == 64 else q for q in qs]
    # The first query compiles the numba kernels, or loads them from numba's on-disk cache: not
    # part of any timing. Random codes, so that no benchmark query has been seen before.
    t0 = time.perf_counter()
    for warm in np.random.default_rng(args.seed + 2).integers(0, 2**64, (3, qs.shape[1]), dtype=np.uint64):
        index.radius(warm[0] if args.bits == 64 else warm, r)
    print(f"warm-up: {time.perf_counter() - t0:.2f} s for the first queries (numba compiling or loading its cache)")
    # Back-to-back loops (index, then scan), each side in its own steady state; run first, so
    # that no query has been seen before.
    t_index, t_scan = [], []
    for query in queries:
        t0 = time.perf_counter()
        index.radius(query, r)
        t_index.append(time.perf_counter() - t0)
    for query in queries:
        t0 = time.perf_counter()
        np.bitwise_count(flat ^ query)
        t_scan.append(time.perf_counter() - t0)
    ti2, ts2 = np.median(t_index) * 1e3, np.median(t_scan) * 1e3
    print(f"radius, back-to-back loops: index {ti2:.3f} ms, scan {ts2:.3f} ms, ratio 1/{ts2 / ti2:.1f}")

    wrong, t_index, t_scan, cand_counts = 0, [], [], []
    for i, q in enumerate(qs):
        query = q[0] if args.bits == 64 else q
        t0 = time.perf_counter()
        got_ids, got_d = index.radius(query, r)
        t1 = time.perf_counter()
        np.bitwise_count(flat ^ query)
        t2 = time.perf_counter()
        t_index.append(t1 - t0)
        t_scan.append(t2 - t1)
        exp_ids, exp_d = brute(ids, codes, q, r)
        cand_counts.append(len(exp_ids))
        if not (np.array_equal(got_ids, exp_ids) and np.array_equal(got_d, exp_d)):
            wrong += 1
            print(f"  MISMATCH query {i} ({kinds[i]}): got {len(got_ids)} hits, expected {len(exp_ids)}")
    ti, ts = np.array(t_index) * 1e3, np.array(t_scan) * 1e3
    print(f"exactness: {len(qs) - wrong}/{len(qs)} queries identical to brute force "
          f"(hits per query: median {np.median(cand_counts):.0f}, max {max(cand_counts)})")  # fmt: skip
    for kind, name in (("r", "random"), ("c", "near centre"), ("s", "stored code")):
        sel = np.array([k == kind for k in kinds])
        print(f"  {name:12s} index median {np.median(ti[sel]):.3f} ms, p90 {np.percentile(ti[sel], 90):.3f} ms")
    print(f"radius, interleaved: each query followed by its scan, which evicts the index from cache: index "
          f"{np.median(ti):.3f} ms, scan {np.median(ts):.3f} ms, ratio 1/{np.median(ts) / np.median(ti):.1f} "
          f"(index p90 {np.percentile(ti, 90):.3f} ms, max {ti.max():.3f} ms)")  # fmt: skip
    batch = qs[:, 0].copy() if args.bits == 64 else qs
    t_knn = []
    for q in batch[:50]:
        t0 = time.perf_counter()
        index.knn(q, 10)
        t_knn.append(time.perf_counter() - t0)
    print(f"knn(k=10) median over 50 queries: {np.median(t_knn) * 1e3:.3f} ms")


if __name__ == "__main__":
    main()
