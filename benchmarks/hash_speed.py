#!/usr/bin/env python3
"""Fingerprinting speed on camera-sized JPEGs, against two references measured
in the same run on the same core:

* imagehash.phash(Image.open(p))   (the peer: ≥ 5x is the bar)
* Pillow alone decoding at 1/8 scale (the floor: ≥ 0.8x is the bar)

    python ../shared/bench/make_photos.py ../shared/bench/corpus /tmp/p --n 40
    python benchmarks/hash_speed.py /tmp/p [--rounds 3]

lookalike is timed twice: the library call ``fingerprint(path)`` and the
command ``lookalike hash --jobs 1 --json DIR``. For the command, the rate is
the marginal one — (n - 1) images over the time a run over n images (the
folder three times over) takes beyond a run over one — because the references are timed in-process without
Python's start-up either; the raw end-to-end rate is printed too. The process
is pinned to one core so every contender gets the same.
Prints images per second and the ratios; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path


def _rate(files: list[Path], fn: Callable[[Path], object]) -> float:
    start = time.perf_counter()
    for f in files:
        fn(f)
    return len(files) / (time.perf_counter() - start)


def _pillow_eighth(p: Path) -> None:
    from PIL import Image

    with Image.open(p) as im:
        im.draft("RGB", (im.width // 8, im.height // 8))
        im.load()


def _cli_seconds(folder: Path) -> float:
    exe = Path(sys.executable).with_name("lookalike")
    start = time.perf_counter()
    subprocess.run(
        ["taskset", "-c", str(min(os.sched_getaffinity(0))), str(exe), "hash", "--jobs", "1", "--json", str(folder)],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder", type=Path)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    # Pin before NumPy/OpenBLAS start their thread pools, so they size them for one core.
    core = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {core})
    import imagehash

    from lookalike import fingerprint

    files = sorted(a.folder.glob("*.jpg"))
    if not files:
        sys.exit(f"no .jpg files in {a.folder}")
    contenders: dict[str, Callable[[Path], object]] = {
        "imagehash.phash": lambda p: imagehash.phash(imagehash.Image.open(p)),
        "Pillow 1/8 decode": _pillow_eighth,
        "lookalike fingerprint()": fingerprint,
    }
    for fn in contenders.values():  # warm caches and imports
        fn(files[0])
    rates: dict[str, list[float]] = {k: [] for k in contenders}
    cli = "lookalike hash --jobs 1 (CLI)"
    rates[cli] = []
    raw: list[float] = []
    # The command runs over the files three times (links with other names), so that the
    # noise of one process start-up weighs little against the work.
    with tempfile.TemporaryDirectory() as one, tempfile.TemporaryDirectory() as many:
        os.symlink(files[0].resolve(), Path(one) / files[0].name)
        for copy in range(3):
            for f in files:
                os.symlink(f.resolve(), Path(many) / f"{copy}_{f.name}")
        n = 3 * len(files)
        for _ in range(a.rounds):
            for name, fn in contenders.items():
                rates[name].append(_rate(files, fn))
            full, single = _cli_seconds(Path(many)), _cli_seconds(Path(one))
            rates[cli].append((n - 1) / (full - single))
            raw.append(n / full)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"{len(files)} images, {a.rounds} rounds, pinned to core {core}; median images/second:")
    for k, v in med.items():
        print(f"  {k:32s} {v:7.1f} img/s")
    print(f"  (CLI end to end, start-up included: {statistics.median(raw):.1f} img/s)")
    for who in ("lookalike fingerprint()", cli):
        print(
            f"{who}: {med[who] / med['imagehash.phash']:.2f}x imagehash.phash (bar >= 5), "
            f"{med[who] / med['Pillow 1/8 decode']:.2f}x Pillow 1/8 decode (bar >= 0.8)"
        )


if __name__ == "__main__":
    main()
