"""The browser's pHash (the pre-check worker in Chromium) against the server's: within 4 bits on a
sample of the public benchmark's originals, and the same decode policy on generated pictures
(EXIF orientation, alpha onto white, the white-on-transparent exception, large and grey pictures)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import Page

from lookalike.fingerprints import fingerprint
from tests.images import encode, photo, stamp, with_orientation
from tests.service.conftest import Served

HASH_FILES = """async () => {
  const { Precheck } = await import("/static/lookalike-precheck.js");
  const pc = new Precheck({ apiKey: "not-needed-for-hashing" });
  try {
    const files = Array.from(document.getElementById("to-hash").files);
    return await Promise.all(files.map(async (f) => (await pc.hashFile(f)).phash));
  } finally {
    pc.close();
  }
}"""


def browser_phashes(page: Page, server: Served, paths: list[Path]) -> list[int]:
    """Each file's pHash as the pre-check module computes it, in the page's worker."""
    page.goto(server.url + "/")  # any page of the service: the worker must come from its origin
    page.evaluate(
        "() => { const i = document.createElement('input'); i.type = 'file'; i.multiple = true; i.id = 'to-hash';"
        " document.body.append(i); }"
    )
    page.set_input_files("#to-hash", [str(p) for p in paths])
    return [int(h, 16) for h in page.evaluate(HASH_FILES)]


def bits_apart(paths: list[Path], got: list[int]) -> dict[str, int]:
    return {p.name: (fingerprint(p).phash ^ h).bit_count() for p, h in zip(paths, got, strict=True)}


def test_within_4_bits_of_the_server_on_benchmark_originals(page: Page, server: Served, corpus: Path) -> None:
    originals = [corpus / o["path"] for o in json.loads((corpus / "manifest.json").read_text())["originals"]]
    sample = originals[::20]  # 31 of 603: JPEG, PNG and WebP (benchmarks/browser_phash.py runs them all)
    assert {p.suffix for p in sample} >= {".jpg", ".png", ".webp"}
    distances = bits_apart(sample, browser_phashes(page, server, sample))
    assert max(distances.values()) <= 4, {k: v for k, v in distances.items() if v > 4}
    assert page.problems == []  # type: ignore[attr-defined]


def _white_logo(size: int = 240) -> Image.Image:
    """White shapes on a transparent background: blank on white, so the server composites it onto black."""
    y, x = np.mgrid[0:size, 0:size]
    alpha = np.where(
        (np.hypot(x - size * 0.35, y - size * 0.4) < size * 0.2) | ((x > size * 0.6) & (y > size * 0.5)), 255, 0
    )
    rgba = np.dstack([np.full((size, size, 3), 255, np.uint8), alpha.astype(np.uint8)])
    return Image.fromarray(rgba, "RGBA")


def test_the_decode_policy_matches_the_server(page: Page, server: Served, tmp_path: Path) -> None:
    upright = photo(480, 320, seed=7)
    files = {
        "rotated-exif-6.jpg": with_orientation(upright, 6),
        "mirrored-exif-2.jpg": with_orientation(upright, 2),
        "transposed-exif-5.jpg": with_orientation(upright, 5),
        "stamp-alpha.png": encode(stamp(300, seed=2), "PNG"),
        "white-logo.png": encode(_white_logo(), "PNG"),
        "large.png": encode(photo(1400, 1000, seed=3), "PNG"),  # reduced, then halved, by the server
        "large.jpg": encode(photo(2200, 1500, seed=4), "JPEG", quality=90),  # decoded at 1/4 scale by the server
        "grey.png": encode(photo(400, 300, seed=5).convert("L"), "PNG"),
        "palette.gif": encode(photo(300, 200, seed=6).convert("P"), "GIF"),
        "small.webp": encode(photo(200, 150, seed=8), "WEBP", quality=85),
    }
    paths = []
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
        paths.append(tmp_path / name)
    got = browser_phashes(page, server, paths)
    distances = bits_apart(paths, got)
    assert max(distances.values()) <= 4, distances
    # orientation applied: the turned JPEGs hash like the upright picture, not like their stored pixels
    upright_hash = fingerprint(encode(upright, "JPEG", quality=95)).phash
    assert all((h ^ upright_hash).bit_count() <= 4 for h in got[:3])
    # the white logo was put on black, not flattened to a blank white page
    blank = fingerprint(encode(Image.new("RGB", (240, 240), "white"), "PNG")).phash
    assert (got[4] ^ blank).bit_count() > 8
    assert page.problems == []  # type: ignore[attr-defined]
