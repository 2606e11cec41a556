#!/usr/bin/env python3
"""``index --learned --jobs N``: how much of the work leaves the main process, and the speed-up.

    python benchmarks/index_learned_jobs.py /tmp/bench/references [--jobs 1 2] [--limit N]

Runs what ``lookalike index --learned`` runs (``analyse_files(embed=..., query=...)`` in workers,
``Index.add_checked`` in the main process) into a fresh SQLite file per run, each run in a fresh
interpreter as the command is (loading the encoder and compiled kernels counts, and a later run
inherits nothing an earlier one loaded), and prints per run the wall time, the main process's CPU
(start-up, checking and storing: the serial part) and the workers' CPU (decode, fingerprints, local
features and the embedding). On a shared machine the wall times depend on the
load, so it also prints the speed-up an idle machine with ``jobs`` cores would give: the one-job
run's CPU over the longer of the main process's CPU and all the CPU shared by ``jobs`` cores
(Amdahl's bound from measured CPU). Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from lookalike.fingerprints import analyse_files
from lookalike.index import Index
from lookalike.index.store.records import OnDuplicate
from lookalike.learned import load_embedder
from lookalike.learned.isolated import embed_pixels
from lookalike.match.local import query_features
from lookalike.walk import iter_image_files


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def run(files: list[Path], jobs: int, db: Path) -> tuple[float, float]:
    """(this process's CPU s, the workers' CPU s) of one ``index --learned --jobs`` run in this fresh
    process, from its start: its imports, the encoder's load and the workers' start-up count."""
    with Index(db, embedder=load_embedder()) as index:
        embed = partial(embed_pixels, model=None)
        extra = {"embed": embed, "query": query_features, "pixels": False} if jobs > 1 else {}  # as `index` does
        for r in analyse_files(files, jobs=jobs, local=True, **extra):  # type: ignore[arg-type]
            if r.analysis is not None:
                index.add_checked(
                    r.analysis,
                    str(r.path),
                    on_duplicate=OnDuplicate.STORE,
                    embedding=r.vector,
                    query_local=r.query_local,
                )
    return time.process_time(), _children_cpu()


def _fresh(folder: Path, limit: int, jobs: int, db: Path) -> tuple[float, float, float]:
    """(wall s, main process CPU s, workers' CPU s) of ``run`` in a new interpreter (this script with
    ``--one``), the wall time from its start to its end, as the command's."""
    argv = [sys.executable, __file__, str(folder), "--limit", str(limit), "--one", str(jobs), "--db", str(db)]
    wall = time.perf_counter()
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    wall = time.perf_counter() - wall
    main_cpu, workers_cpu = json.loads(out.strip().splitlines()[-1])
    return wall, float(main_cpu), float(workers_cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--jobs", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--one", type=int, default=0, help=argparse.SUPPRESS)  # one run, in this process
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    files = sorted(iter_image_files([args.folder]))
    files = files[: args.limit] if args.limit else files
    if args.one:
        print(json.dumps(run(files, args.one, args.db)))
        return
    print(f"{len(files)} files; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores at the start")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for jobs in args.jobs:
            wall, main_cpu, workers_cpu = _fresh(args.folder, args.limit, jobs, Path(tmp) / f"jobs{jobs}.sqlite")
            results[jobs] = (wall, main_cpu, workers_cpu)
            print(f"--jobs {jobs}: wall {wall:.1f} s, main process CPU {main_cpu:.1f} s, "
                  f"workers CPU {workers_cpu:.1f} s (load {os.getloadavg()[0]:.1f})")  # fmt: skip
    if 1 in results:
        one = results[1][1] + results[1][2]
        for jobs, (wall, main_cpu, workers_cpu) in results.items():
            if jobs > 1:
                bound = one / max(main_cpu, (main_cpu + workers_cpu) / jobs)  # the main process needs a core too
                print(f"--jobs {jobs} vs 1: wall {results[1][0] / wall:.2f}x; on an idle {jobs}-core machine "
                      f"(from CPU) {bound:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
