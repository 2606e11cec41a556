#!/usr/bin/env python3
"""What hostile requests cost a real `lookalike serve`: time, and the server's peak memory growth.

    python benchmarks/service_hostile.py [--scenario NAME ...] [--workers 1] [--max-pixels N]

Starts `lookalike serve` (SQLite, a temporary folder, `--allow-url-host '127.0.0.1:*'`) and, for each
scenario, resets the peak resident memory of the server's processes (``/proc/PID/clear_refs``),
sends the requests and prints one JSON line: statuses, seconds, and how far each process's peak
(``VmHWM``) rose above its resident memory before the scenario. Scenarios (issue 15's bars):

- ``rgba-check`` / ``rgba-upload``: a one-colour 6000 x 6000 RGBA PNG (about 150 KB) to
  ``POST /v1/check`` / ``POST /v1/images`` (bar: answered in <= 5 s, peak growth <= 400 MB);
- ``gzip-bomb``: ``from-url`` of a body sent with ``Content-Encoding: gzip, gzip`` that inflates to
  1 GiB of zeros (bar: a 4xx, growth <= 100 MB);
- ``unauth-json``: a 50 MB JSON body without a key to ``POST /v1/check/hash`` (bar: 401 or 413,
  growth <= 50 MB);
- ``fairness``: one tenant sends four large transparent PNGs to ``/v1/check`` at once while another
  sends hash checks one after another (bar: the second tenant's p99 <= 100 ms); the hash checks'
  latency alone, for 3 s before, is printed beside it (``alone_*``);
- ``slow-fetch``: 40 ``from-url`` fetches hang on a slow local server while ``/healthz`` is asked
  every 50 ms (bar: every answer in <= 100 ms).

Asserts nothing; timings on a shared machine are noisy (the load average is printed beside them).
Needs root or the server's own user for ``clear_refs``.
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import io
import json
import os
import signal
import socket
import socketserver
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

SCENARIOS = ("rgba-check", "rgba-upload", "gzip-bomb", "unauth-json", "fairness", "slow-fetch")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def one_colour_rgba_png(side: int = 6000) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (side, side), (200, 30, 90, 128)).save(buf, "PNG", optimize=False)
    return buf.getvalue()


def transparent_png(seed: int, side: int = 4000) -> bytes:
    """A large transparent graphic: a few opaque stripes on a clear background."""
    a = np.zeros((side, side, 4), dtype=np.uint8)
    rng = np.random.default_rng(seed)
    for _ in range(8):
        y = int(rng.integers(0, side - 200))
        a[y : y + 150, :, :3] = rng.integers(0, 256, 3)
        a[y : y + 150, :, 3] = 255
    buf = io.BytesIO()
    Image.fromarray(a, "RGBA").save(buf, "PNG")
    return buf.getvalue()


def double_gzip_zeros(n_bytes: int = 1 << 30) -> bytes:
    """gzip(gzip(n zero bytes)), built in a streaming way (a few KB)."""
    inner = zlib.compressobj(9, zlib.DEFLATED, 31)
    chunk = bytes(1 << 20)
    parts = [inner.compress(chunk) for _ in range(n_bytes // len(chunk))]
    parts.append(inner.flush())
    return gzip.compress(b"".join(parts), 9)


class Peaks:
    """Peak resident memory of a process tree, reset per scenario (Linux /proc)."""

    def __init__(self, root: int) -> None:
        self.root = root

    def pids(self) -> list[int]:
        """The server and every process below it (workers, their decoding processes)."""
        tree, todo = [], [self.root]
        while todo:
            pid = todo.pop()
            tree.append(pid)
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
            todo.extend(int(p) for p in out.stdout.split())
        return [p for p in tree if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]

    @staticmethod
    def field(pid: int, name: str) -> int:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
        raise KeyError(name)

    def reset(self) -> dict[int, int]:
        before = {}
        for pid in self.pids():
            Path(f"/proc/{pid}/clear_refs").write_text("5")  # reset VmHWM to the current RSS
            before[pid] = self.field(pid, "VmRSS")
        return before

    def growth_mb(self, before: dict[int, int]) -> float:
        """The processes' peak growths added up (an upper bound: their peaks need not coincide);
        a request's decode grows its decoding process, its bytes the worker."""
        alive = [(pid, rss) for pid, rss in before.items() if Path(f"/proc/{pid}").exists()]
        return sum(max(0, self.field(pid, "VmHWM") - rss) / 1e6 for pid, rss in alive)


