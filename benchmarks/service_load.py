#!/usr/bin/env python3
"""A bounded load test of `lookalike serve` from a second process on loopback.

    python benchmarks/service_load.py --db /tmp/load.sqlite [--images 10000] [--workers 2]
    python benchmarks/service_load.py --db postgresql://postgres@127.0.0.1:5432/load

1. Seeds tenant ``load`` with --images pictures (generated, 320x240, fingerprinted with local
   features in --jobs processes and added through ``Index.add_analyses``, as a bulk import
   would), unless the database holds them already.
2. Starts ``lookalike serve --workers N`` on a free loopback port.
3. --clients keep-alive connections send ~1000-px JPEGs to ``POST /v1/check`` for --seconds
   (half are edited copies of stored pictures, half are pictures the tenant does not have),
   then hashes to ``POST /v1/check/hash`` (half known SHA-256s, half pHashes).
   The client is a minimal asyncio HTTP/1.1 client so that it costs the shared CPU little.
With ``--wrk``, the hash checks are driven by wrk (a C load generator, Debian ``wrk``; a Python
client costs about 1 ms of CPU a request and caps a 2-core test near 500 requests/s) with
``--hash-clients`` connections over two threads, through a Lua script that cycles through the same
bodies; its answers per second and latency percentiles are printed in the same form.
Prints answers per second, median and p99 latency, and status counts; asserts nothing. On a
shared machine read them with the CPU figures printed beside them: CPU per answer of the
server's processes, of PostgreSQL's (when it runs on this machine) and of this client; the cores
the server got; and the cores the whole machine was busy with (other processes included).
``--only check|hash`` drives one endpoint.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import json
import os
import random
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

TENANT = "load"


def picture(seed: int, width: int, height: int) -> Image.Image:
    """A photo-like picture (the tests' generator): gradients, shapes, noise."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.images import photo

    return photo(width, height, seed=seed)


def jpeg(im: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _analyse(seed: int) -> object:
    from lookalike.fingerprints import analyse

    return analyse(jpeg(picture(seed, 320, 240)), name=f"seed-{seed}", local=True)


def seed_images(db: str, n: int, jobs: int) -> None:
    from lookalike.index import Index

    with Index(db) as index:
        have = index.stats().images
        if have >= n:
            print(f"database holds {have} images already")
            return
        start = time.perf_counter()
        with ProcessPoolExecutor(jobs) as pool:
            batch = []
            for analysis in pool.map(_analyse, range(have, n), chunksize=32):
                batch.append((analysis, ""))
                if len(batch) == 256:
                    index.add_analyses(batch, scope=TENANT)  # type: ignore[arg-type]
                    batch.clear()
            if batch:
                index.add_analyses(batch, scope=TENANT)  # type: ignore[arg-type]
        print(f"seeded {n - have} images in {time.perf_counter() - start:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def multipart(data: bytes) -> tuple[bytes, str]:
    boundary = "lookalikeload" + hashlib.sha1(data).hexdigest()[:12]
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="q.jpg"\r\n'
    head += "Content-Type: image/jpeg\r\n\r\n"
    return head.encode() + data + f"\r\n--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def request(path: str, key: str, body: bytes, content_type: str) -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body


async def one_client(port: int, requests: list[bytes], until: float, lat: list[float], codes: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = random.randrange(len(requests))
    while time.perf_counter() < until:
        i = (i + 1) % len(requests)
        start = time.perf_counter()
        writer.write(requests[i])
        await writer.drain()
        status_line = await reader.readline()
        length = 0
        while True:
            line = await reader.readline()
            if line in (b"\r\n", b""):
                break
            name, _, value = line.decode("latin-1").partition(":")
            if name.lower() == "content-length":
                length = int(value)
        await reader.readexactly(length)
        lat.append(time.perf_counter() - start)
        code = int(status_line.split()[1])
        codes[code] = codes.get(code, 0) + 1
    writer.close()


async def run_load(
    port: int, requests: list[bytes], clients: int, seconds: float
) -> tuple[list[float], dict[int, int]]:
    lat: list[float] = []
    codes: dict[int, int] = {}
    until = time.perf_counter() + seconds
    await asyncio.gather(*(one_client(port, requests, until, lat, codes) for _ in range(clients)))
    return lat, codes


def cpu_seconds(root: int) -> float:
    """CPU time (user + system) spent so far by process ``root`` and its descendants (Linux /proc).
    On a shared machine, CPU per answer says more than answers per second."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        pid = int(stat.parent.name)
        parents[pid] = int(fields[1])
        times[pid] = (int(fields[11]) + int(fields[12])) / tick
    family, total = {root}, 0.0
    for pid in sorted(parents):  # children have larger pids than their parents here, mostly
        if pid in family or parents[pid] in family:
            family.add(pid)
            total += times[pid]
    return total


def machine_busy_s() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot (/proc/stat), to tell how much of
    it a run had: other processes on a shared machine show up as busy time the server did not use."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def postmaster_pid(db: str) -> int | None:
    """The PostgreSQL server's main process when it runs on this machine (its backends are its
    children), else None."""
    if not db.startswith(("postgresql://", "postgres://")):
        return None
    import psycopg

    with psycopg.connect(db) as conn:
        backend = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert backend is not None
        try:
            return int(Path(f"/proc/{backend[0]}/stat").read_text().rpartition(")")[2].split()[1])
        except OSError:
            return None  # not on this machine


class Meter:
    """CPU used by the server's processes, the database server's (PostgreSQL on this machine),
    this client, and the whole machine over one measured run."""

    def __init__(self, server_pid: int, db_pid: int | None) -> None:
        self.pids = (server_pid, db_pid)
        self.start = self._now()

    def _now(self) -> tuple[float, ...]:
        server_pid, db_pid = self.pids
        busy, total = machine_busy_s()
        client = os.times()
        db = cpu_seconds(db_pid) if db_pid is not None else 0.0
        return cpu_seconds(server_pid), db, client.user + client.system, busy, total

    def read(self) -> tuple[float, ...]:
        """(server, database, client, machine busy, machine available) CPU seconds since the start."""
        return tuple(b - a for a, b in zip(self.start, self._now()))


def report(name: str, lat: list[float], codes: dict[int, int], seconds: float, meter: Meter) -> dict[str, object]:
    arr = np.asarray(lat) * 1000
    server_cpu_s, db_cpu_s, client_cpu_s, busy_s, total_s = meter.read()
    per_answer = 1000 / max(1, len(lat))
    out = {
        "endpoint": name, "answers_per_s": round(len(lat) / seconds, 1), "median_ms": round(float(np.median(arr)), 1),
        "p99_ms": round(float(np.percentile(arr, 99)), 1), "statuses": codes, "answers": len(lat),
        "cpu_ms_per_answer": {
            "server": round(server_cpu_s * per_answer, 2), "database": round(db_cpu_s * per_answer, 2),
            "client": round(client_cpu_s * per_answer, 2),
        },
        "server_cores": round(server_cpu_s / seconds, 2), "machine_busy_cores": round(busy_s / seconds, 2),
        "machine_cores": round(total_s / seconds, 2),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    print(json.dumps(out))
    return out


WRK_SCRIPT = """
local bodies = {%s}
local i = 0
request = function()
  i = i %% #bodies + 1
  return wrk.format("POST", "/v1/check/hash", {
    ["Authorization"] = "Bearer %s", ["Content-Type"] = "application/json"}, bodies[i])
end
done = function(summary, latency, requests)
  io.write(string.format("WRKJSON {\\"requests\\": %%d, \\"errors_status\\": %%d, \\"errors_other\\": %%d, ",
    summary.requests, summary.errors.status, summary.errors.connect + summary.errors.read
    + summary.errors.write + summary.errors.timeout))
  io.write(string.format("\\"p50_ms\\": %%.2f, \\"p99_ms\\": %%.2f, \\"max_ms\\": %%.2f}\\n",
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000))
end
"""


def run_wrk(port: int, key: str, bodies: list[str], clients: int, seconds: float, meter: Meter) -> dict[str, object]:
    """Hash checks driven by wrk; the same report as the Python client's."""
    exe = shutil.which("wrk")
    if exe is None:
        raise SystemExit("--wrk needs wrk (Debian: apt-get install -y wrk)")
    lua_bodies = ", ".join("[[" + b + "]]" for b in bodies)
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as fh:
        fh.write(WRK_SCRIPT % (lua_bodies, key))
    try:
        out = subprocess.run(
            [exe, "-t2", f"-c{clients}", f"-d{seconds:g}s", "-s", fh.name, f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(fh.name)
    found = re.search(r"WRKJSON (\{.*\})", out)
    if found is None:
        raise SystemExit(f"wrk said: {out}")
    stats = json.loads(found.group(1))
    server_cpu_s, db_cpu_s, _, busy_s, total_s = meter.read()
    per_answer = 1000 / max(1, stats["requests"])
    result = {
        "endpoint": "/v1/check/hash (wrk)", "answers_per_s": round(stats["requests"] / seconds, 1),
        "median_ms": stats["p50_ms"], "p99_ms": stats["p99_ms"], "max_ms": stats["max_ms"],
        "non_2xx": stats["errors_status"], "socket_errors": stats["errors_other"], "answers": stats["requests"],
        "cpu_ms_per_answer": {
            "server": round(server_cpu_s * per_answer, 2), "database": round(db_cpu_s * per_answer, 2)
        },
        "server_cores": round(server_cpu_s / seconds, 2), "machine_busy_cores": round(busy_s / seconds, 2),
        "machine_cores": round(total_s / seconds, 2), "load_average_1min": round(os.getloadavg()[0], 2),
    }  # fmt: skip
    print(json.dumps(result))
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--images", type=int, default=10_000)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--hash-clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--warm-seconds", type=float, default=5.0, help="checks sent before measuring")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--only", choices=["check", "hash"], help="drive one endpoint only")
    ap.add_argument("--wrk", action="store_true", help="drive the hash checks with wrk (a C load generator)")
    args = ap.parse_args()

    seed_images(args.db, args.images, args.jobs)
    exe = str(Path(sys.executable).with_name("lookalike"))
    key = subprocess.run(
        [exe, "keys", "create", "--tenant", TENANT, "--db", args.db], check=True, capture_output=True, text=True
    ).stdout.strip()
    rng = random.Random(1)
    known = rng.sample(range(args.images), 16)
    queries = [jpeg(picture(s, 320, 240).resize((1000, 750), Image.Resampling.BICUBIC), 85) for s in known]
    queries += [jpeg(picture(10_000_000 + s, 1000, 750), 85) for s in range(16)]
    check_requests = [request("/v1/check", key, *multipart(q)) for q in queries]
    hash_bodies = [json.dumps({"sha256": hashlib.sha256(jpeg(picture(s, 320, 240))).hexdigest()}) for s in known]
    from lookalike.fingerprints import fingerprint_bytes

    hash_bodies += [json.dumps({"phash": f"{fingerprint_bytes(q).phash:016x}"}) for q in queries]
    hash_requests = [request("/v1/check/hash", key, b.encode(), "application/json") for b in hash_bodies]

    port = free_port()
    db_pid = postmaster_pid(args.db)
    with tempfile.TemporaryDirectory() as storage:
        server = subprocess.Popen(
            # a capacity test: the per-key rate limit (50/s by default) is lifted, or it would answer the load
            [exe, "serve", "--db", args.db, "--storage", storage, "--port", str(port), "--workers", str(args.workers),
             "--rate", "1000000", "--burst", "1000000"],  # fmt: skip
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            import httpx

            deadline = time.time() + 120
            while True:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.time() > deadline or server.poll() is not None:
                    raise SystemExit(f"server did not start: {server.stderr.read() if server.stderr else ''}")
                time.sleep(0.5)
            if args.only != "hash":
                # warm every worker (and its decoding processes, which start in the background)
                asyncio.run(run_load(port, check_requests, args.clients, args.warm_seconds))
                meter = Meter(server.pid, db_pid)
                lat, codes = asyncio.run(run_load(port, check_requests, args.clients, args.seconds))
                report("/v1/check", lat, codes, args.seconds, meter)
            if args.only != "check":
                asyncio.run(run_load(port, hash_requests, args.hash_clients, 2.0))
                meter = Meter(server.pid, db_pid)
                if args.wrk:
                    run_wrk(port, key, hash_bodies, args.hash_clients, args.seconds, meter)
                else:
                    lat, codes = asyncio.run(run_load(port, hash_requests, args.hash_clients, args.seconds))
                    report("/v1/check/hash", lat, codes, args.seconds, meter)
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
