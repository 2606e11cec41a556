"""Memory per request of a real ``lookalike serve``: a small file that decodes to a big picture costs
the server a bounded amount (its peak resident memory, read from /proc), and is answered."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.service.conftest import Served, body

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
    pid = server.proc.pid
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # the peak starts again from what is resident now
    before = _status_kb(pid, "VmRSS")

    r = httpx.post(server.url + path, headers=headers, files={"file": ("big.png", one_colour_rgba_png)}, timeout=120)

    assert r.status_code in (200, 201), body(r)
    growth = _status_kb(pid, "VmHWM") - before
    assert growth <= MAX_GROWTH_BYTES, f"peak memory grew by {growth / 2**20:.0f} MB"
