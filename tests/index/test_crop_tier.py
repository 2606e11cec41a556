"""The crop tier's answer is a function of the query and the stored file it verifies: storing other
pictures (unrelated ones, or another tenant's copies of the very picture) never takes votes from a
file, nor pushes it out of the candidates its own scope verifies, so a crop's verdict and score stay."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike import Index
from lookalike.index.descriptors import DescriptorIndex
from tests.images import EXAMPLES
from tests.index.test_descriptors import flipped, random_codes

ORIGINAL = EXAMPLES / "library" / "rocket.jpg"
CROP = EXAMPLES / "uploads" / "rocket_cropped.png"
UNRELATED = [p for p in sorted((EXAMPLES / "library").iterdir()) if p != ORIGINAL] + [
    EXAMPLES / "uploads" / "coins_new.jpg",
    EXAMPLES / "uploads" / "motorcycle_other_side.jpg",
]


def _recompressed(path: Path, quality: int) -> bytes:
    out = io.BytesIO()
    Image.open(path).convert("RGB").save(out, "JPEG", quality=quality)
    return out.getvalue()


def test_storing_other_files_never_takes_a_vote_from_a_file() -> None:
    rng = np.random.default_rng(3)
    mine = random_codes(64, rng)
    query = flipped(mine, 3, rng)
    ix = DescriptorIndex()
    ix.add(7, mine)
    before = ix.vote(query, top=None)
    # near copies of the same codes under lower owners: each is nearer to some query codes than mine
    for owner in range(7):
        ix.add(owner, flipped(mine, 1 + owner % 3, rng))
    ix.add(100, random_codes(64, rng))  # and a stranger

    after = dict(ix.vote(query, top=None))

    assert before == [(7, 64)] and after[7] == 64
    assert all(after[o] > 0 for o in range(7)) and 100 not in after


def test_a_crops_verdict_does_not_change_when_other_pictures_are_stored(tmp_path: Path) -> None:
    with Index(tmp_path / "alone.sqlite") as index:
        index.add(ORIGINAL, scope="alice")
        alone = index.check(CROP, scope="alice").matches[0]
    assert (alone.verdict.value, alone.by_local_features) == ("near_duplicate", True)

    with Index(tmp_path / "crowded.sqlite") as index:
        # another tenant stored a dozen copies of the very picture first (more than the crop tier
        # verifies, and on lower rows, which win ties)
        for k in range(12):
            index.add(_recompressed(ORIGINAL, 40 + 4 * k), scope="bob")
        index.add(ORIGINAL, scope="alice")
        first = index.check(CROP, scope="alice").matches[0]
        for picture in UNRELATED:
            index.add(picture, scope="alice")
        then = index.check(CROP, scope="alice").matches[0]

    for m in (first, then):
        assert (m.verdict, round(m.score, 4), m.explanation) == (
            alone.verdict,
            round(alone.score, 4),
            alone.explanation,
        )
        assert m.file.source == str(ORIGINAL.resolve())
