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
