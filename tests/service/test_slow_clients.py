"""Slow and half-sent requests cannot exhaust a real ``lookalike serve``: with the descriptor limit a
systemd unit gets by default (1,024), 1,100 connections from one address that never finish their
headers leave room for other clients, whose health and hash checks are answered; a connection whose
headers stall is closed at the header deadline."""

from __future__ import annotations

import resource
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import Served

ATTACKER, OTHER = "127.0.0.1", "127.0.0.2"
HALF_SENT = 1_100


@pytest.fixture
def many_files() -> Iterator[None]:
    """This test's process may open the attacker's 1,100 sockets (the hard limit allows it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = HALF_SENT + 512
    if hard != resource.RLIM_INFINITY and hard < want:
        pytest.skip(f"needs a hard descriptor limit of {want} (have {hard})")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, want), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def half_sent(port: int, n: int) -> list[socket.socket]:
    """``n`` connections from the attacker's address, each with a request line and part of a header."""
    out = []
    for _ in range(n):
        s = socket.socket()
        s.bind((ATTACKER, 0))
        s.settimeout(5)
        try:
            s.connect(("127.0.0.1", port))
            s.sendall(b"POST /v1/check/hash HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        except OSError:
            s.close()  # refused at once is fine: the server owes the attacker nothing
            continue
        out.append(s)
    return out


def other_clients(url: str, headers: dict[str, str], n: int) -> list[tuple[int, int]]:
    """``n`` clients from another address, all at once, each on a new connection: /healthz then a
    hash check; their statuses."""
    answers: list[tuple[int, int]] = []
    go = threading.Barrier(n)

    def one() -> None:
        with httpx.Client(transport=httpx.HTTPTransport(local_address=OTHER), timeout=30) as client:
            go.wait()
            health = client.get(url + "/healthz")
            check = client.post(url + "/v1/check/hash", headers=headers, json={"sha256": "ab" * 32})
            answers.append((health.status_code, check.status_code))

    threads = [threading.Thread(target=one) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return answers


def test_half_sent_requests_from_one_address_leave_room_for_others(
    serve: Callable[..., Served], tmp_path: Path, many_files: None
) -> None:
    server = serve(str(tmp_path / "slow.sqlite"), workers=1, max_files=1024)
    headers = server.key("acme")
    attack = half_sent(server.port, HALF_SENT)
    try:
        assert other_clients(server.url, headers, 5) == [(200, 200)] * 5
        # the server kept few of the attacker's connections: the rest it answered 503 and closed
        assert len(_served_connections(server.proc.pid)) < 300
    finally:
        for s in attack:
            s.close()


def test_headers_that_stall_are_answered_408_at_the_deadline(serve: Callable[..., Served], tmp_path: Path) -> None:
    server = serve(str(tmp_path / "stall.sqlite"), workers=1, extra=("--header-timeout", "1"))
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        answer = s.recv(4096)
        waited = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert waited < 25  # closed by the deadline, not by the client's own timeout
    # a connection that sends nothing at all is closed too; one that finishes its headers is answered
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as s:
        assert s.recv(4096).startswith(b"HTTP/1.1 408")
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_one_address_may_hold_only_its_share_of_connections(serve: Callable[..., Served], tmp_path: Path) -> None:
    server = serve(str(tmp_path / "cap.sqlite"), workers=1, extra=("--max-connections-per-client", "3"))
    held = half_sent(server.port, 3)
    try:
        with socket.create_connection(("127.0.0.1", server.port), source_address=(ATTACKER, 0), timeout=10) as s:
            assert s.recv(4096).startswith(b"HTTP/1.1 503")
        with httpx.Client(transport=httpx.HTTPTransport(local_address=OTHER)) as client:
            assert client.get(server.url + "/healthz").status_code == 200
    finally:
        for s in held:
            s.close()


def _served_connections(pid: int) -> list[str]:
    """The server's open sockets (its descriptors that are sockets)."""
    fds = Path(f"/proc/{pid}/fd")
    out = []
    for fd in fds.iterdir():
        try:
            target = str(fd.readlink())
        except OSError:
            continue
        if target.startswith("socket:"):
            out.append(target)
    return out
