"""Memory per request of a real ``lookalike serve``: a small file that decodes to a big picture costs
the server a bounded amount (its peak resident memory, read from /proc), and is answered."""

from __future__ import annotations

import io
import socket
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.service.conftest import Served, body, jpeg

#: what one request may add to the server's peak memory: issue 15's bar for this file
MAX_GROWTH_BYTES = 400 * 1024 * 1024


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise KeyError(field)


@pytest.fixture(scope="module")
def one_colour_rgba_png() -> bytes:
    """6000 x 6000 RGBA of one colour: about 150 KB of PNG, 144 MB of pixels."""
    buf = io.BytesIO()
    Image.new("RGBA", (6000, 6000), (200, 30, 90, 128)).save(buf, "PNG")
    return buf.getvalue()


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("path", ["/v1/check", "/v1/images"])
def test_a_big_picture_in_a_small_file_costs_bounded_memory(
    serve: Callable[..., Served], tmp_path: Path, one_colour_rgba_png: bytes, path: str
) -> None:
    server = serve(str(tmp_path / "memory.sqlite"), workers=1)
    headers = server.key("acme")
    for seed in (1, 2):  # both picture slots' decoding processes started and warm (they take turns)
        assert httpx.post(
            server.url + "/v1/check", headers=headers, files={"file": ("w.jpg", jpeg(seed))}, timeout=120
        ).is_success
    before = _reset_peaks(server.proc.pid)

    r = httpx.post(server.url + path, headers=headers, files={"file": ("big.png", one_colour_rgba_png)}, timeout=120)

    assert r.status_code in (200, 201), body(r)
    growth = _peak_growth(before)
    assert growth <= MAX_GROWTH_BYTES, f"peak memory grew by {growth / 2**20:.0f} MB"


def _tree(pid: int) -> list[int]:
    """``pid`` and every process below it (the worker's decoding processes)."""
    out = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            out.extend(_tree(int(child)))
    return out


def _reset_peaks(pid: int) -> dict[int, int]:
    """Start every process's peak again from what is resident now; their resident sizes."""
    before = {}
    for p in _tree(pid):
        Path(f"/proc/{p}/clear_refs").write_text("5")
        before[p] = _status_kb(p, "VmRSS")
    return before


def _peak_growth(before: dict[int, int]) -> int:
    """How far the processes' peaks rose, added up (an upper bound: their peaks need not coincide)."""
    return sum(max(0, _status_kb(p, "VmHWM") - rss) for p, rss in before.items() if Path(f"/proc/{p}").exists())


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_unread_downloads_of_a_big_file_cost_bounded_memory(serve: Callable[..., Served], tmp_path: Path) -> None:
    """Downloads stream from the stored file: 30 clients that ask for a 20 MB file and read nothing
    hold a few chunks each, not the file (they had held all of it: 60 such downloads of 34 MB had
    grown the server by 2 GB)."""
    import numpy as np

    server = serve(str(tmp_path / "downloads.sqlite"), workers=1)
    headers = server.key("acme")
    pixels = np.random.default_rng(3).integers(0, 256, (2600, 2600, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels, "RGB").save(buf, "PNG", compress_level=1)
    data = buf.getvalue()
    r = httpx.post(server.url + "/v1/images", headers=headers, files={"file": ("n.png", data)}, timeout=300)
    assert r.status_code == 201, body(r)
    image_id = body(r)["image"]["id"]
    before = _reset_peaks(server.proc.pid)
    request = f"GET /v1/images/{image_id}/file HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n\r\n"
    clients = []
    try:
        for _ in range(30):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=30)
            s.sendall(request.encode())
            clients.append(s)
        for s in clients:  # every download has started: its status line is there
            assert s.recv(64).startswith(b"HTTP/1.1 200")
        assert httpx.get(server.url + "/healthz").status_code == 200  # and the server is serving
        growth = _peak_growth(before)
    finally:
        for s in clients:
            s.close()
    assert growth <= 100 * 1024 * 1024, f"peak memory grew by {growth / 2**20:.0f} MB for 30 unread downloads"
