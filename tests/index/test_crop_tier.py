"""A crop's verdict in one scope does not move when other pictures are stored: unrelated ones in the
scope, or another tenant's copies of the very picture (which once filled the candidates every scope
drew from: the nearest pHashes and the most voted files of the whole index)."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from lookalike import Index
from tests.images import EXAMPLES

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
