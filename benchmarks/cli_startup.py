#!/usr/bin/env python3
"""Start-up of the command line against Typer and Rich alone, measured in the same run.

    python benchmarks/cli_startup.py [--runs 15]

Each contender runs in a fresh process, interleaved round by round so that a busy machine slows
them alike; the best of ``--runs`` is kept (the least disturbed run):

* ``python -c "import typer, rich"``      the floor any Typer + Rich command pays
* ``python -m lookalike --help``          the bar: at most 2x the floor
* ``python -m lookalike review decide --help`` and ``python -m lookalike --version``

Prints milliseconds and ratios; asserts nothing. ``-X importtime`` shows where the time goes.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

CONTENDERS = {
    "import typer, rich": ["-c", "import typer, rich"],
    "lookalike --help": ["-m", "lookalike", "--help"],
    "lookalike review decide --help": ["-m", "lookalike", "review", "decide", "--help"],
    "lookalike --version": ["-m", "lookalike", "--version"],
}


def _once(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    opts = parser.parse_args()
    src = Path(__file__).resolve().parents[1] / "src"
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(src), os.environ.get("PYTHONPATH", "")]), COLUMNS="100")
    for args in CONTENDERS.values():  # warm the file cache (and write .pyc files) before timing
        _once(args, env)
    best = {name: float("inf") for name in CONTENDERS}
    for _ in range(opts.runs):
        for name, args in CONTENDERS.items():
            best[name] = min(best[name], _once(args, env))
    floor = best["import typer, rich"]
    print(f"best of {opts.runs} runs, each in a fresh process ({sys.executable}):")
    for name, seconds in best.items():
        print(f"  {name:34s} {seconds * 1000:7.1f} ms  {seconds / floor:5.2f}x typer+rich")
    print(f"bar: lookalike --help <= 2x typer+rich: {best['lookalike --help'] / floor:.2f}x")


if __name__ == "__main__":
    main()
