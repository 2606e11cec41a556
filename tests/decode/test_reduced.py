"""Reduced decoding: a caller that needs fewer pixels gets a smaller picture, never a smaller than asked one."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.decode import decode_image
from tests.images import encode, mean_abs_diff, photo

BIG = photo(2000, 1500, seed=11)
BIG_JPEG = encode(BIG, "JPEG", quality=90)


def test_big_jpeg_decodes_reduced_when_asked() -> None:
    image = decode_image(BIG_JPEG, min_side=256)

    assert image.reduced
    h, w = image.pixels.shape[:2]
    assert 256 <= min(h, w) < 1500
    assert min(h, w) <= 2 * 256 + 1  # about twice min_side at most
    assert (image.width, image.height) == (2000, 1500)  # the full size is still reported
    assert abs(w / h - 2000 / 1500) < 0.02  # same shape
    small = np.asarray(BIG.resize((w, h), Image.Resampling.BOX))
    assert mean_abs_diff(image.pixels, small) < 6


def test_big_jpeg_decodes_full_size_by_default() -> None:
    image = decode_image(BIG_JPEG)
    assert not image.reduced
    assert image.pixels.shape == (1500, 2000, 3)


@pytest.mark.parametrize("fmt", ["PNG", "WEBP"])
def test_other_formats_are_reduced_too(fmt: str) -> None:
    data = encode(BIG.resize((1000, 750)), fmt)
    image = decode_image(data, min_side=256)
    assert image.reduced
    assert 256 <= min(image.pixels.shape[:2]) <= 2 * 256 + 1


@pytest.mark.parametrize("min_side", [100, 256, 400, 1000])
def test_short_side_is_never_below_min_side(min_side: int) -> None:
    image = decode_image(BIG_JPEG, min_side=min_side)
    assert min(image.pixels.shape[:2]) >= min_side


def test_small_picture_is_never_upscaled() -> None:
    image = decode_image(encode(photo(300, 200, seed=1), "PNG"), min_side=256)
    assert not image.reduced
    assert image.pixels.shape == (200, 300, 3)
