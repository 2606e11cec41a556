"""A run killed with SIGKILL leaves no process behind: its workers notice and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.images import encode, photo

#: the bar: no process of a killed run is left this long after the kill
_GONE_WITHIN_S = 5.0


def live_session_members(sid: int) -> list[tuple[int, str]]:
    """(pid, state) of every live process in session ``sid``, read from /proc. Zombies are left out:
    a dead process waiting for its (new) parent to reap it runs nothing and holds nothing."""
    found: list[tuple[int, str]] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # ended meanwhile
        # pid (comm) state ppid pgrp session ...: comm may hold spaces and parentheses
        fields = text[text.rindex(")") + 2 :].split()
        state, session = fields[0], int(fields[3])
        if session == sid and state != "Z":
            found.append((int(entry), state))
    return found


@pytest.fixture(scope="module")
def many_pictures(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """400 small real photos, different enough that each is fingerprinted and matched for real."""
    folder = tmp_path_factory.mktemp("many")
    for i in range(400):
        (folder / f"p{i:03d}.jpg").write_bytes(encode(photo(320, 240, seed=1000 + i), "JPEG", quality=90))
    return folder


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process table from /proc")
@pytest.mark.parametrize("command", ["index", "find", "check"])
def test_kill_9_leaves_no_worker_behind(
    command: str, many_pictures: Path, tmp_path: Path, lookalike_script: Path
) -> None:
    db = tmp_path / "kill.db"
    if command == "check":  # check needs an index to check against
        subprocess.run(
            [str(lookalike_script), "index", str(many_pictures / "p000.jpg"), "--db", str(db), "--jobs", "1"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    started = time.monotonic()
    proc = subprocess.Popen(
        [str(lookalike_script), command, str(many_pictures), "--db", str(db), "--jobs", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        while len(live_session_members(proc.pid)) < 3:  # the command and its two workers
            assert proc.poll() is None, f"{command} ended before it had started its workers"
            assert time.monotonic() - started < 60, f"{command} started no workers within a minute"
            time.sleep(0.05)
        time.sleep(max(0.0, 2.0 - (time.monotonic() - started)))  # two seconds into the work
        assert proc.poll() is None, f"{command} finished within two seconds: nothing left to kill"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        left = live_session_members(proc.pid)
        while left and time.monotonic() - killed < _GONE_WITHIN_S:
            time.sleep(0.1)
            left = live_session_members(proc.pid)
        assert not left, f"{len(left)} processes of the killed `lookalike {command}` still run: {left}"
    finally:
        for pid, _ in live_session_members(proc.pid):  # whatever this test started, never anything else
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


_POOL_IN_A_THREAD = """
import sys, threading, time
from lookalike.processes import worker_pool

def work():
    pool = worker_pool(2)  # made outside the main thread: no parent-death signal, the watch alone
    for _ in range(2):
        pool.submit(time.sleep, 600)
    time.sleep(600)

threading.Thread(target=work, daemon=True).start()
time.sleep(600)
"""


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads the process table from /proc")
def test_workers_of_a_pool_made_in_a_thread_stop_with_their_parent(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _POOL_IN_A_THREAD], start_new_session=True)
    try:
        started = time.monotonic()
        while len(live_session_members(proc.pid)) < 3:
            assert proc.poll() is None and time.monotonic() - started < 60, "the pool never started"
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        killed = time.monotonic()
        while live_session_members(proc.pid) and time.monotonic() - killed < _GONE_WITHIN_S:
            time.sleep(0.1)
        assert not live_session_members(proc.pid)
    finally:
        for pid, _ in live_session_members(proc.pid):
            os.kill(pid, signal.SIGKILL)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
