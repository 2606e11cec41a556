"""Decode budgets on the service: a scan bomb is a 422 naming the limit, a decode that runs past its
wall-time budget is stopped and answered 422 while other tenants' checks go on in the other slot,
and the stopped worker is replaced; thin pictures are stored and checked (never a 5xx)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.hostile.test_scan_budget import THIN, thin_png
from tests.images import scan_bomb
from tests.service.conftest import Api, Served, body, jpeg


def test_a_scan_bomb_is_a_422_that_names_the_limit(api: Api) -> None:
    alice = api.key("alice")
    r = api.check(alice, scan_bomb())
    assert r.status_code == 422, r.text
    assert body(r)["error"]["code"] == "too_many_scans"
    assert "limit of 100" in body(r)["error"]["message"]
    assert api.upload(alice, scan_bomb()).status_code == 422
    assert api.check(alice, jpeg(1)).status_code == 200


def test_a_decode_over_its_time_budget_is_stopped_and_other_tenants_go_on(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """With the scan limit lifted, the 12,000-scan bomb takes minutes to decode: the budget stops
    it. Meanwhile another tenant's picture check, sent while it decodes, is answered in the other
    picture slot (how soon: ``benchmarks/service_second_round.py``); afterwards the stopped slot's
    new worker answers as before."""
    server = serve(
        str(tmp_path / "budget.sqlite"), workers=1, extra=("--decode-timeout", "6", "--max-scans", "1000000")
    )
    attacker, victim = server.key("attacker"), server.key("victim")
    answers: list[tuple[str, httpx.Response]] = []

    def send(who: str, headers: dict[str, str], data: bytes) -> None:
        r = httpx.post(server.url + "/v1/check", headers=headers, files={"file": ("q.jpg", data)}, timeout=300)
        answers.append((who, r))

    bomb = threading.Thread(target=send, args=("bomb", attacker, scan_bomb()))
    bomb.start()
    for _ in range(100):  # until the bomb is being decoded (its worker's CPU time moves)
        if server_busy(server):
            break
    send("victim", victim, jpeg(2))
    bomb.join()
    statuses = {who: r for who, r in answers}
    assert statuses["victim"].status_code == 200, statuses["victim"].text
    assert statuses["bomb"].status_code == 422 and body(statuses["bomb"])["error"]["code"] == "decode_timeout"
    assert "6 s" in body(statuses["bomb"])["error"]["message"]
    for seed in (3, 4, 5):  # both slots answer again (the stopped worker was replaced)
        r = httpx.post(server.url + "/v1/check", headers=attacker, files={"file": ("q.jpg", jpeg(seed))}, timeout=300)
        assert r.status_code == 200, r.text


def server_busy(server: Served) -> bool:
    """Whether one of the server's decoding processes is working (its CPU time is moving)."""
    import time

    def cpu() -> dict[int, int]:
        out = {}
        for child in Path(f"/proc/{server.proc.pid}/task").iterdir():
            for pid in Path(f"/proc/{server.proc.pid}/task/{child.name}/children").read_text().split():
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                out[int(pid)] = int(fields[11]) + int(fields[12])
        return out

    first = cpu()
    time.sleep(0.3)
    second = cpu()
    return any(second.get(pid, 0) - ticks > 10 for pid, ticks in first.items())


@pytest.mark.parametrize(("width", "height"), THIN)
def test_thin_pictures_are_stored_and_checked(api: Api, width: int, height: int) -> None:
    alice = api.key("alice")
    data = thin_png(width, height)
    stored = api.upload(alice, data, id="thin")
    assert stored.status_code == 201, stored.text
    assert body(api.check(alice, data))["verdict"] == "identical"
    same_pixels = api.check(alice, thin_png(width, height, compress_level=1))
    assert same_pixels.status_code == 200, same_pixels.text
    assert body(same_pixels)["matches"][0]["id"] == "thin"
    assert body(same_pixels)["matches"][0]["verdict"] == "same_pixels"
    other = body(api.check(alice, thin_png(height, width)))  # another thin picture: not a copy
    assert other["verdict"] != "identical" and other["matches"]
    for match in other["matches"]:  # what was not a duplicate says why no crop was looked for
        assert "too thin for local features" in match["evidence"], match


def test_a_download_is_sent_whole_with_its_length(api: Api) -> None:
    alice = api.key("alice")
    data = thin_png(2000, 2)
    api.upload(alice, data, id="pic")
    r = api.client.get("/v1/images/pic/file", headers=alice)
    assert r.status_code == 200 and r.content == data
    assert r.headers["content-length"] == str(len(data)) and r.headers["content-type"] == "image/png"


def _echo(payload: bytes, suffix: bytes) -> bytes:
    return payload + suffix


def _die(payload: bytes) -> bytes:
    import os

    os._exit(9)  # as a decoder that crashes in C takes its process down


def _sleep(payload: bytes) -> bytes:
    import time

    time.sleep(60)
    return payload


def test_a_budgeted_worker_survives_crashes_and_overruns() -> None:
    from lookalike.processes import BudgetedWorker, WorkerDied

    worker = BudgetedWorker()
    try:
        assert worker.call(_echo, b"a", b"b", budget_s=60) == b"ab"
        with pytest.raises(WorkerDied):
            worker.call(_die, b"x", budget_s=60)
        assert worker.call(_echo, b"c", b"d", budget_s=60) == b"cd"  # a new process took over
        with pytest.raises(TimeoutError, match="budget of 1 s"):
            worker.call(_sleep, b"x", budget_s=1)
        assert worker.call(_echo, b"e", b"f", budget_s=60) == b"ef"
        with pytest.raises(ValueError, match="invalid literal"):
            worker.call(int, b"not a number", budget_s=60)  # the function's own error comes back as it is
    finally:
        worker.close()
