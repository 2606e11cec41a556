"""Memory of each worker of ``lookalike serve --workers N`` holding many stored codes.

    python benchmarks/serve_memory.py --n 1000000 --workers 2 [--before /work/main/src]

Fills an SQLite database with ``--n`` files (random pHash and PDQ, no local features: the pHash
index is what this measures; the crop tier is not in it), starts ``lookalike serve`` over it with
``--workers`` workers on loopback, waits until every worker answers and its memory stops growing,
and prints each worker's RSS, PSS (shared pages divided among the processes mapping them) and USS
(pages of its own) from /proc/PID/smaps_rollup. With ``--before SRC`` it first does the same with
the package found in SRC (an older checkout), so the two lines compare in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from lookalike.index.store.interface import open_store
from lookalike.index.store.records import DEFAULT_SCOPE


def make_db(path: Path, n: int) -> None:
    """``n`` files of random codes, in one scope, unless the file exists already."""
    if path.exists():
        return
    open_store(str(path)).close()  # the schema, as the package makes it
    rng = np.random.default_rng(0)
    con = sqlite3.connect(path)
    con.execute("INSERT OR IGNORE INTO scopes(pk, name) VALUES (1, ?)", (DEFAULT_SCOPE,))
    for start in range(0, n, 100_000):
        k = min(100_000, n - start)
        pks = range(start + 1, start + k + 1)
        phash = rng.integers(-(2**63), 2**63 - 1, k, dtype=np.int64).tolist()
        blobs = rng.integers(0, 256, (k, 64), dtype=np.uint8)
        con.executemany("INSERT INTO images(pk, scope_pk, image_id, created_at) VALUES (?, 1, ?, 0)",
                        [(pk, f"i{pk}") for pk in pks])  # fmt: skip
        con.executemany(
            "INSERT INTO files(pk, image_pk, scope_pk, sha256, phash, pdq, fingerprint, created_at)"
            " VALUES (?, ?, 1, ?, ?, ?, x'', 0)",
            [(pk, pk, bytes(b[:32]), h, bytes(b[32:])) for pk, h, b in zip(pks, phash, blobs)],
        )
        con.commit()
    con.close()


def _rollup(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]:
        name, value = line.split(":")
        fields[name] = int(value.split()[0]) * 1024
    return {"rss": fields["Rss"], "pss": fields["Pss"], "uss": fields["Private_Clean"] + fields["Private_Dirty"]}


def _workers(parent: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(parent)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split() if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text()]


def measure(src: str, db: Path, workers: int) -> list[dict[str, int]]:
    """Per worker memory of a ``lookalike serve`` running the package in ``src``, settled."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, PYTHONPATH=src)
    with tempfile.TemporaryDirectory() as storage:
        cmd = [sys.executable, "-m", "lookalike", "serve", "--db", str(db), "--storage", storage,
               "--workers", str(workers), "--port", str(port)]  # fmt: skip
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 900
            answered = 0
            while time.monotonic() < deadline and answered < 8 * workers:  # fresh connections spread
                try:
                    answered += httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=60).status_code == 200
                except httpx.HTTPError:
                    time.sleep(1)
            last: list[dict[str, int]] = []
            while time.monotonic() < deadline:
                now = [_rollup(p) for p in _workers(proc.pid)]
                if len(now) == workers and last and all(abs(a["rss"] - b["rss"]) < 2**20 for a, b in zip(now, last)):
                    return now
                last = now
                time.sleep(5)
            raise SystemExit("the workers did not settle in 15 minutes")
        finally:
            proc.terminate()
            proc.wait(30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--db", type=Path, default=None, help="database to fill (kept for the next run)")
    ap.add_argument("--before", default=None, help="src folder of an older checkout to compare with")
    args = ap.parse_args()
    db = args.db or Path(tempfile.gettempdir()) / f"lookalike-serve-memory-{args.n}.sqlite"
    make_db(db, args.n)
    runs = ([("before", args.before)] if args.before else []) + [
        ("this checkout", str(Path(__file__).parents[1] / "src"))
    ]
    out = {}
    for name, src in runs:
        per = measure(src, db, args.workers)
        out[name] = per
        for i, m in enumerate(per):
            print(f"{name}: worker {i}: RSS {m['rss'] / 2**20:.0f} MiB, PSS {m['pss'] / 2**20:.0f} MiB,"
                  f" USS {m['uss'] / 2**20:.0f} MiB ({args.n:,} stored codes)")  # fmt: skip
    print(json.dumps({"n": args.n, "workers": args.workers} | out))


if __name__ == "__main__":
    main()
