#!/usr/bin/env python3
"""How much of a clean ``find --cluster`` run a ``--resume`` costs, and whether it gives the same answer.

    python benchmarks/scale_resume.py grow TREE [--cluster local:2] [--work DIR] [--one-machine]
    python benchmarks/scale_resume.py kill TREE [--cluster local:2] [--partition-size 64] [--work DIR]
    python benchmarks/scale_resume.py worker-kill TREE [--work DIR]

``grow``: copies nine files in ten of TREE (every tenth in sorted order held out, so the new files
spread over the listing), runs ``find --cluster --out RUN``, adds the held-out tenth and runs again
with ``--resume``; then a fresh run over the grown copy into another folder (and with
``--one-machine``, ``lookalike find --json`` with a fresh ``--db``). Prints the resume's seconds
over the fresh run's, and whether the groups, keepers and pairs agree.

``kill``: a clean run, then a run ``kill -9``'d (its process group) after half of its fingerprint
partitions, then ``--resume``: whether ``groups.parquet`` is byte-identical, and the resume's seconds
over the clean run's.

``worker-kill``: ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, a run of
``find --cluster tcp://...`` cut into 8 fingerprint partitions, one worker ``kill -9``'d after 2 of
them are written: the run's exit code, and whether its groups and keepers are one machine's.

Each mode's last line is one JSON object. Timings are wall seconds of the whole command (Dask's
start included), so a busy machine shows in them: compare ratios taken in one go.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

PY = sys.executable
DASK = str(Path(PY).with_name("dask"))
ENV = {**os.environ}


def _lookalike(*args: str) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    r = subprocess.run([PY, "-m", "lookalike", *args], capture_output=True, text=True, env=ENV)
    took = time.perf_counter() - started
    if r.returncode not in (0, 1):
        sys.exit(f"lookalike {' '.join(args)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    return took, r


def _answer(doc: dict[str, Any], root: Path) -> dict[str, Any]:
    """Groups as (keeper, members), and pairs, with paths relative to ``root``."""

    def rel(p: str) -> str:
        return os.path.relpath(p, root)

    groups = sorted((rel(g["keep"]), sorted(rel(m["path"]) for m in g["members"])) for g in doc["groups"])
    pairs = sorted(
        (min(rel(p["a"]), rel(p["b"])), max(rel(p["a"]), rel(p["b"])), p["verdict"], round(p["score"], 6))
        for p in doc.get("pairs", [])
    )
    return {"groups": groups, "pairs": pairs}


def _compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    members_a = {tuple(m) for _, m in a["groups"]}
    members_b = {tuple(m) for _, m in b["groups"]}
    same = members_a & members_b
    keep_a = {tuple(m): k for k, m in a["groups"]}
    keep_b = {tuple(m): k for k, m in b["groups"]}
    return {
        "groups": [len(members_a), len(members_b)],
        "same_groups": len(same),
        "same_keepers": sum(keep_a[m] == keep_b[m] for m in same),
        "pairs": [len(a["pairs"]), len(b["pairs"])],
        "pairs_equal": a["pairs"] == b["pairs"],
        "equal": a == b,
    }


def _rows(run: Path) -> dict[str, int]:
    """Index rows the last run's matching tasks reused as they were, extended, and checked in full."""
    from lookalike.scale.reuse import checked_rows

    return checked_rows(str(p) for p in (run / "pairs").glob("part-*.parquet"))


def _files(tree: Path) -> list[Path]:
    return sorted(p for p in tree.rglob("*") if p.is_file())


def _copy(tree: Path, files: list[Path], to: Path) -> None:
    for f in files:
        dest = to / f.relative_to(tree)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dest)  # the modification time too: the keeper reads it


