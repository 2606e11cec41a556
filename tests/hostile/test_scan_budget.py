"""Decode work bounded by counting before decoding: a progressive JPEG's scans (a scan bomb costs
its pixels once per scan) are counted from the bytes and refused past the limit, naming it; and
pictures too thin for local features are checked by the signals that apply, in the library and on
the command line."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image

from lookalike import DecodeLimits
from lookalike.decode import decode_image, read_header
from lookalike.decode.budget import count_jpeg_scans
from lookalike.errors import ConfigError, OverBudget, TooManyScans
from lookalike.fingerprints import analyse
from tests.images import encode, photo, scan_bomb

THIN = [(2000, 2), (350, 1), (1, 5000)]


def thin_png(width: int, height: int, *, compress_level: int = 6) -> bytes:
    """A thin picture with detail along its length (a photo squeezed to a strip)."""
    return encode(photo(max(width, 64), max(height, 64), seed=width).resize((width, height)), "PNG",
                  compress_level=compress_level)  # fmt: skip


def test_a_scan_bomb_is_refused_before_decoding_and_the_limit_is_named() -> None:
    bomb = scan_bomb()  # 7000 x 7000, 12,006 scans, 1.1 MB: minutes of decoding without the limit
    assert 1_000_000 < len(bomb) < 1_200_000
    started = time.process_time()
    with pytest.raises(TooManyScans, match="over the limit of 100") as err:
        decode_image(bomb)
    assert time.process_time() - started < 5  # refused from the bytes: no pixel was decoded
    assert isinstance(err.value, OverBudget) and err.value.code == "too_many_scans"
    with pytest.raises(TooManyScans, match="limit of 20"):
        read_header(scan_bomb(256, 30), limits=DecodeLimits(max_scans=20))


def test_scans_are_counted_exactly_and_a_jpeg_within_the_limit_decodes() -> None:
    progressive = encode(photo(320, 240, seed=2), "JPEG", progressive=True, quality=85)
    scans = count_jpeg_scans(progressive, stop_after=1000)
    assert 5 <= scans <= 15  # libjpeg's progressive script for colour: 10 scans
    assert count_jpeg_scans(encode(photo(320, 240, seed=2), "JPEG"), stop_after=1000) == 1
    assert decode_image(progressive, limits=DecodeLimits(max_scans=scans)).pixels.shape == (240, 320, 3)
    with pytest.raises(TooManyScans):
        decode_image(progressive, limits=DecodeLimits(max_scans=scans - 1))
    bomb = scan_bomb(64, 500)
    assert count_jpeg_scans(bomb, stop_after=10_000) == 506
    assert count_jpeg_scans(bomb, stop_after=100) == 101  # counting stops once past the limit


def test_marker_bytes_inside_a_segment_are_not_scans() -> None:
    # a comment holding SOS markers is one segment, skipped whole: it is not 40 scans
    sneaky = encode(photo(64, 48, seed=1), "JPEG", comment=b"\xff\xda\x00\x02" * 40)
    assert count_jpeg_scans(sneaky, stop_after=100) == 1
    assert decode_image(sneaky, limits=DecodeLimits(max_scans=1)).width == 64


def test_the_scan_limit_must_be_positive() -> None:
    with pytest.raises(ConfigError):
        DecodeLimits(max_scans=0)


@pytest.mark.parametrize(("width", "height"), THIN)
def test_a_thin_picture_is_fingerprinted_without_local_features(width: int, height: int) -> None:
    analysis = analyse(thin_png(width, height), local=True, with_pixel_digest=True)
    assert (analysis.fingerprint.width, analysis.fingerprint.height) == (width, height)
    assert analysis.local is not None and len(analysis.local) == 0
    assert analysis.fingerprint.pixel_digest is not None


def test_the_command_line_checks_indexes_and_finds_thin_pictures(cli: Callable[..., object], tmp_path: Path) -> None:
    folder = tmp_path / "thin"
    folder.mkdir()
    for w, h in THIN:
        (folder / f"{w}x{h}.png").write_bytes(thin_png(w, h))
        (folder / f"{w}x{h}-again.png").write_bytes(thin_png(w, h, compress_level=1))  # same pixels
    db = tmp_path / "thin.sqlite"
    indexed = cli("index", folder, "--db", db, "--json")
    assert indexed.returncode in (0, 1), indexed.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in indexed.stderr  # type: ignore[attr-defined]
    for w, h in THIN:
        checked = cli("check", folder / f"{w}x{h}-again.png", "--db", db, "--json")
        assert checked.returncode == 0, checked.stderr  # type: ignore[attr-defined]
        assert "Traceback" not in checked.stderr  # type: ignore[attr-defined]
    found = cli("find", folder, "--json")
    assert found.returncode == 0 and "Traceback" not in found.stderr, found.stderr  # type: ignore[attr-defined]
    groups = [json.loads(line) for line in found.stdout.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert groups, found.stdout  # type: ignore[attr-defined]


def test_the_command_line_reports_a_scan_bomb_in_one_line(cli: Callable[..., object], tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.jpg"
    bomb.write_bytes(scan_bomb())
    other = tmp_path / "ok.png"
    Image.new("RGB", (64, 48), (10, 200, 30)).save(other)
    done = cli("hash", bomb, other)
    assert done.returncode == 1  # type: ignore[attr-defined]  # one input failed, the other was hashed
    assert "ok.png" in done.stdout  # type: ignore[attr-defined]
    assert "100 scans" in done.stderr and "Traceback" not in done.stderr, done.stderr  # type: ignore[attr-defined]
