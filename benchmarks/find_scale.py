#!/usr/bin/env python3
"""All-pairs duplicate search over synthetic 64-bit pHash codes: time and peak memory.

    python benchmarks/find_scale.py --n 1000000 [--radius 10] [--jobs 2]

The codes model a large collection: 70% unrelated pictures (uniform random codes), 25% edited
copies of them (each copy 0 to 8 bits away from its original; an original may have several), and
5% bursts of near-identical shots (20 codes within 4 bits of a burst's centre). The search is
``allpairs.hamming_pairs`` (beside this script) (multi-index-hashing self-join; never an n x n matrix); grouping
is ``pair_components`` (union-find). Prints pairs found, time per stage, peak RSS and its bytes a
code, and checks that every planted copy was found.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
from allpairs import hamming_pairs, pair_components  # beside this script


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(codes, planted copy index, its original's index)."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    n_copies, n_burst = n // 4, n // 20
    base = n - n_copies - n_burst
    originals = rng.integers(0, base, size=n_copies)
    copies = np.arange(base, base + n_copies)
    flips = np.zeros(n_copies, np.uint64)
    n_bits = rng.integers(0, 9, size=n_copies)
    for k in range(8):
        bit = rng.integers(0, 64, size=n_copies).astype(np.uint64)
        flips ^= np.where(k < n_bits, np.uint64(1) << bit, np.uint64(0))
    codes[copies] = codes[originals] ^ flips
    burst = np.arange(base + n_copies, n)
    noise = np.zeros(n_burst, np.uint64)
    for _ in range(4):
        noise ^= np.uint64(1) << rng.integers(0, 64, size=n_burst).astype(np.uint64)
    centres = rng.integers(0, base, size=max(1, n_burst // 20))
    codes[burst] = codes[centres[np.arange(n_burst) % len(centres)]] ^ noise
    return codes, copies, originals


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--radius", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=0)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    hamming_pairs(np.arange(64, dtype=np.uint64), args.radius)  # compile (or load) the kernel first
    pair_components(2, np.zeros(1, np.int64), np.ones(1, np.int64))
    codes, copies, originals = synthetic(args.n, args.seed)
    t0 = time.perf_counter()
    a, b, d = hamming_pairs(codes, args.radius, jobs=args.jobs)
    t1 = time.perf_counter()
    labels = pair_components(args.n, a, b)
    t2 = time.perf_counter()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    found = labels[copies] == labels[originals]
    within = np.bitwise_count(codes[copies] ^ codes[originals]) <= args.radius
    groups = np.unique(labels, return_counts=True)[1]
    print(f"codes                 {args.n:,}  (radius {args.radius} bits, {args.jobs or 'all'} threads)")
    print(f"pairs found           {len(a):,}")
    print(f"groups (2+ members)   {int((groups > 1).sum()):,}, largest {int(groups.max()):,}")
    print(f"planted copies found  {int(found[within].sum()):,} of {int(within.sum()):,}")
    print(f"all-pairs search      {t1 - t0:.1f} s")
    print(f"grouping              {t2 - t1:.1f} s")
    print(f"total                 {t2 - t0:.1f} s")
    print(f"peak RSS              {peak / 2**20:,.0f} MiB ({peak / args.n:.0f} bytes a code, everything included)")
    assert bool(found[within].all()), "a planted copy within the radius was missed"


if __name__ == "__main__":
    main()
