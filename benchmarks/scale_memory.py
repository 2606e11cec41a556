#!/usr/bin/env python3
"""Memory a file of ``find --cluster``, measured on the product: peak resident and anonymous memory
of the client and of its largest worker, sampled from ``/proc`` for the whole process tree.
Resident memory counts the pages of memory-mapped files (a worker's vote table and codes), which
the kernel drops under pressure and reads again; anonymous memory (``RssAnon``) is what the
process holds of its own.

    python benchmarks/scale_memory.py --n 2000 --dir /tmp/photos-2k --cluster local:2
    python benchmarks/scale_memory.py --n 16000 --dir /tmp/photos-16k --cluster local:2 --one-machine

Writes ``n`` small photos (256 px on the long side, drawn at random: gradients, shapes and noise)
into ``--dir`` unless it holds them, a tenth of them planted copies of another (recompressed,
mirrored, turned a quarter, cropped to 80 %), then runs ``lookalike find DIR --cluster ... --out
RUN --json`` as a user would, sampling ``/proc/PID/statm`` and ``status`` of the command and every
descendant every 0.2 s. Memory a file is the growth between two sizes (run it at two): fixed costs hide
growth at one size. ``--reuse RUN`` starts from the fingerprints of an earlier run folder (the
other stages measured, in a fraction of the time). ``--one-machine`` also runs ``lookalike find
DIR --json`` and says whether each planted copy is grouped with its source as one machine groups it.
``--against REPORT`` (the last line of a run at another size) adds the growth a file of each peak.

The last line is one JSON object: n, planted, planted_found, planted_found_one_machine,
peak_client_bytes, peak_worker_bytes, peak_client_anon_bytes, peak_worker_anon_bytes, wall_seconds,
the machine's load average at the end, and the peaks of each stage ([client, worker, client
anonymous, worker anonymous]; its end told by the modification times of the files it writes).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
from PIL import Image

PAGE = os.sysconf("SC_PAGE_SIZE")
KINDS = ("recompressed", "mirrored", "turned", "cropped")


def draw(rng: np.random.Generator, size: int = 256) -> Image.Image:
    """A photo-like picture: colour ramps, a wave, filled shapes and noise."""
    h, w = size * 3 // 4, size
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    u, v = x / (w - 1), y / (h - 1)
    base = np.stack([0.5 + 0.45 * (np.cos(a) * (u - 0.5) + np.sin(a) * (v - 0.5)) for a in rng.uniform(0, 6.3, 3)], -1)
    base += 0.12 * np.sin(2 * np.pi * (u * rng.uniform(1, 3) + v * rng.uniform(0.5, 2)))[..., None]
    for _ in range(8):
        x0, x1 = sorted(rng.integers(0, w, 2))
        y0, y1 = sorted(rng.integers(0, h, 2))
        x1, y1 = max(x1, x0 + w // 10), max(y1, y0 + h // 10)
        colour = rng.integers(0, 256, 3) / 255.0
        if rng.random() < 0.5:
            mask = ((x - (x0 + x1) / 2) / ((x1 - x0) / 2)) ** 2 + ((y - (y0 + y1) / 2) / ((y1 - y0) / 2)) ** 2 <= 1
        else:
            mask = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        base[mask] = colour
    arr = np.rint(base * 255) + rng.normal(0, 4, size=(h, w, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def plant(im: Image.Image, kind: str) -> Image.Image:
    """A copy of ``im`` edited as ``kind`` says."""
    if kind == "mirrored":
        return im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if kind == "turned":
        return im.transpose(Image.Transpose.ROTATE_90)
    if kind == "cropped":
        w, h = im.size
        return im.crop((w // 10, h // 10, w - w // 10, h - h // 10))
    return im


def write_tree(folder: Path, n: int, seed: int = 0) -> dict[str, str]:
    """``n`` files in ``folder`` (a tenth planted copies); returns {copy: source} (names)."""
    planted_path = folder / "planted.json"
    if planted_path.exists():
        return dict(json.loads(planted_path.read_text()))
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    copies = n // 10
    planted: dict[str, str] = {}
    for i in range(n - copies):
        draw(rng).save(folder / f"{i:07d}.jpg", quality=90)
    for c in range(copies):
        src = f"{int(rng.integers(0, n - copies)):07d}.jpg"
        kind = KINDS[c % len(KINDS)]
        name = f"{n - copies + c:07d}.jpg"
        plant(Image.open(folder / src).convert("RGB"), kind).save(folder / name, quality=70)
        planted[name] = src
    tmp = folder / "planted.json.tmp"  # written last: a tree with it is complete
    tmp.write_text(json.dumps(planted))
    tmp.rename(planted_path)
    return planted


def tree_of(pid: int) -> list[int]:
    """``pid`` and its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    todo.extend(int(c) for c in fh.read().split())
        except OSError:
            pass
    return out


def rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as fh:
            return int(fh.read().split()[1]) * PAGE
    except OSError:
        return 0


def anon(pid: int) -> int:
    """Resident anonymous (private) bytes: ``rss`` less the file pages (memory-mapped Parquet,
    NumPy arrays and libraries), which the kernel drops under pressure and reads again."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("RssAnon:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


Sample = tuple[float, int, int, int, int]


def run_sampled(cmd: list[str], out: Path, trace: list[Sample] | None = None) -> tuple[dict[str, int], float, int]:
    """Run ``cmd`` (stdout to ``out``): (peak bytes: client and largest worker, resident and
    anonymous; seconds; exit code); each sample (wall clock, client resident, largest worker's
    resident, client anonymous, largest worker's anonymous) is added to ``trace``."""
    started = time.perf_counter()
    with out.open("wb") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.DEVNULL)
        peaks = dict.fromkeys(("client", "worker", "client_anon", "worker_anon"), 0)
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                others = tree_of(proc.pid)[1:]
                now = {
                    "client": rss(proc.pid), "worker": max((rss(p) for p in others), default=0),
                    "client_anon": anon(proc.pid), "worker_anon": max((anon(p) for p in others), default=0),
                }  # fmt: skip
                for k, v in now.items():
                    peaks[k] = max(peaks[k], v)
                if trace is not None:
                    trace.append((time.time(), now["client"], now["worker"], now["client_anon"], now["worker_anon"]))
                time.sleep(0.2)

        t = threading.Thread(target=sample, daemon=True)
        t.start()
        code = proc.wait()
        done.set()
        t.join()
    return peaks, time.perf_counter() - started, code


