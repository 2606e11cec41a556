"""Pictures within a picture, found along flat gutters, on real photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from lookalike.match.regions import picture_regions
from tests.images import corpus_photos


def _photos(corpus: Path, n: int) -> list[Image.Image]:
    out = []
    for p in corpus_photos()[7::29][:n]:
        with Image.open(p) as im:
            out.append(im.convert("RGB").resize((300, 220)))
    return out


def test_each_tile_of_a_collage_is_found_where_it_was_put(corpus: Path) -> None:
    sheet = Image.new("RGB", (2 * 300 + 3 * 6, 2 * 220 + 3 * 6), (255, 255, 255))
    placed = []
    for k, tile in enumerate(_photos(corpus, 4)):
        x, y = 6 + (k % 2) * 306, 6 + (k // 2) * 226
        sheet.paste(tile, (x, y))
        placed.append((x, y, x + 300, y + 220))

    found = picture_regions(np.asarray(sheet))

    assert len(found) == 4
    for box in placed:
        assert any(max(abs(a - b) for a, b in zip(box, f)) <= 3 for f in found), box


def test_a_photo_on_a_page_with_a_title_bar_and_text_beside_it_is_found(corpus: Path) -> None:
    page = Image.new("RGB", (800, 500), (244, 244, 244))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, 800, 36), fill=(30, 40, 80))  # a bar across the whole page: no gutter crosses it
    for k in range(8):
        draw.text((420, 80 + 30 * k), "some words about the photo", fill=(60, 60, 60))
    page.paste(_photos(corpus, 1)[0], (40, 70))

    assert picture_regions(np.asarray(page)) == [(40, 70, 340, 290)]


def test_whole_photos_have_no_parts(corpus: Path) -> None:
    assert all(picture_regions(np.asarray(im)) == [] for im in _photos(corpus, 6))


def _aurora(width: int, height: int, seed: int) -> Image.Image:
    """A featureless picture: soft colour bands fading to a black foot, whose bottom rows are each
    one flat colour (as a night sky's are), so that flatness alone cannot tell them from a gutter."""
    rng = np.random.default_rng(seed)
    y = np.linspace(0.0, 1.0, height)[:, None]
    x = np.linspace(0.0, 1.0, width)[None, :]
    phase = rng.uniform(0, 6, 3)
    bands = [0.5 + 0.5 * np.sin(4 * x + 3 * y + p) for p in phase]
    fade = np.clip(1.6 - 2.0 * y, 0.0, 1.0)
    rgb = np.stack([200 * b * fade * np.ones_like(x) for b in bands], axis=-1)
    return Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8))


def test_a_featureless_picture_with_flat_rows_of_its_own_is_found_whole_inside_a_page() -> None:
    page = Image.new("RGB", (600, 460), (245, 245, 245))
    ImageDraw.Draw(page).rectangle((0, 0, 600, 36), fill=(40, 60, 90))
    ImageDraw.Draw(page).text((30, 420), "Posted 3 hours ago", fill=(60, 60, 60))
    page.paste(_aurora(480, 320, 1), (60, 55))

    assert picture_regions(np.asarray(page)) == [(60, 55, 540, 375)]


def test_a_collage_without_gutters_is_cut_at_its_seams(corpus: Path) -> None:
    tiles = _photos(corpus, 6)
    sheet = Image.new("RGB", (3 * 300, 2 * 220))
    placed = []
    for k, tile in enumerate(tiles):
        x, y = (k % 3) * 300, (k // 3) * 220
        sheet.paste(tile, (x, y))
        placed.append((x, y, x + 300, y + 220))

    found = picture_regions(np.asarray(sheet), most=9)

    assert sorted(found) == sorted(placed)
