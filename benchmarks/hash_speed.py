#!/usr/bin/env python3
"""Fingerprinting speed on camera-sized JPEGs: ``lookalike hash --jobs 1`` against two references,
measured in the same run on the same core (issue #14's bar):

* Pillow alone decoding at 1/8 scale (``draft`` + ``load``): the floor, bar >= 0.8x;
* ``imagehash.phash(Image.open(p))``: the peer, bar >= 5x.

    python ../shared/bench/make_photos.py ../shared/bench/corpus /tmp/p --n 40
    python benchmarks/hash_speed.py /tmp/p [--rounds 3] [--core 0]

Every contender is a command of its own, started in a clean process pinned to one core (``taskset -c
CORE``): a reference timed inside a process that has loaded lookalike (numba, OpenCV, their thread
pools and allocations) ran at half its own speed. Each command runs over three copies of the folder
(copies: ``lookalike hash`` reads a file that several links lead to once, which had made the command
look three times as fast) and over one file; the rate is the marginal one, (n - 1) images over the
difference of the two wall times, so Python's start-up and imports weigh on no contender. Contenders
are interleaved round by round, so a busy machine slows them alike, and the best of ``--rounds`` is
kept (the least disturbed run). ``lookalike fingerprint()`` in a loop is timed the same way, to tell
the library from the command's own cost. Prints images per second and the ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

_LOOP = "import sys\nfrom pathlib import Path\n{setup}\nfor p in sorted(Path(sys.argv[1]).iterdir()):\n    {body}\n"

#: name -> python arguments; each ends with the folder to work on
CONTENDERS: dict[str, list[str]] = {
    "Pillow 1/8 decode": [
        "-c",
        _LOOP.format(
            setup="from PIL import Image",
            body="with Image.open(p) as im:\n        im.draft('RGB', (im.width // 8, im.height // 8))\n"
            "        im.load()",
        ),
    ],
    "imagehash.phash": [
        "-c",
        _LOOP.format(setup="import imagehash\nfrom PIL import Image", body="imagehash.phash(Image.open(p))"),
    ],
    "lookalike hash --jobs 1 --json": ["-m", "lookalike", "hash", "--jobs", "1", "--json"],
    "lookalike fingerprint() loop": [
        "-c",
        _LOOP.format(setup="from lookalike import fingerprint", body="fingerprint(p)"),
    ],
}
FLOOR, PEER, BAR = "Pillow 1/8 decode", "imagehash.phash", "lookalike hash --jobs 1 --json"


def _seconds(args: list[str], folder: Path, core: int, env: dict[str, str]) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of one clean process running ``args`` over ``folder``."""
    cmd = [shutil.which("taskset") or "taskset", "-c", str(core), sys.executable, *args, str(folder)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    return wall, usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--core", type=int, default=min(os.sched_getaffinity(0)))
    ap.add_argument("--copies", type=int, default=3, help="times the folder is gone over in the long run")
    a = ap.parse_args()
    files = sorted(a.folder.glob("*.jpg"))
    if not files:
        sys.exit(f"no .jpg files in {a.folder}")
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]))
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        # copies, not links: ``lookalike hash`` reads a file that several paths lead to once
        shutil.copyfile(files[0], Path(one) / files[0].name)
        for copy in range(a.copies):
            for f in files:
                shutil.copyfile(f, Path(many) / f"{copy}_{f.name}")
        n = a.copies * len(files)
        for args in CONTENDERS.values():  # warm the file cache, .pyc files and numba's cache
            _seconds(args, Path(one), a.core, env)
        runs: dict[str, list[tuple[float, float, float, float]]] = {k: [] for k in CONTENDERS}
        for _ in range(a.rounds):
            for name, args in CONTENDERS.items():
                full, single = _seconds(args, Path(many), a.core, env), _seconds(args, Path(one), a.core, env)
                runs[name].append((*full, *single))
    # best of the rounds: the least disturbed long run less the least disturbed short one
    wall = {k: (n - 1) / (min(r[0] for r in v) - min(r[2] for r in v)) for k, v in runs.items()}
    cpu = {k: (n - 1) / (min(r[1] for r in v) - min(r[3] for r in v)) for k, v in runs.items()}
    print(f"load average (1 min): {load_before:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} cores")
    print(
        f"{len(files)} images x {a.copies} vs 1, {a.rounds} rounds interleaved, each command in a clean process "
        f"pinned to core {a.core}; marginal images/second, best of {a.rounds}, by wall clock and by CPU time "
        f"(CPU time leaves out the waits for a shared core; each round's wall-clock rate in brackets):"
    )
    for k, v in runs.items():
        rounds = " ".join(f"{(n - 1) / (r[0] - r[2]):5.1f}" for r in v)
        print(f"  {k:32s} wall {wall[k]:6.1f}  cpu {cpu[k]:6.1f} img/s  ({rounds})")
    for who in (BAR, "lookalike fingerprint() loop"):
        for clock, rate in (("wall", wall), ("cpu", cpu)):
            print(
                f"{who} [{clock}]: {rate[who] / rate[FLOOR]:.2f}x {FLOOR} (bar >= 0.8), "
                f"{rate[who] / rate[PEER]:.2f}x {PEER} (bar >= 5)"
            )


if __name__ == "__main__":
    main()
