#!/usr/bin/env python3
"""How fast `check` answers: throughput over a benchmark folder, and one query's latency
against a large index.

    python ../shared/bench/make_bench.py ../shared/bench/corpus /tmp/bench
    python benchmarks/check_speed.py /tmp/bench [--size 100000] [--jobs 2]

1. Throughput: `lookalike index` the references, then `lookalike check` every
   query (decoding included) with --jobs processes; prints queries per second.
2. Latency: an index of --size files — the references' real fingerprints plus
   copies with random pHash/PDQ bits, under other hashes, added through
   `Index.add_fingerprints` — then the median time of `Index.check` for single
   queries in a warm process (opening the index is reported separately).
Prints measurements; asserts nothing.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def _throughput(bench: Path, tmp: Path, jobs: int) -> None:
    exe = str(Path(sys.executable).with_name("lookalike"))
    db = tmp / "throughput.sqlite"
    start = time.perf_counter()
    subprocess.run([exe, "index", str(bench / "references"), "--db", str(db), "--jobs", str(jobs)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    indexed = time.perf_counter() - start
    queries = sorted((bench / "queries").iterdir())
    start = time.perf_counter()
    subprocess.run([exe, "check", str(bench / "queries"), "--db", str(db), "--json", "--jobs", str(jobs)], check=True,
                   stdout=subprocess.DEVNULL)  # fmt: skip
    took = time.perf_counter() - start
    refs = len(list((bench / "references").iterdir()))
    print(f"index: {refs} references in {indexed:.1f} s ({refs / indexed:.1f} images/s, {jobs} processes)")
    print(f"check: {len(queries)} queries in {took:.1f} s = {len(queries) / took:.1f} queries/s (bar >= 40)")


def _latency(bench: Path, tmp: Path, size: int) -> None:
    from lookalike.fingerprints import analyse, fingerprint
    from lookalike.index import Index

    refs = sorted((bench / "references").iterdir())
    real = [fingerprint(p) for p in refs]
    rng = np.random.default_rng(0)
    db = tmp / "latency.sqlite"
    with Index(db) as index:
        batch = []
        for i in range(size):
            fp = real[i % len(real)]
            if i >= len(real):  # an unrelated picture: random hashes, its own bytes
                fp = dataclasses.replace(
                    fp,
                    sha256=rng.bytes(32),
                    phash_variants=tuple(int(v) for v in rng.integers(0, 2**63, 8, dtype=np.int64)),
                    pdq=rng.bytes(32),
                )
            batch.append((fp, str(refs[i % len(refs)]) if i < len(real) else f"synthetic/{i}.jpg"))
            if len(batch) == 5000:
                index.add_fingerprints(batch)
                batch = []
        index.add_fingerprints(batch)
    start = time.perf_counter()
    index = Index(db)
    opened = time.perf_counter() - start
    queries = sorted((bench / "queries").iterdir())[:: max(1, len(list((bench / "queries").iterdir())) // 200)]
    analyses = [analyse(q.read_bytes(), name=str(q)) for q in queries]
    index.check_analysis(analyses[0])
    times = []
    for a in analyses:
        t = time.perf_counter()
        index.check_analysis(a)
        times.append(time.perf_counter() - t)
    start = time.perf_counter()
    for q in queries[:50]:
        index.check(q)
    with_decode = (time.perf_counter() - start) / min(50, len(queries))
    print(f"latency at {index.stats().files:,} files: open {opened:.2f} s; "
          f"check of an analysed query median {1000 * statistics.median(times):.1f} ms "
          f"(p90 {1000 * sorted(times)[int(0.9 * len(times))]:.1f} ms); with reading and decoding "
          f"{1000 * with_decode:.1f} ms (bar <= 100 ms median)")  # fmt: skip
    index.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("--size", type=int, default=100_000)
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--skip-throughput", action="store_true")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        if not a.skip_throughput:
            _throughput(a.bench, Path(tmp), a.jobs)
        _latency(a.bench, Path(tmp), a.size)


if __name__ == "__main__":
    main()
