"""``lookalike compare A B``: readable by default, one JSON object with ``--json``."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image

from tests.cli.conftest import Run
from tests.images import EXAMPLES, encode, save

COFFEE = EXAMPLES / "library" / "coffee.jpg"
COFFEE_SMALL = EXAMPLES / "uploads" / "coffee_small.webp"


def test_readable_output(cli: Run) -> None:
    result = cli("compare", COFFEE, COFFEE_SMALL)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("near_duplicate")
    assert "score" in lines[0]
    assert "WebP" in lines[1]  # the explanation
    assert any(line.startswith("hashes:") and "phash" in line and "pdq" in line for line in lines)
    assert any(line.startswith("pixels:") and "SSIM" in line for line in lines)
    assert result.stderr == ""


def test_json_output(cli: Run) -> None:
    result = cli("compare", COFFEE, COFFEE_SMALL, "--json")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 1
    d = json.loads(lines[0])
    assert d["verdict"] == "near_duplicate"
    assert 0.7 <= d["score"] <= 1.0
    assert (d["a"], d["b"]) == (str(COFFEE), str(COFFEE_SMALL))
    assert set(d["hashes"]) == {"phash", "dhash", "ahash", "whash", "pdq"}
    assert set(d["pixels"]) == {"ssim", "nrmse", "mse", "histogram_distance", "template_correlation"}


def test_identical_and_same_pixels(cli: Run, tmp_path: Path) -> None:
    png = save(Image.open(COFFEE).convert("RGB"), tmp_path / "coffee.png")
    tiff = tmp_path / "coffee.tif"
    tiff.write_bytes(encode(Image.open(png), "TIFF"))
    identical = json.loads(cli("compare", png, png, "--json").stdout)
    same = json.loads(cli("compare", png, tiff, "--json").stdout)
    assert identical["verdict"] == "identical"
    assert same["verdict"] == "same_pixels"
    assert identical["score"] == same["score"] == 1.0