#: a stage of the run ends when the last file it writes is written: (stage, files under the run folder)
STAGES = (
    ("fingerprinting", "fingerprints/*.parquet"), ("codes", "matching/codes-*.parquet"),
    ("stored", "matching/stored-*/*.npy"), ("matching", "pairs/*.parquet"), ("grouping", "groups.parquet"),
)  # fmt: skip


def by_stage(trace: list[Sample], run: Path) -> dict[str, list[int]]:
    """Peak [client, worker, client anonymous, worker anonymous] bytes of each stage, its end told
    by its files' modification times (a stage reused from --reuse has no samples; printing the
    answer is "printing")."""
    out: dict[str, list[int]] = {}
    start = 0.0
    for stage, pattern in [*STAGES, ("printing", "")]:
        ends = [p.stat().st_mtime for p in run.glob(pattern)] if pattern else [float("inf")]
        end = max(ends, default=start)
        samples = [s[1:] for s in trace if start <= s[0] < end]
        if samples:
            out[stage] = [max(column) for column in zip(*samples)]
        start = max(start, end)
    return out


def found(doc: dict[str, object], planted: dict[str, str], folder: Path) -> int:
    """Planted copies grouped with their source."""
    group_of: dict[str, int] = {}
    for i, g in enumerate(doc["groups"]):  # type: ignore[arg-type]
        for m in g["members"]:
            group_of[os.path.basename(m["path"])] = i
    return sum(1 for c, s in planted.items() if c in group_of and group_of.get(s) == group_of[c])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, required=True)
    ap.add_argument("--dir", type=Path, required=True)
    ap.add_argument("--cluster", default="local:2")
    ap.add_argument("--work", type=Path, default=None, help="run folder parent (default: beside --dir)")
    ap.add_argument("--one-machine", action="store_true")
    ap.add_argument(
        "--reuse", type=Path, default=None, metavar="RUN",
        help="start from the fingerprints of run folder RUN (copied, then --resume): every later stage measured",
    )  # fmt: skip
    ap.add_argument(
        "--reuse-matching", action="store_true",
        help="with --reuse, its matching partitions too (those finished): grouping and printing measured; give"
        " --work the earlier run's work folder (a matching partition's name holds the run folder's path)",
    )  # fmt: skip
    ap.add_argument(
        "--against", type=Path, default=None, metavar="REPORT",
        help="the JSON line of a run at another size: adds bytes_a_file, the growth of each peak over the files added",
    )  # fmt: skip
    args = ap.parse_args()
    planted = write_tree(args.dir, args.n)
    work = args.work or args.dir.with_name(args.dir.name + "-runs")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    lookalike = [sys.executable, "-m", "lookalike", "find", str(args.dir), "--json"]
    cmd = [*lookalike, "--cluster", args.cluster, "--out", str(work / "run")]
    if args.reuse:
        shutil.copytree(args.reuse / "fingerprints", work / "run" / "fingerprints")
        for name in ("manifest.parquet", "partitions.parquet"):
            shutil.copy(args.reuse / name, work / "run" / name)
        for name in ("matching", "pairs") if args.reuse_matching else ():
            shutil.copytree(args.reuse / name, work / "run" / name)
        cmd.append("--resume")
    trace: list[Sample] = []
    peaks, seconds, code = run_sampled(cmd, work / "cluster.json", trace)
    doc = json.loads((work / "cluster.json").read_text()) if code in (0, 1) else {"groups": []}
    report = {
        "n": args.n, "planted": len(planted), "planted_found": found(doc, planted, args.dir),
        "peak_client_bytes": peaks["client"], "peak_worker_bytes": peaks["worker"],
        "peak_client_anon_bytes": peaks["client_anon"], "peak_worker_anon_bytes": peaks["worker_anon"],
        "wall_seconds": round(seconds, 1), "exit": code,
        "load_average_1_5_15": [round(x, 1) for x in os.getloadavg()],  # a busy machine slows every stage
        "peak_bytes_by_stage": by_stage(trace, work / "run"),  # [client, worker, client anon, worker anon]
    }  # fmt: skip
    if args.against:
        other = json.loads(args.against.read_text().strip().splitlines()[-1])
        report["bytes_a_file"] = {
            k: round((report[f"peak_{k}_bytes"] - other[f"peak_{k}_bytes"]) / (args.n - other["n"]))
            for k in ("client", "worker", "client_anon", "worker_anon")
        }
    if args.one_machine:
        _, one_seconds, one_code = run_sampled([*lookalike, "--db", str(work / "one.db")], work / "one.json")
        one = json.loads((work / "one.json").read_text()) if one_code in (0, 1) else {"groups": []}
        report["planted_found_one_machine"] = found(one, planted, args.dir)
        report["one_machine_seconds"] = round(one_seconds, 1)
        report["groups_equal"] = [sorted(m["path"] for m in g["members"]) for g in one["groups"]] == [
            sorted(m["path"] for m in g["members"]) for g in doc["groups"]
        ]
    print(json.dumps(report))


if __name__ == "__main__":
    main()
