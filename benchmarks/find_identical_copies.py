#!/usr/bin/env python3
"""Peak memory of `lookalike find --json` over N identical copies of one picture (client and workers).

    python benchmarks/find_identical_copies.py --copies 3000 [--jobs 0] [--work DIR]

Writes N copies of one generated photo (PNG) into a temporary folder, runs the real console script
``lookalike find FOLDER --json`` in a fresh database, and samples the resident memory (VmRSS from
/proc) of the whole process tree (the command and every worker it starts) every 20 ms. Prints the
peak of that sum, the wall time, and the sizes of the result (groups, members, pairs, JSON bytes):
identical bytes are one node with N paths, so pairs and memory grow with N, not N².
Then runs it a second time (everything cached) and prints the same.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{task}/children", encoding="ascii") as fh:
                out += [int(c) for c in fh.read().split()]
    except OSError:
        pass
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants, now."""
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += _rss(pid)
        todo += _children(pid)
    return total


def run_measured(cmd: list[str]) -> tuple[subprocess.CompletedProcess[str], int, float]:
    """Run ``cmd``, sampling the tree's resident memory; (process, peak bytes, seconds)."""
    started = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak = [0]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], tree_rss(proc.pid))
            time.sleep(0.02)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    out, err = proc.communicate()
    done.set()
    sampler.join()
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), peak[0], time.perf_counter() - started


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--copies", type=int, default=3000)
    ap.add_argument("--jobs", type=int, default=0, help="find --jobs (0: all cores)")
    ap.add_argument("--work", help="folder to work in (default: a temporary one, removed after)")
    args = ap.parse_args()
    work = Path(args.work or tempfile.mkdtemp(prefix="lookalike-identical-"))
    try:
        folder = work / "copies"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(7)
        pixels = (rng.random((480, 640, 3)) * 255).astype(np.uint8)
        buf = io.BytesIO()
        Image.fromarray(pixels).resize((640, 480)).save(buf, "PNG")
        data = buf.getvalue()
        for i in range(args.copies):
            (folder / f"copy{i:05d}.png").write_bytes(data)
        script = Path(sys.executable).parent / "lookalike"
        cmd = [str(script), "find", str(folder), "--json", "--db", str(work / "find.db"), "--jobs", str(args.jobs)]
        for label in ("first run", "cached run"):
            proc, peak, seconds = run_measured(cmd)
            if proc.returncode not in (0, 1):
                sys.exit(f"find failed ({proc.returncode}): {proc.stderr[-2000:]}")
            doc = json.loads(proc.stdout)
            members = sum(len(g["members"]) for g in doc["groups"])
            print(
                f"{label:11s} {args.copies:,} copies: peak {peak / 2**20:,.0f} MiB (process tree), {seconds:,.1f} s; "
                f"{len(doc['groups'])} group, {members:,} members, {len(doc['pairs']):,} pairs, "
                f"{len(proc.stdout) / 1e6:,.1f} MB of JSON"
            )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
