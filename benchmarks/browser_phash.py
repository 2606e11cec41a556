"""How close the browser's pHash (``lookalike-precheck``'s worker, in Debian's headless Chromium) is to
the server's, over the public benchmark's originals.

    .venv/bin/python benchmarks/browser_phash.py [--corpus ../shared/bench/corpus] [--limit N]

Starts ``lookalike serve`` on loopback (the worker must come from an http://127.0.0.1 origin), hands
the files to a page through a file input, hashes each in the worker, and prints the distribution of
Hamming distances (bits) between browser and server hashes, overall and per format.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import httpx
from playwright.sync_api import sync_playwright

from lookalike.fingerprints import fingerprint

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
REPO = Path(__file__).resolve().parents[1]

HASH_ALL = """async (n) => {
  const { Precheck } = await import("/static/lookalike-precheck.js");
  const pc = new Precheck({ apiKey: "unused" });
  const files = document.getElementById("bench-files").files;
  const out = [];
  await Promise.all(Array.from(files, async (f, i) => {
    try { out[i] = (await pc.hashFile(f)).phash; } catch (e) { out[i] = null; }
  }));
  pc.close();
  return out;
}"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=REPO.parent / "shared" / "bench" / "corpus")
    parser.add_argument("--limit", type=int, default=0, help="only the first N originals (0: all)")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    manifest = json.loads((args.corpus / "manifest.json").read_text())
    paths = [args.corpus / o["path"] for o in manifest["originals"]]
    if args.limit:
        paths = paths[: args.limit]

    with tempfile.TemporaryDirectory() as tmp, socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        proc = subprocess.Popen(
            [sys.executable, "-m", "lookalike", "serve", "--db", f"{tmp}/db.sqlite", "--storage", f"{tmp}/files",
             "--port", str(port), "--log-level", "warning"],
            start_new_session=True,
        )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(300):
                try:
                    if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            started = time.perf_counter()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
                page = browser.new_page()
                page.goto(url + "/")
                page.evaluate(
                    "() => { const i = document.createElement('input'); i.type = 'file'; i.multiple = true;"
                    " i.id = 'bench-files'; document.body.append(i); }"
                )
                page.set_input_files("#bench-files", [str(p) for p in paths])
                browser_hashes = page.evaluate(HASH_ALL, len(paths))
                browser.close()
            browser_s = time.perf_counter() - started
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait()

    distances: list[int] = []
    by_format: dict[str, list[int]] = {}
    undecoded = 0
    worst: list[tuple[int, str]] = []
    for path, got in zip(paths, browser_hashes, strict=True):
        if got is None:
            undecoded += 1
            continue
        d = (fingerprint(path).phash ^ int(got, 16)).bit_count()
        distances.append(d)
        worst.append((d, str(path.relative_to(args.corpus))))
        by_format.setdefault(path.suffix.lower(), []).append(d)
    distances.sort()
    n = len(distances)

    def share(limit: int, values: list[int]) -> float:
        return sum(1 for v in values if v <= limit) / len(values)

    summary = {
        "files": len(paths),
        "undecoded": undecoded,
        "exact": share(0, distances),
        "within_2": share(2, distances),
        "within_4": share(4, distances),
        "median_bits": distances[n // 2],
        "p95_bits": distances[min(n - 1, int(0.95 * n))],
        "max_bits": distances[-1],
        "histogram": dict(sorted(Counter(distances).items())),
        "per_format": {k: {"files": len(v), "within_4": share(4, v), "max_bits": max(v)} for k, v in by_format.items()},
        "worst": [f"{name}: {d} bits" for d, name in sorted(worst, reverse=True)[:5] if d > 0],
        "browser_seconds": round(browser_s, 1),
    }
    if args.json:
        print(json.dumps(summary))
        return
    print(f"{len(paths)} originals, {undecoded} not decodable in the browser; hashed in {browser_s:.1f} s")
    print(
        f"browser vs server pHash: exact {summary['exact']:.1%}, within 2 bits {summary['within_2']:.1%}, "
        f"within 4 bits {summary['within_4']:.1%}; median {summary['median_bits']}, p95 {summary['p95_bits']}, "
        f"max {summary['max_bits']} bits"
    )
    print("histogram (bits: files):", summary["histogram"])
    print("largest distances:", ", ".join(summary["worst"]) or "none")  # type: ignore[arg-type]
    for fmt, row in summary["per_format"].items():  # type: ignore[attr-defined]
        print(f"  {fmt}: {row['files']} files, within 4 bits {row['within_4']:.1%}, max {row['max_bits']} bits")


if __name__ == "__main__":
    main()
