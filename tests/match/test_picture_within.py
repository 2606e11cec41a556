"""A featureless picture shown inside a page: no keypoints to match, but the picture found within
the page (``match.regions``) keeps its hashes, and ``compare`` and ``check`` both find it by them."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image, ImageDraw

from lookalike.index import Index
from lookalike.match import Verdict, compare
from tests.match.test_regions import _aurora


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "PNG")
    return buf.getvalue()


def _on_a_page(picture: Image.Image) -> bytes:
    """``picture`` at 60 % on a light page with a title bar and a line of text, as a screenshot shows it."""
    small = picture.resize((round(picture.width * 0.6), round(picture.height * 0.6)), Image.Resampling.LANCZOS)
    page = Image.new("RGB", (round(small.width / 0.8), round(small.height / 0.7)), (245, 245, 245))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, page.width, round(page.height * 0.08)), fill=(40, 60, 90))
    draw.text((page.width * 0.05, page.height * 0.9), "Posted 3 hours ago", fill=(60, 60, 60))
    page.paste(small, ((page.width - small.width) // 2, round(page.height * 0.12)))
    return _png(page)


def test_compare_finds_a_featureless_picture_inside_a_page_by_its_hashes() -> None:
    original = _aurora(1000, 640, seed=1)
    shot = _on_a_page(original)

    same = compare(_png(original), shot)
    other = compare(_png(_aurora(1000, 640, seed=5)), shot)

    assert same.verdict is Verdict.NEAR_DUPLICATE
    assert same.explanation.startswith("the picture shown inside it")
    assert not other.verdict.is_duplicate


def test_check_gives_the_score_compare_gives(tmp_path: Path) -> None:
    originals = [_aurora(1000, 640, seed=s) for s in (1, 5, 9)]
    shot = _on_a_page(originals[0])
    with Index(tmp_path / "i.sqlite") as index:
        for k, im in enumerate(originals):
            index.add(_png(im), id=f"aurora{k}")
        found = index.check(shot)

    best = found.matches[0]
    assert (best.image_id, best.verdict) == ("aurora0", Verdict.NEAR_DUPLICATE)
    assert best.score == compare(_png(originals[0]), shot).score
    assert all(not m.verdict.is_duplicate for m in found.matches[1:])