def grow(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    tree = Path(args.tree).resolve()
    every = _files(tree)
    held = every[5 :: args.every]
    src = work / "src"
    _copy(tree, [f for f in every if f not in set(held)], src)
    flags = ["--cluster", args.cluster, "--partition-size", str(args.partition_size), "--json"]
    first_s, _ = _lookalike("find", str(src), *flags, "--out", str(work / "run"))
    _copy(tree, held, src)
    resume_s, resumed = _lookalike("find", str(src), *flags, "--out", str(work / "run"), "--resume")
    rows = _rows(work / "run")
    fresh_s, fresh = _lookalike("find", str(src), *flags, "--out", str(work / "fresh"))
    (work / "resumed.json").write_text(resumed.stdout)
    (work / "fresh.json").write_text(fresh.stdout)
    a, b = _answer(json.loads(resumed.stdout), src), _answer(json.loads(fresh.stdout), src)
    out: dict[str, Any] = {
        "mode": "grow", "files": len(every), "added": len(held), "first_seconds": round(first_s, 1),
        "resume_seconds": round(resume_s, 1), "fresh_seconds": round(fresh_s, 1),
        "resume_over_fresh": round(resume_s / fresh_s, 3), "resume_vs_fresh": _compare(a, b),
        "resume_stats": resumed.stderr.strip().splitlines()[-1], "resume_rows": rows,
    }  # fmt: skip
    if args.one_machine:
        one_s, one = _lookalike("find", str(src), "--json", "--db", str(work / "one.db"))
        out["one_machine_seconds"] = round(one_s, 1)
        out["resume_vs_one_machine"] = _compare(a, _answer(json.loads(one.stdout), src))
    return out


def _started(cmd: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as f:
        return subprocess.Popen(cmd, env=ENV, stdout=f, stderr=subprocess.STDOUT, start_new_session=True)


def _wait_parts(run: Path, proc: subprocess.Popen[Any], count: int) -> None:
    while len(list((run / "fingerprints").glob("*.parquet"))) < count:
        if proc.poll() is not None:
            sys.exit("the run ended before the fault")
        time.sleep(0.02)


def kill(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    tree = Path(args.tree).resolve()
    flags = ["--cluster", args.cluster, "--partition-size", str(args.partition_size), "--json"]
    clean_s, _ = _lookalike("find", str(tree), *flags, "--out", str(work / "clean"))
    parts = len(list((work / "clean" / "fingerprints").glob("*.parquet")))
    cmd = [PY, "-m", "lookalike", "find", str(tree), *flags, "--out", str(work / "killed")]
    proc = _started(cmd, work / "killed.log")
    _wait_parts(work / "killed", proc, parts // 2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    resume_s, _ = _lookalike("find", str(tree), *flags, "--out", str(work / "killed"), "--resume")
    same = filecmp.cmp(work / "clean" / "groups.parquet", work / "killed" / "groups.parquet", shallow=False)
    return {
        "mode": "kill", "partitions": parts, "killed_after": parts // 2, "clean_seconds": round(clean_s, 1),
        "resume_seconds": round(resume_s, 1), "resume_over_clean": round(resume_s / clean_s, 3),
        "groups_parquet_identical": same,
    }  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def worker_kill(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    from dask.distributed import Client

    tree = Path(args.tree).resolve()
    size = -(-len(_files(tree)) // 8)  # 8 fingerprint partitions
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"]
    procs = [_started(scheduler, work / "s.log")]
    try:
        for i in range(2):
            cmd = [DASK, "worker", address, "--nthreads", "1", "--host", "127.0.0.1", "--no-nanny"]
            procs.append(_started(cmd, work / f"w{i}.log"))
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(2, timeout=60)
        cmd = [PY, "-m", "lookalike", "find", str(tree), "--cluster", address, "--partition-size", str(size)]
        started = time.perf_counter()
        with (work / "run.json").open("wb") as out, (work / "run.err").open("wb") as err:
            run = subprocess.Popen([*cmd, "--json", "--out", str(work / "run")], env=ENV, stdout=out, stderr=err)
        _wait_parts(work / "run", run, 2)
        os.kill(procs[1].pid, signal.SIGKILL)
        code = run.wait()
        took = time.perf_counter() - started
    finally:
        for p in procs:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    one_s, one = _lookalike("find", str(tree), "--json", "--db", str(work / "one.db"))
    a = _answer(json.loads((work / "run.json").read_text()), tree) if code in (0, 1) else None
    return {
        "mode": "worker-kill", "partition_size": size, "exit": code, "seconds": round(took, 1),
        "one_machine_seconds": round(one_s, 1),
        "vs_one_machine": None if a is None else _compare(a, _answer(json.loads(one.stdout), tree)),
        "stderr_tail": (work / "run.err").read_text().strip().splitlines()[-1:],
    }  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("mode", choices=["grow", "kill", "worker-kill"])
    ap.add_argument("tree")
    ap.add_argument("--cluster", default="local:2")
    ap.add_argument("--partition-size", type=int, default=None, help="files a task (grow: 256, kill: 64)")
    ap.add_argument("--every", type=int, default=10, help="grow: one file in this many is added later")
    ap.add_argument("--one-machine", action="store_true", help="grow: compare with lookalike find --json too")
    ap.add_argument("--work", help="folder for the copies and runs (default: a temporary one, removed after)")
    args = ap.parse_args()
    if args.partition_size is None:
        args.partition_size = 64 if args.mode == "kill" else 256
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="scale_resume-"))
    if work.exists() and args.work:
        shutil.rmtree(work)
    work.mkdir(parents=True, exist_ok=True)
    try:
        result = {"grow": grow, "kill": kill, "worker-kill": worker_kill}[args.mode](args, work)
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
