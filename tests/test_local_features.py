"""Local features and their geometric verification, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.decode import decode_image
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.match.local import verify_local

LIBRARY = Path(__file__).resolve().parents[1] / "examples" / "library"


def _pixels(name: str) -> np.ndarray:
    return decode_image((LIBRARY / name).read_bytes()).pixels


def test_round_trip_is_exact_up_to_16_bit_positions() -> None:
    f = local_features(_pixels("coffee.jpg"))
    g = LocalFeatures.from_bytes(f.to_bytes())
    assert len(f) > 100
    assert np.array_equal(f.descriptors, g.descriptors)
    assert np.abs(f.points - g.points).max() < 1e-4
    assert g.aspect == pytest.approx(f.aspect, rel=1e-6)


def test_a_crop_verifies_and_reports_how_much_it_shows() -> None:
    full = _pixels("chelsea.jpg")
    h, w = full.shape[:2]
    crop = np.ascontiguousarray(full[int(h * 0.1) :, int(w * 0.25) :])  # 67.5% of the area
    e = verify_local(local_features(crop, max_features=1000), local_features(full))
    assert e.inliers >= 30
    assert e.stored_shown == pytest.approx(0.675, abs=0.08)
    assert e.query_filled > 0.9


def test_unrelated_pictures_share_few_inliers() -> None:
    e = verify_local(local_features(_pixels("rocket.jpg"), max_features=1000), local_features(_pixels("coffee.jpg")))
    assert e.inliers < 15
