#!/usr/bin/env python3
"""The benchmark protocol end to end over HTTP: does the service judge like the command line?

    python ../shared/bench/make_bench.py ../shared/bench/corpus /tmp/bench
    python benchmarks/service_eval.py /tmp/bench [--db URL] [--workers 2] [--limit N] [--cli] [--learned]

Starts ``lookalike serve`` on loopback, uploads every reference through
``POST /v1/images`` (id ``ref-N``, mapped back to the file name in the answers, since
file names may hold characters an id may not; ``on_duplicate=store`` so that references
that look alike are all kept, as ``lookalike index`` keeps them), then sends every
query to ``POST /v1/check`` from --clients threads, and writes the answers as
``lookalike check --json`` lines for ``../shared/bench/score.py --format check``.
With --cli, also runs ``lookalike index`` + ``lookalike check --json`` on the same
files and scores both. With --learned, the service runs ``serve --learned`` and the command line
``index --learned`` + ``check --learned``. Prints the scores; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

SCORE = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "score.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def score(bench: Path, predictions: Path) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, str(SCORE), str(bench), str(predictions), "--format", "check", "--json"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, object] = json.loads(out.stdout)
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench", type=Path)
    ap.add_argument("--db", default="")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--limit", type=int, default=0, help="only the first N queries (all references)")
    ap.add_argument("--cli", action="store_true", help="also score `lookalike index` + `lookalike check`")
    ap.add_argument("--learned", action="store_true", help="with the learned tier (serve/index/check --learned)")
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("lookalike"))
    references = sorted(p for p in (args.bench / "references").iterdir() if p.is_file())
    queries = sorted(p for p in (args.bench / "queries").iterdir() if p.is_file())
    if args.limit:
        queries = queries[: args.limit]
    tier = ["--learned"] if args.learned else []

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        db = args.db or str(tmp / "service.sqlite")
        key = subprocess.run(
            [exe, "keys", "create", "--tenant", "bench", "--db", db], check=True, capture_output=True, text=True
        ).stdout.strip()
        headers = {"Authorization": f"Bearer {key}"}
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [exe, "serve", "--db", db, "--storage", str(tmp / "files"), "--port", str(port),
             "--workers", str(args.workers), *tier],
            stdout=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            for _ in range(240):
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.5)
            client = httpx.Client(timeout=300, limits=httpx.Limits(max_connections=args.clients))

            id_of = {p: f"ref-{i}" for i, p in enumerate(references)}
            name_of = {i: p.name for p, i in id_of.items()}

            def upload(p: Path) -> int:
                r = client.post(
                    url + "/v1/images", headers=headers, files={"file": (p.name, p.read_bytes())},
                    data={"id": id_of[p], "on_duplicate": "store"},
                )  # fmt: skip
                return r.status_code

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                statuses = list(pool.map(upload, references))
            indexed_s = time.perf_counter() - start
            print(f"uploaded {len(references)} references in {indexed_s:.0f} s: "
                  f"{ {s: statuses.count(s) for s in set(statuses)} }")  # fmt: skip

            def check(p: Path) -> str:
                r = client.post(url + "/v1/check", headers=headers, files={"file": (p.name, p.read_bytes())})
                if r.status_code != 200:
                    return json.dumps({"path": str(p), "error": r.json().get("error")})
                answer = r.json()
                matches = [
                    {"path": name_of[m["id"]], "score": m["score"], "verdict": m["verdict"]} for m in answer["matches"]
                ]
                return json.dumps({"path": str(p), "verdict": answer["verdict"], "matches": matches})

            start = time.perf_counter()
            with ThreadPoolExecutor(args.clients) as pool:
                lines = list(pool.map(check, queries))
            checked_s = time.perf_counter() - start
            print(f"checked {len(queries)} queries in {checked_s:.0f} s ({len(queries) / checked_s:.1f}/s)")
        finally:
            server.terminate()
            server.wait(timeout=30)
        service_preds = tmp / "service.jsonl"
        service_preds.write_text("\n".join(lines) + "\n")
        scores = {"service": score(args.bench, service_preds)}
        if args.cli:
            cli_db = tmp / "cli.sqlite"
            subprocess.run([exe, "index", str(args.bench / "references"), "--db", str(cli_db), *tier], check=True,
                           stdout=subprocess.DEVNULL)  # fmt: skip
            cli_preds = tmp / "cli.jsonl"
            with cli_preds.open("w") as out:
                subprocess.run([exe, "check", *map(str, queries), "--db", str(cli_db), "--json", *tier], stdout=out,
                               check=False)  # fmt: skip
            scores["cli"] = score(args.bench, cli_preds)
        keys = ("uAP", "recall@P90", "recall@P99", "verdict_precision", "verdict_recall")
        for name, s in scores.items():
            print(name, json.dumps({k: s.get(k) for k in keys}))


if __name__ == "__main__":
    main()
