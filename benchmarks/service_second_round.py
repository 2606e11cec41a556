#!/usr/bin/env python3
"""Issue 26's hostile requests against a real `lookalike serve`: scan bombs, unread downloads, thin
pictures and half-sent requests.

    python benchmarks/service_second_round.py [--scenario NAME ...] [--workers 2]

Each scenario starts its own `lookalike serve` (SQLite, a temporary folder) and prints one JSON line:

- ``scan-bomb``: two 1.1 MB progressive JPEGs (7000 x 7000 grey, one AC scan repeated 12,000 times)
  sent to ``POST /v1/check`` at once by one tenant, and, 0.5 s later, another tenant's ordinary
  picture check (bars: each bomb answered 4xx within 10 s, the other check within 5 s);
- ``downloads``: a 34 MB PNG stored, then 60 connections ask for ``GET /v1/images/ID/file`` and
  never read; the growth of the server's resident memory (all its processes) while they hang
  (bar: <= 300 MB);
- ``thin``: 2000 x 2, 350 x 1 and 1 x 5000 PNGs to ``POST /v1/images`` and ``POST /v1/check``
  (bar: no 5xx);
- ``slowloris``: with a 1,024-descriptor soft limit (``ulimit -Sn 1024``, one worker), 1,100
  connections from 127.0.0.1 send part of a request's headers and stop; then five clients on
  127.0.0.2 each open a new connection at the same moment and ask ``/healthz`` and a hash check
  (bar: each answered within 1 s).

Asserts nothing; the machine is shared, so the load average is printed beside the timings.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.images import encode, photo, scan_bomb  # noqa: E402 - the tests' picture generators

SCENARIOS = ("scan-bomb", "downloads", "thin", "slowloris")
EXE = str(Path(sys.executable).with_name("lookalike"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """A `lookalike serve` in a temporary folder, with a key per tenant."""

    def __init__(self, tmp: str, workers: int, extra: list[str], max_files: int | None = None) -> None:
        self.db = str(Path(tmp) / "round2.sqlite")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [EXE, "serve", "--db", self.db, "--storage", str(Path(tmp) / "files"), "--port", str(self.port)]
        cmd += ["--workers", str(workers), *extra]

        def limit() -> None:
            if max_files is not None:
                resource.setrlimit(resource.RLIMIT_NOFILE, (max_files, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))

        self.proc = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=limit
        )
        deadline = time.time() + 120
        while True:
            try:
                if httpx.get(self.url + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.time() > deadline or self.proc.poll() is not None:
                raise SystemExit("server did not start")
            time.sleep(0.3)
        time.sleep(3.0)  # the workers' decoding processes warm up in the background

    def key(self, tenant: str) -> dict[str, str]:
        key = subprocess.run(
            [EXE, "keys", "create", "--tenant", tenant, "--db", self.db], check=True, capture_output=True, text=True
        ).stdout.strip()
        return {"Authorization": f"Bearer {key}"}

    def rss_mb(self) -> float:
        """Resident memory of the server and every process below it, in MB."""
        total, todo = 0, [self.proc.pid]
        while todo:
            pid = todo.pop()
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
            out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True)
            todo.extend(int(p) for p in out.stdout.split())
        return total / 1e6

    def stop(self) -> None:
        os.killpg(self.proc.pid, signal.SIGTERM)
        self.proc.wait(timeout=30)


def timed(fn: Callable[[], httpx.Response]) -> tuple[int, float]:
    started = time.perf_counter()
    r = fn()
    return r.status_code, round(time.perf_counter() - started, 2)


def scan_bombs(server: Server) -> dict[str, object]:
    attacker, victim = server.key("attacker"), server.key("victim")
    picture = encode(photo(1000, 750, seed=5), "JPEG", quality=88)
    httpx.post(server.url + "/v1/images", headers=victim, files={"file": ("p.jpg", picture)}, timeout=60)
    bomb = scan_bomb()
    results: dict[str, tuple[int, float]] = {}

    def send(name: str, headers: dict[str, str], data: bytes) -> None:
        results[name] = timed(
            lambda: httpx.post(server.url + "/v1/check", headers=headers, files={"file": ("q.jpg", data)}, timeout=600)
        )

    threads = [threading.Thread(target=send, args=(f"bomb{i}", attacker, bomb)) for i in (1, 2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    send("other_tenant_check", victim, picture)
    for t in threads:
        t.join()
    return {"bomb_bytes": len(bomb), **{k: {"status": s, "seconds": t} for k, (s, t) in results.items()}}


def unread_downloads(server: Server, n: int = 60) -> dict[str, object]:
    headers = server.key("files")
    rng = np.random.default_rng(0)
    im = Image.fromarray(rng.integers(0, 256, (3400, 3400, 3), dtype=np.uint8), "RGB")
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=1)
    data = buf.getvalue()
    r = httpx.post(server.url + "/v1/images", headers=headers, files={"file": ("big.png", data)}, timeout=300)
    if r.status_code != 201:
        return {"upload_status": r.status_code, "body": r.text[:200]}
    image_id = r.json()["image"]["id"]
    time.sleep(2.0)
    before = server.rss_mb()
    request = f"GET /v1/images/{image_id}/file HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n\r\n"
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", server.port))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that reads nothing, slowly
        s.sendall(request.encode())
        socks.append(s)
    peak = before
    for _ in range(25):  # 5 s while the downloads hang
        time.sleep(0.2)
        peak = max(peak, server.rss_mb())
    one = socks[0].recv(4096)
    for s in socks:
        s.close()
    return {
        "file_mb": round(len(data) / 1e6, 1), "downloads": n, "first_answer": one.split(b"\r\n", 1)[0].decode(),
        "rss_before_mb": round(before, 1), "rss_peak_mb": round(peak, 1), "growth_mb": round(peak - before, 1),
    }  # fmt: skip


def thin_pictures(server: Server) -> dict[str, object]:
    headers = server.key("thin")
    out: dict[str, object] = {}
    for w, h in ((2000, 2), (350, 1), (1, 5000)):
        data = encode(photo(max(w, 64), max(h, 64), seed=w).resize((w, h)), "PNG")
        up = httpx.post(server.url + "/v1/images", headers=headers, files={"file": ("t.png", data)}, timeout=60)
        check = httpx.post(server.url + "/v1/check", headers=headers, files={"file": ("t.png", data)}, timeout=60)
        verdict = check.json().get("verdict") if check.status_code == 200 else None
        out[f"{w}x{h}"] = {"upload": up.status_code, "check": check.status_code, "check_verdict": verdict}
    return out


def slowloris(server: Server, n: int = 1_100) -> dict[str, object]:
    headers = server.key("others")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, n + 1024), hard))
    attack = []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", server.port))
            s.sendall(b"POST /v1/check/hash HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            attack.append(s)
        except OSError:
            s.close()
    time.sleep(1.0)
    answers: list[dict[str, object]] = []
    go = threading.Barrier(5)

    def other() -> None:
        with httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=30) as client:
            go.wait()
            started = time.perf_counter()
            try:
                health = client.get(server.url + "/healthz").status_code
                check = client.post(server.url + "/v1/check/hash", headers=headers, json={"sha256": "ab" * 32})
                answers.append({"healthz": health, "hash": check.status_code,
                                "seconds": round(time.perf_counter() - started, 3)})  # fmt: skip
            except httpx.HTTPError as exc:
                answers.append({"error": type(exc).__name__, "seconds": round(time.perf_counter() - started, 3)})

    threads = [threading.Thread(target=other) for _ in range(5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    open_fds = len(list(Path(f"/proc/{server.proc.pid}/fd").iterdir()))
    for s in attack:
        s.close()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    return {"half_sent": n, "server_fds_open": open_fds, "others": answers,
            "slowest_s": max(float(a["seconds"]) for a in answers)}  # type: ignore[arg-type]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", action="append", choices=SCENARIOS)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    for name in args.scenario or SCENARIOS:
        with tempfile.TemporaryDirectory() as tmp:
            if name == "slowloris":
                server = Server(tmp, 1, [], max_files=1024)
            else:
                server = Server(tmp, args.workers, [])
            try:
                run = {"scan-bomb": scan_bombs, "downloads": unread_downloads, "thin": thin_pictures,
                       "slowloris": slowloris}[name]  # fmt: skip
                out = {"scenario": name, **run(server), "load_average_1min": round(os.getloadavg()[0], 2)}
            finally:
                server.stop()
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
