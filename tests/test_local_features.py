"""Local features and their geometric verification, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.config import Thresholds
from lookalike.decode import decode_image
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.match.local import LocalEvidence, is_plain_crop, local_score, query_features, verify_local

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


def test_a_tight_centre_crop_is_a_plain_crop_that_scores_as_the_same_picture() -> None:
    full = _pixels("chelsea.jpg")
    h, w = full.shape[:2]
    crop = np.ascontiguousarray(full[int(h * 0.18) : int(h * 0.83), int(w * 0.18) : int(w * 0.83)])  # 65 % a side
    e = verify_local(query_features(crop), local_features(full))
    assert is_plain_crop(e)
    assert e.stored_shown == pytest.approx(0.65**2, abs=0.08)
    assert local_score(e) >= Thresholds().near_duplicate


def test_a_plain_crop_is_the_same_picture_from_fewer_inliers_than_a_turned_or_framed_fit() -> None:
    plain = LocalEvidence(inliers=40, matches=60, stored_shown=0.4, query_filled=1.0, rotation_deg=0.5)
    turned = LocalEvidence(inliers=40, matches=60, stored_shown=0.4, query_filled=1.0, rotation_deg=20.0)
    framed = LocalEvidence(inliers=40, matches=60, stored_shown=0.4, query_filled=0.5)
    assert is_plain_crop(plain) and local_score(plain) >= Thresholds().near_duplicate
    assert not is_plain_crop(turned) and not is_plain_crop(framed)
    assert local_score(turned) < Thresholds().near_duplicate and local_score(framed) < Thresholds().near_duplicate
