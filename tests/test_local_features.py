"""Local features and their geometric verification, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lookalike.config import Thresholds
from lookalike.decode import decode_image
from lookalike.fingerprints.kernels import two_nearest
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.index.search.descriptors import DescriptorIndex
from lookalike.index.store.records import LOCAL_CODES
from lookalike.match.local import (
    LocalEvidence,
    is_plain_crop,
    local_score,
    query_features,
    verify_local,
    voting_descriptors,
)

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


def _two_nearest_by_numpy(query: np.ndarray, stored: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The definition, bit by bit: every pair's distance, the first nearest, the second least."""
    bits = np.unpackbits(query[:, None, :] ^ stored[None, :, :], axis=2).sum(axis=2)
    nearest = bits.argmin(axis=1)  # the first of equals
    first = bits.min(axis=1)
    second = np.sort(bits, axis=1)[:, 1] if stored.shape[0] > 1 else np.full(len(query), 1 << 30)
    return nearest, first, second


def test_two_nearest_is_the_plain_definition_on_real_descriptors_and_ties() -> None:
    coffee = local_features(_pixels("coffee.jpg")).descriptors
    crop = local_features(_pixels("coffee.jpg")[40:-40, 60:-60]).descriptors
    rng = np.random.default_rng(7)
    few_bits = rng.integers(0, 2, (300, 32), dtype=np.uint8)  # codes 0-32 bits apart: many equal distances
    for query, stored in ((crop, coffee), (few_bits[:120], few_bits[120:]), (crop[:5], coffee[:1]), (crop, coffee[:3])):
        got = two_nearest(query, stored)
        want = _two_nearest_by_numpy(query, stored)
        for g, w in zip(got, want, strict=True):
            assert np.array_equal(g, w)
    nearest, first, second = two_nearest(crop[:4], coffee[:0])
    assert nearest.tolist() == [-1] * 4 and first.tolist() == second.tolist() == [1 << 30] * 4


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


def _wallpaper(corpus: Path, name: str) -> np.ndarray:
    return decode_image((corpus / "wallpapers" / name).read_bytes()).pixels


@pytest.mark.parametrize("name", ["Altai.jpg", "Opal.jpg"])
def test_a_portrait_cut_of_a_landscape_wallpaper_gets_the_crop_tiers_votes(corpus: Path, name: str) -> None:
    # the crop tier's vote table keeps a stored picture's first LOCAL_CODES features: taken strongest
    # first, they bunched where the wallpaper's contrast is, and a cut elsewhere met none of them
    full = _wallpaper(corpus, name)
    h, w = full.shape[:2]
    stored = local_features(full)
    keys = DescriptorIndex()
    keys.add(0, stored.descriptors[:LOCAL_CODES])
    for left in (0.2, 0.35):
        a = int(w * left)
        cut = np.ascontiguousarray(full[:, a : a + h * 9 // 16])  # a 9:16 phone wallpaper
        votes = keys.vote_each(voting_descriptors(query_features(cut), 500), top=None)
        assert votes and votes[0][1] >= 3, (left, votes)  # the crop tier's least (cascade._MIN_VOTES)


def test_a_tight_crop_of_a_large_wallpaper_is_the_same_picture(corpus: Path) -> None:
    # brought to the same size as its 1600-pixel original, the crop shows its details 1.6 times
    # larger: its full-size features fit too few of the original's, its coarse view enough
    full = _wallpaper(corpus, "Opal.jpg")
    h, w = full.shape[:2]
    crop = np.ascontiguousarray(full[int(h * 0.19) : int(h * 0.81), int(w * 0.19) : int(w * 0.81)])  # 62 % a side
    e = verify_local(query_features(crop), local_features(full))
    assert is_plain_crop(e)
    assert local_score(e) >= Thresholds().near_duplicate
