"""A real ``lookalike serve`` with two worker processes on loopback, on SQLite and PostgreSQL:
every worker sees a new image at once; concurrent copies store one image; a worker killed with
SIGKILL mid-upload loses nothing it acknowledged and leaves no row without its file."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from tests.cli.test_killed_runs import live_session_members
from tests.service.conftest import Served, body, edited, jpeg

Serve = Callable[..., Served]


def _upload(url: str, headers: dict[str, str], data: bytes, **fields: str) -> httpx.Response:
    """Upload as a well-behaved client does: a 429 (one tenant's queue is full) is tried again
    after the Retry-After the server sent."""
    for _ in range(60):
        with httpx.Client(timeout=120) as client:  # a connection of its own: uvicorn spreads them over workers
            answer = client.post(url + "/v1/images", headers=headers, files={"file": ("p.jpg", data)}, data=fields)
        if answer.status_code != 429:
            return answer
        time.sleep(min(5.0, float(answer.headers.get("Retry-After", "1"))))
    return answer


def _check(url: str, headers: dict[str, str], data: bytes) -> httpx.Response:
    with httpx.Client(timeout=120) as client:
        return client.post(url + "/v1/check", headers=headers, files={"file": ("q.jpg", data)})


def test_workers_see_each_others_images_and_copies_store_once(serve: Serve, db_url: str) -> None:
    server = serve(db_url, workers=2)
    alice = server.key("alice")
    first = _upload(server.url, alice, jpeg(1), id="beach")
    assert first.status_code == 201, first.text

    # fresh connections land on both workers: each must know the image right after the 201
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: _check(server.url, alice, edited(1, "smaller")), range(12)))
    assert [body(a)["verdict"] for a in answers] == ["near_duplicate"] * 12
    assert {body(a)["matches"][0]["id"] for a in answers} == {"beach"}

    # 50 concurrent uploads of one picture: exactly one stored, 49 told which image they copy
    data = jpeg(2)
    with ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: _upload(server.url, alice, data), range(50)))
    codes = sorted(r.status_code for r in results)
    assert codes == [201] + [409] * 49, codes
    stored_id = next(body(r)["image"]["id"] for r in results if r.status_code == 201)
    assert {body(r)["error"]["id"] for r in results if r.status_code == 409} == {stored_id}

    # concurrent near-duplicates (different bytes, one picture): only one becomes a new image
    copies = [edited(3, k) for k in ("smaller", "mirrored", "q60", "webp")] + [jpeg(3, quality=q) for q in (70, 80, 95)]
    with ThreadPoolExecutor(len(copies)) as pool:
        results = list(pool.map(lambda d: _upload(server.url, alice, d), copies))
    assert sorted(r.status_code for r in results) == [201] + [409] * (len(copies) - 1)

    with httpx.Client(timeout=60) as client:
        listed = body(client.get(server.url + "/v1/images", headers=alice))["images"]
    assert len(listed) == 3
    assert "Traceback" not in server.log_text() and " 500 " not in server.log_text()


def test_a_worker_killed_during_uploads_loses_nothing_it_acknowledged(
    serve: Serve, db_url: str, tmp_path: Path
) -> None:
    storage = tmp_path / "files"
    server = serve(db_url, workers=2, storage=storage)
    alice = server.key("alice")
    pictures = [jpeg(100 + i, 640, 480) for i in range(24)]
    victim = server.worker_pids()[0]

    def send(i: int) -> tuple[int, httpx.Response | None]:
        if i == 8:
            os.kill(victim, signal.SIGKILL)
        try:
            return i, _upload(server.url, alice, pictures[i], id=f"p{i}")
        except httpx.HTTPError:
            return i, None  # the connection died with the worker: not acknowledged

    with ThreadPoolExecutor(4) as pool:
        outcomes = list(pool.map(send, range(len(pictures))))
    acknowledged = [i for i, r in outcomes if r is not None and r.status_code == 201]
    assert len(acknowledged) >= 12, [(i, r and r.status_code) for i, r in outcomes]
    assert all(r is None or r.status_code in (201, 500, 502, 503) for _, r in outcomes)
    server.stop()

    restarted = serve(db_url, workers=1, storage=storage)
    with httpx.Client(timeout=60) as client:
        for i in acknowledged:
            got = client.get(f"{restarted.url}/v1/images/p{i}/file", headers=alice)
            assert got.status_code == 200 and got.content == pictures[i], i
        # no row lacks its file: every listed image downloads, byte-exact to its recorded sha256
        listed = body(client.get(restarted.url + "/v1/images", headers=alice, params={"limit": 1000}))["images"]
        assert {f"p{i}" for i in acknowledged} <= {im["id"] for im in listed}
        for im in listed:
            for f in im["files"]:
                content = client.get(restarted.url + f["url"], headers=alice).content
                assert hashlib.sha256(content).hexdigest() == f["sha256"], im["id"]
        # and the service goes on: what was lost in flight can be sent again
        lost = [i for i in range(len(pictures)) if f"p{i}" not in {im["id"] for im in listed}]
        for i in lost:
            assert client.post(
                restarted.url + "/v1/images",
                headers=alice,
                files={"file": ("p.jpg", pictures[i])},
                data={"id": f"p{i}"},
            ).status_code in (201, 409)


def test_workers_stop_when_the_supervisor_is_killed(serve: Serve, tmp_path: Path) -> None:
    server = serve(str(tmp_path / "service.sqlite"), workers=2)
    workers = server.worker_pids()
    assert len(workers) == 2
    os.kill(server.proc.pid, signal.SIGKILL)  # no SIGTERM handler runs: the workers must notice alone
    server.proc.wait(timeout=10)
    killed = time.monotonic()
    try:
        while live_session_members(server.proc.pid) and time.monotonic() - killed < 5.0:
            time.sleep(0.1)
        assert not live_session_members(server.proc.pid), "workers of a killed supervisor still serve"
    finally:
        for pid, _ in live_session_members(server.proc.pid):  # this test's processes only
            os.kill(pid, signal.SIGKILL)
