"""Combined and structural edits: a mirrored crop, a photo in a collage, beside a caption panel, inside
a page, mirrored or not. Their hashes are far from the original's; local features find them.

Thirty real corpus photos go into a real SQLite index. Each edit is made of eight of them, by code
here (none of it is the public benchmark's), and nearly all must come back as near duplicates of the
right photo, and none as a duplicate of another: a copy of a photo never makes a stranger a duplicate.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont, ImageOps

from lookalike.index import Index
from lookalike.match import Verdict, compare
from tests.images import corpus_photos, encode

Edit = Callable[[Image.Image, list[Image.Image]], Image.Image]


def _crop(im: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = im.size
    return im.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))


def mirrored_crop(im: Image.Image, _: list[Image.Image]) -> Image.Image:
    """Mirrored, then a fifth cut off the left and a tenth off the bottom."""
    return _crop(ImageOps.mirror(im), 0.2, 0.0, 0.0, 0.1)


def mirrored_tight_crop(im: Image.Image, _: list[Image.Image]) -> Image.Image:
    """Mirrored, then the middle 30% of the area."""
    return _crop(ImageOps.mirror(im), 0.22, 0.22, 0.23, 0.23)


def collage(im: Image.Image, others: list[Image.Image]) -> Image.Image:
    """A 2x2 grid with white gutters: the photo at the bottom right, three other photos elsewhere."""
    tiles = [ImageOps.fit(t, (320, 240)) for t in (*others[:3], im)]
    out = Image.new("RGB", (2 * 320 + 3 * 8, 2 * 240 + 3 * 8), (255, 255, 255))
    for k, tile in enumerate(tiles):
        out.paste(tile, (8 + (k % 2) * 328, 8 + (k // 2) * 248))
    return out


def side_caption(im: Image.Image, _: list[Image.Image]) -> Image.Image:
    """A text panel two thirds as wide as the photo added on its left: the canvas grows sideways."""
    panel = round(im.width * 0.66)
    out = Image.new("RGB", (im.width + panel, im.height), (250, 250, 240))
    out.paste(im, (panel, 0))
    draw = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, im.height // 12))
    for k, line in enumerate(("when the build", "passes on the", "first try")):
        draw.text((12, 16 + k * im.height // 8), line, font=font, fill=(10, 10, 10))
    return out


def mirrored_page(im: Image.Image, _: list[Image.Image]) -> Image.Image:
    """Mirrored and shown at 45% in the top left of a page with a dark bar and text beside it."""
    small = ImageOps.mirror(im).resize((round(im.width * 0.45), round(im.height * 0.45)))
    page = Image.new("RGB", im.size, (242, 242, 242))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, im.width, round(im.height * 0.07)), fill=(30, 30, 30))
    font = ImageFont.load_default(size=max(10, im.height // 30))
    for k in range(6):
        draw.text((round(im.width * 0.55), round(im.height * (0.15 + 0.08 * k))), "reposted", font=font, fill=(70,) * 3)
    page.paste(small, (round(im.width * 0.05), round(im.height * 0.15)))
    return page


EDITS: dict[str, Edit] = {
    "mirrored crop": mirrored_crop,
    "mirrored tight crop": mirrored_tight_crop,
    "tile of a collage": collage,
    "caption panel beside it": side_caption,
    "mirrored inside a page": mirrored_page,
}


@pytest.fixture(scope="module")
def photos(corpus: Path) -> tuple[list[Path], list[Path]]:
    """30 corpus photos to store (every 11th, from the 5th), and 12 others never stored."""
    everything = corpus_photos()
    stored = everything[5::11][:30]
    strangers = [p for p in everything[3::17] if p not in stored][:12]
    assert len(stored) == 30 and len(strangers) == 12
    return stored, strangers


@pytest.fixture(scope="module")
def db(photos: tuple[list[Path], list[Path]], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("structural") / "photos.sqlite"
    with Index(path) as ix:
        for p in photos[0]:
            ix.add(p, id=p.stem)
    return path


def _rgb(path: Path) -> Image.Image:
    with Image.open(path) as im:
        return im.convert("RGB")


@pytest.mark.parametrize("edit", list(EDITS))
def test_edited_copies_are_found_as_the_same_photo(photos: tuple[list[Path], list[Path]], db: Path, edit: str) -> None:
    stored, strangers = photos
    others = [_rgb(p) for p in strangers[:3]]
    subjects = stored[::4][:8]
    found = 0
    with Index(db) as ix:
        for subject in subjects:
            result = ix.check(encode(EDITS[edit](_rgb(subject), others), "JPEG", quality=88))
            duplicates = [m.image_id for m in result.matches if m.verdict.is_duplicate]
            assert set(duplicates) <= {subject.stem}, f"{edit} of {subject.stem} made a stranger a duplicate"
            found += duplicates == [subject.stem]
    assert found >= 7, f"only {found} of {len(subjects)} {edit} copies found"


@pytest.mark.parametrize("edit", ["tile of a collage", "caption panel beside it", "mirrored inside a page"])
def test_the_same_edits_of_photos_never_stored_are_no_duplicates(
    photos: tuple[list[Path], list[Path]], db: Path, edit: str
) -> None:
    _, strangers = photos
    others = [_rgb(p) for p in strangers[:3]]
    with Index(db) as ix:
        for p in strangers[3:]:
            result = ix.check(encode(EDITS[edit](_rgb(p), others), "JPEG", quality=88))
            assert not any(m.verdict.is_duplicate for m in result.matches), f"{edit} of {p.stem}"


def test_compare_says_a_mirrored_crop_is_the_same_picture_mirrored(photos: tuple[list[Path], list[Path]]) -> None:
    original = photos[0][0]
    copy = encode(mirrored_tight_crop(_rgb(original), []), "JPEG", quality=88)

    result = compare(original, copy)

    assert result.verdict is Verdict.NEAR_DUPLICATE
    assert "mirrored" in result.explanation and "cropped to" in result.explanation
