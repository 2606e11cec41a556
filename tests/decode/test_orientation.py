"""A photo stored sideways with an EXIF Orientation tag decodes to the picture a viewer shows."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike import fingerprint
from lookalike.decode import decode_image, read_header
from tests.images import encode, mean_abs_diff, photo, with_orientation

UPRIGHT = photo(320, 240, seed=7)
# what JPEG re-encoding alone costs, for comparison
JPEG_DRIFT = mean_abs_diff(Image.open(io.BytesIO(encode(UPRIGHT, "JPEG", quality=95))).convert("RGB"), UPRIGHT)

ORIENTATIONS = [
    1,
    2,
    3,
    4,
    5,
    6,
    7,
    8,
]


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_exif_orientation_gives_the_upright_picture(orientation: int) -> None:
    data = with_orientation(UPRIGHT, orientation)
    stored = Image.open(io.BytesIO(data))
    if orientation >= 5:
        assert stored.size == (240, 320)  # the file really holds the picture sideways

    image = decode_image(data)

    assert (image.width, image.height) == (320, 240)
    assert image.pixels.shape == (240, 320, 3)
    assert mean_abs_diff(image.pixels, UPRIGHT) <= JPEG_DRIFT + 1.0


@pytest.mark.parametrize("orientation", ORIENTATIONS)
def test_decoding_agrees_with_pillow_exif_transpose(orientation: int) -> None:
    """Pillow's ``ImageOps.exif_transpose`` is the reference a viewer follows."""
    data = with_orientation(UPRIGHT, orientation)
    reference = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    assert np.array_equal(decode_image(data).pixels, reference)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_header_reports_the_upright_size(orientation: int) -> None:
    header = read_header(with_orientation(UPRIGHT, orientation))
    assert (header.width, header.height) == (320, 240)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_rotated_and_tagged_copy_fingerprints_like_the_upright_one(orientation: int) -> None:
    upright = fingerprint(encode(UPRIGHT, "JPEG", quality=95))
    tagged = fingerprint(with_orientation(UPRIGHT, orientation))
    assert (tagged.width, tagged.height) == (upright.width, upright.height)
    assert tagged.distance_bits(upright) <= 2


def test_reduced_decode_is_upright_too() -> None:
    big = photo(1200, 900, seed=8)
    data = with_orientation(big, 6, quality=90)
    image = decode_image(data, min_side=256)
    assert image.reduced
    assert (image.width, image.height) == (1200, 900)
    h, w = image.pixels.shape[:2]
    assert w > h  # landscape, like the upright picture
    small = np.asarray(big.resize((w, h), Image.Resampling.BOX))
    assert mean_abs_diff(image.pixels, small) < 6