def key_for(exe: str, db: str, tenant: str) -> dict[str, str]:
    key = subprocess.run(
        [exe, "keys", "create", "--tenant", tenant, "--db", db], check=True, capture_output=True, text=True
    ).stdout.strip()
    return {"Authorization": f"Bearer {key}"}


class Bodies(http.server.BaseHTTPRequestHandler):
    """A local web server: ``/bomb`` (double gzip) and ``/slow`` (answers headers, then nothing)."""

    bomb = b""
    slow_s = 30.0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        if self.path == "/bomb":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Encoding", "gzip, gzip")
            self.send_header("Content-Length", str(len(self.bomb)))
            self.end_headers()
            self.wfile.write(self.bomb)
        elif self.path == "/slow":
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(b"\x89PNG")
            self.wfile.flush()
            time.sleep(self.slow_s)
        else:
            self.send_error(404)

    def log_message(self, *args: object) -> None:
        pass


class ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def run(name: str, url: str, peaks: Peaks, exe: str, db: str, web: str) -> dict[str, object]:
    a, b = key_for(exe, db, "tenant-a"), key_for(exe, db, "tenant-b")
    out: dict[str, object] = {"scenario": name}
    with httpx.Client(base_url=url, timeout=120) as client:
        if name in ("rgba-check", "rgba-upload"):
            data = one_colour_rgba_png()
            path = "/v1/check" if name == "rgba-check" else "/v1/images"
            before = peaks.reset()
            start = time.perf_counter()
            r = client.post(path, headers=a, files={"file": ("big.png", data, "image/png")})
            out |= {"bytes": len(data), "status": r.status_code, "seconds": round(time.perf_counter() - start, 2)}
            out["answer"] = r.json().get("error", {}).get("code", "ok") if r.status_code >= 400 else "ok"
        elif name == "gzip-bomb":
            before = peaks.reset()
            start = time.perf_counter()
            r = client.post("/v1/images/from-url", headers=a, json={"url": web + "/bomb"})
            out |= {"status": r.status_code, "seconds": round(time.perf_counter() - start, 2), "answer": r.text[:200]}
        elif name == "unauth-json":
            body = b'{"sha256": "' + b"0" * (50 * 1024 * 1024) + b'"}'
            before = peaks.reset()
            start = time.perf_counter()
            try:
                r = client.post("/v1/check/hash", content=body, headers={"Content-Type": "application/json"})
                out |= {"status": r.status_code, "answer": r.text[:200]}
            except httpx.HTTPError as exc:  # the server may answer and close before the body is sent
                out |= {"status": None, "client_error": type(exc).__name__}
            out["seconds"] = round(time.perf_counter() - start, 2)
        elif name == "fairness":
            pngs = [transparent_png(seed) for seed in range(4)]
            stop = threading.Event()
            lat: list[float] = []
            codes: dict[int, int] = {}

            def hash_checks() -> None:
                with httpx.Client(base_url=url, timeout=60) as c:
                    body = {"sha256": "ab" * 32, "phash": "0123456789abcdef"}
                    while not stop.is_set():
                        t = time.perf_counter()
                        r = c.post("/v1/check/hash", headers=b, json=body)
                        lat.append(time.perf_counter() - t)
                        codes[r.status_code] = codes.get(r.status_code, 0) + 1
                        time.sleep(0.01)

            def picture(data: bytes) -> int:
                with httpx.Client(base_url=url, timeout=120) as c:
                    return c.post("/v1/check", headers=a, files={"file": ("t.png", data, "image/png")}).status_code

            before = peaks.reset()
            watcher = threading.Thread(target=hash_checks)
            watcher.start()
            time.sleep(3.0)  # hash checks alone first: the machine's own noise, for comparison
            alone = np.asarray(lat) * 1000
            lat.clear()
            codes.clear()
            start = time.perf_counter()
            with ThreadPoolExecutor(4) as pool:
                statuses = list(pool.map(picture, pngs))
            heavy_s = time.perf_counter() - start
            stop.set()
            watcher.join()
            arr = np.asarray(lat) * 1000
            out |= {
                "picture_statuses": statuses, "pictures_seconds": round(heavy_s, 2), "hash_checks": len(lat),
                "hash_statuses": codes, "hash_median_ms": round(float(np.median(arr)), 1),
                "hash_p99_ms": round(float(np.percentile(arr, 99)), 1), "hash_max_ms": round(float(arr.max()), 1),
                "alone_hash_median_ms": round(float(np.median(alone)), 1),
                "alone_hash_p99_ms": round(float(np.percentile(alone, 99)), 1),
            }  # fmt: skip
        elif name == "slow-fetch":
            before = peaks.reset()
            statuses: list[int] = []

            def fetch() -> None:
                with httpx.Client(base_url=url, timeout=120) as c:
                    statuses.append(c.post("/v1/images/from-url", headers=a, json={"url": web + "/slow"}).status_code)

            threads = [threading.Thread(target=fetch) for _ in range(40)]
            for t in threads:
                t.start()
            time.sleep(1.0)
            lat = []
            for _ in range(40):
                t0 = time.perf_counter()
                client.get("/healthz")
                lat.append(time.perf_counter() - t0)
                time.sleep(0.05)
            arr = np.asarray(lat) * 1000
            out |= {"healthz_median_ms": round(float(np.median(arr)), 1), "healthz_max_ms": round(float(arr.max()), 1)}
            for t in threads:
                t.join()
            out["fetch_statuses"] = {s: statuses.count(s) for s in set(statuses)}
        else:
            raise SystemExit(f"unknown scenario {name}")
    out["peak_growth_mb"] = round(peaks.growth_mb(before), 1)
    out["load_average_1min"] = round(os.getloadavg()[0], 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", choices=SCENARIOS)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--extra", default="", help="more `lookalike serve` options, space-separated")
    args = ap.parse_args()
    exe = str(Path(sys.executable).with_name("lookalike"))
    Bodies.bomb = double_gzip_zeros() if "gzip-bomb" in (args.scenario or SCENARIOS) else b""
    web_server = ThreadingServer(("127.0.0.1", 0), Bodies)
    threading.Thread(target=web_server.serve_forever, daemon=True).start()
    web = f"http://127.0.0.1:{web_server.server_address[1]}"
    with tempfile.TemporaryDirectory() as tmp:
        db = str(Path(tmp) / "hostile.sqlite")
        port = free_port()
        cmd = [exe, "serve", "--db", db, "--storage", str(Path(tmp) / "files"), "--port", str(port)]
        cmd += ["--workers", str(args.workers), "--allow-url-host", "127.0.0.1:*", *args.extra.split()]
        server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.time() + 90
            while True:
                try:
                    if httpx.get(url + "/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit("server did not start")
                time.sleep(0.3)
            time.sleep(1.0 if args.workers > 1 else 0.0)
            peaks = Peaks(server.pid)
            for name in args.scenario or SCENARIOS:
                print(json.dumps(run(name, url, peaks, exe, db, web)), flush=True)
        finally:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)
            web_server.shutdown()


if __name__ == "__main__":
    main()
