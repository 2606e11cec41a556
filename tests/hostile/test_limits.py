"""Byte and pixel limits, and decompression bombs: refused from the header, before pixels cost memory."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from PIL import Image

from lookalike import DecodeLimits, TooLarge, fingerprint
from lookalike.decode import decode_image, read_header
from lookalike.errors import ConfigError
from tests.images import REPO, encode, photo, png_header_only

PHOTO = photo(320, 240, seed=5)


def test_byte_limit() -> None:
    data = encode(PHOTO, "JPEG", quality=90)
    with pytest.raises(TooLarge, match="bytes"):
        decode_image(data, limits=DecodeLimits(max_bytes=len(data) - 1))
    assert decode_image(data, limits=DecodeLimits(max_bytes=len(data))).pixels.shape == (240, 320, 3)


def test_pixel_limit() -> None:
    data = encode(PHOTO, "PNG")
    with pytest.raises(TooLarge, match="pixels"):
        decode_image(data, limits=DecodeLimits(max_pixels=320 * 240 - 1))
    with pytest.raises(TooLarge):
        read_header(data, limits=DecodeLimits(max_pixels=320 * 240 - 1))
    assert decode_image(data, limits=DecodeLimits(max_pixels=320 * 240)).width == 320


def test_limits_reach_fingerprint_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "photo.png"
    path.write_bytes(encode(PHOTO, "PNG"))
    with pytest.raises(TooLarge):
        fingerprint(path, limits=DecodeLimits(max_pixels=1000))
    with pytest.raises(TooLarge):
        fingerprint(path, limits=DecodeLimits(max_bytes=1000))


def _jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(PHOTO.resize((16, 16)), "JPEG"))
    sof = data.find(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def _gif_claiming(width: int, height: int) -> bytes:
    data = bytearray(encode(PHOTO.resize((16, 16)), "GIF"))
    data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    return bytes(data)


BOMBS = {
    "png-100000x100000": png_header_only(100_000, 100_000),
    "png-30000x30000": png_header_only(30_000, 30_000),
    "jpeg-65000x65000": _jpeg_claiming(65_000, 65_000),
    "gif-65000x65000": _gif_claiming(65_000, 65_000),
}


@pytest.mark.parametrize("name", list(BOMBS))
def test_bomb_headers_are_too_large(name: str) -> None:
    data = BOMBS[name]
    assert len(data) < 2000
    with pytest.raises(TooLarge) as err:
        decode_image(data)
    assert "\n" not in str(err.value)
    with pytest.raises(TooLarge):
        read_header(data)
    with pytest.raises(TooLarge):
        fingerprint(data)


def test_crafted_png_header_is_well_formed() -> None:
    """The bomb is a valid PNG as far as its header goes: Pillow reads its size without complaint."""
    with Image.open(io.BytesIO(png_header_only(3000, 2000))) as im:
        assert im.size == (3000, 2000)
        assert im.format == "PNG"


# Peak resident memory of a fresh process while it handles one input (Linux: VmHWM, reset through
# /proc/self/clear_refs after warming up; ru_maxrss would carry the parent process's peak over exec).
_MEASURE = textwrap.dedent(
    """
    import json, re, sys
    from lookalike import LookalikeError
    from lookalike.decode import decode_image, read_header

    def status_mb(key):
        text = open("/proc/self/status").read()
        return int(re.search(rf"^{key}:\\s+(\\d+) kB", text, re.M).group(1)) / 1024

    what, path, tiny = sys.argv[1:4]
    data = open(path, "rb").read()
    decode_image(open(tiny, "rb").read())  # warm up: every import and plugin a decode touches
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")  # reset the peak to the current resident size
    except OSError:
        print(json.dumps({"unsupported": True}))
        sys.exit(0)
    before = status_mb("VmRSS")
    error = ""
    try:
        (read_header if what == "header" else decode_image)(data)
    except LookalikeError as err:
        error = type(err).__name__
    print(json.dumps({"peak_growth_mb": status_mb("VmHWM") - before, "error": error}))
    """
)


def _peak_growth_mb(tmp_path: Path, data: bytes, what: str = "decode") -> tuple[float, str]:
    """Growth of the peak resident memory of a fresh process while it handles ``data``."""
    if not Path("/proc/self/clear_refs").exists():
        pytest.skip("peak memory is measured through Linux's /proc")
    path = tmp_path / "input.bin"
    path.write_bytes(data)
    tiny = tmp_path / "tiny.png"
    tiny.write_bytes(encode(PHOTO.resize((8, 8)), "PNG"))
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, what, str(path), str(tiny)],
        capture_output=True, text=True, timeout=120, cwd=REPO, check=True,
    )  # fmt: skip
    result = json.loads(out.stdout)
    if result.get("unsupported"):
        pytest.skip("cannot reset the peak-memory counter here")
    return float(result["peak_growth_mb"]), str(result["error"])


def test_measuring_peak_memory_sees_a_real_decode(tmp_path: Path) -> None:
    """The memory check below can fail: a genuine 4000 x 3000 decode shows up in it."""
    big = encode(Image.new("RGB", (4000, 3000), (40, 80, 120)), "PNG")
    growth, error = _peak_growth_mb(tmp_path, big)
    assert error == ""
    assert growth > 30


def test_bomb_is_refused_without_allocating(tmp_path: Path) -> None:
    growth, error = _peak_growth_mb(tmp_path, BOMBS["png-100000x100000"])
    assert error == "TooLarge"
    assert growth < 50


def test_reading_a_png_header_decodes_no_pixel(tmp_path: Path) -> None:
    big = encode(Image.new("RGB", (4000, 3000), (40, 80, 120)), "PNG")
    growth, error = _peak_growth_mb(tmp_path, big, what="header")
    assert error == ""
    assert growth < 20


def test_a_pixel_limit_beyond_what_the_decoder_allows_is_refused_when_configured() -> None:
    """Pillow refuses more than 2 x 89,478,485 pixels process-wide; a larger limit would not take
    effect, so it is refused up front rather than silently ignored."""
    with pytest.raises(ConfigError):
        DecodeLimits(max_pixels=1_000_000_000)
    header = read_header(png_header_only(12_000, 12_000), limits=DecodeLimits(max_pixels=170_000_000))
    assert (header.width, header.height) == (12_000, 12_000)


def test_too_large_message_names_the_configured_limit() -> None:
    with pytest.raises(TooLarge) as err:
        read_header(png_header_only(3000, 2000), limits=DecodeLimits(max_pixels=5_000_000))
    assert "5,000,000" in str(err.value)


def test_decode_memory_limit_refuses_from_the_header_by_format() -> None:
    """A memory budget per decode: a format whose decoder needs more a pixel gets fewer pixels."""
    from lookalike.decode.image import DECODE_BYTES_PER_PIXEL

    png = png_header_only(3000, 2000)  # a header alone: refused before any pixel is decoded
    budget = 3000 * 2000 * DECODE_BYTES_PER_PIXEL["PNG"]
    with pytest.raises(TooLarge, match="MB") as err:
        read_header(png, limits=DecodeLimits(max_decode_bytes=budget - 1))
    assert "PNG" in str(err.value)
    assert read_header(png, limits=DecodeLimits(max_decode_bytes=budget)).width == 3000
    webp = encode(PHOTO, "WEBP", lossless=True)
    jpeg = encode(PHOTO, "JPEG")
    limits = DecodeLimits(max_decode_bytes=320 * 240 * DECODE_BYTES_PER_PIXEL["JPEG"])
    assert decode_image(jpeg, limits=limits).width == 320
    with pytest.raises(TooLarge):
        decode_image(webp, limits=limits)
    with pytest.raises(ConfigError):
        DecodeLimits(max_decode_bytes=0)
