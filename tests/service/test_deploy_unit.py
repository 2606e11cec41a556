"""The shipped systemd unit (``deploy/lookalike.service``) runs the service as written: started under
the unit's file-system constraints (the whole file system read-only but its state folder, read-only
``/tmp`` and ``/var/tmp``, a read-only working folder) with its ``TMPDIR`` and descriptor limit, two
workers take a 36 MB upload. Needs root (a mount namespace, ``unshare -m``); no systemd runs here,
so the constraints are made with bind mounts, as ``ProtectSystem=strict`` makes them."""

from __future__ import annotations

import io
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.index.conftest import cli_command, cli_env
from tests.service.conftest import body, free_port

UNIT = Path(__file__).resolve().parents[2] / "deploy" / "lookalike.service"
STATE = "/var/lib/lookalike"

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root: a mount namespace with read-only bind mounts"),
    pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux)"),
]


def unit_settings() -> dict[str, list[str]]:
    """The unit's ``[Service]`` settings, continuation lines joined."""
    text = UNIT.read_text().replace("\\\n", " ")
    out: dict[str, list[str]] = {}
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "[")) and "=" in line:
            name, value = line.split("=", 1)
            out.setdefault(name, []).append(value)
    return out


def noise_png(megabytes: int) -> bytes:
    side = int((megabytes * 1_000_000 / 3) ** 0.5)
    pixels = np.random.default_rng(1).integers(0, 256, (side, side, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "PNG", compress_level=1)
    return buf.getvalue()


def test_the_unit_as_shipped_runs_the_service_with_a_read_only_system(tmp_path: Path) -> None:
    unit = unit_settings()
    assert unit["PrivateTmp"] == ["yes"] and unit["ProtectSystem"] == ["strict"]
    state, work = tmp_path / "state", tmp_path / "work"
    for name in unit["StateDirectory"][0].split():  # what systemd creates before starting the service
        (state / name.removeprefix("lookalike").lstrip("/")).mkdir(parents=True, exist_ok=True)
    work.mkdir()
    env = dict(e.split("=", 1) for e in unit["Environment"])
    tmpdir = env["TMPDIR"].replace(STATE, str(state))
    port = free_port()
    args = shlex.split(unit["ExecStart"][0])[1:]  # after the program: `serve` and its options
    args = [a.replace(STATE, str(state)) for a in args]
    args[args.index("--db") + 1] = str(state / "lookalike.sqlite")  # SQLite here: no PostgreSQL needed
    args[args.index("--port") + 1] = str(port)
    serve = shlex.join([*cli_command(), *args])
    read_only = " ".join(shlex.quote(p) for p in ("/tmp", "/var/tmp", str(work)))
    script = f"""
set -e
mount --make-rprivate /
for d in {read_only}; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done
mount --bind {shlex.quote(str(state))} {shlex.quote(str(state))}
mount -o remount,bind,rw {shlex.quote(str(state))}
touch /tmp/lookalike-probe 2>/dev/null && {{ echo "/tmp is writable"; exit 3; }}
cd {shlex.quote(str(work))}
# the unit's limit, or this container's hard limit when that is lower (20,000 here)
ulimit -n {unit["LimitNOFILE"][0]} 2>/dev/null || ulimit -Sn "$(ulimit -Hn)"
export TMPDIR={shlex.quote(tmpdir)}
exec {serve}
"""
    log = tmp_path / "serve.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            ["unshare", "-m", "sh", "-c", script], env=cli_env(), stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, url, log)
        key = subprocess.run(
            [*cli_command(), "keys", "create", "--tenant", "acme", "--db", str(state / "lookalike.sqlite")],
            env=cli_env(), capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
        data = noise_png(36)
        assert len(data) > 36_000_000
        r = httpx.post(
            url + "/v1/images", headers={"Authorization": f"Bearer {key}"}, files={"file": ("big.png", data)},
            timeout=300,
        )  # fmt: skip
        assert r.status_code == 201, (r.status_code, r.text[:300], log.read_text(errors="replace")[-2000:])
        image_id = body(r)["image"]["id"]
        got = httpx.get(url + f"/v1/images/{image_id}/file", headers={"Authorization": f"Bearer {key}"}, timeout=60)
        assert got.content == data
        assert not list(work.iterdir())  # nothing was written to the read-only working folder
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)


def test_serve_refuses_to_start_without_a_writable_temporary_folder(tmp_path: Path) -> None:
    """A unit without PrivateTmp or TMPDIR: told at start, not by a misleading 400 at the first upload."""
    state, work = tmp_path / "state", tmp_path / "work"
    state.mkdir()
    work.mkdir()
    serve = shlex.join([*cli_command(), "serve", "--db", str(state / "db.sqlite"), "--storage", str(state / "files"),
                        "--port", str(free_port())])  # fmt: skip
    script = f"""
set -e
mount --make-rprivate /
for d in /tmp /var/tmp {shlex.quote(str(work))}; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done
mount --bind {shlex.quote(str(state))} {shlex.quote(str(state))}
mount -o remount,bind,rw {shlex.quote(str(state))}
cd {shlex.quote(str(work))}
unset TMPDIR TEMP TMP
exec {serve}
"""
    done = subprocess.run(["unshare", "-m", "sh", "-c", script], env=cli_env(), capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "no writable temporary folder" in done.stderr and "Traceback" not in done.stderr


def _wait_until_up(proc: subprocess.Popen[bytes], url: str, log: Path, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the service exited ({proc.returncode}): {log.read_text(errors='replace')}")
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"the service did not come up: {log.read_text(errors='replace')}")
