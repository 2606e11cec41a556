"""Alpha policy: transparency is composited onto white, as a web page with a white background shows it."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookalike import Signal, compare, fingerprint
from lookalike.decode import decode_image
from tests.images import encode, mean_abs_diff, on_white, stamp

STAMP = stamp(200, seed=3)


def test_transparent_png_decodes_like_the_graphic_on_white() -> None:
    transparent = decode_image(encode(STAMP, "PNG"))
    flattened = decode_image(encode(on_white(STAMP), "PNG"))

    assert transparent.has_alpha
    assert not flattened.has_alpha
    assert mean_abs_diff(transparent.pixels, flattened.pixels) < 0.5
    assert np.abs(transparent.pixels.astype(int) - flattened.pixels).max() <= 1


def test_hidden_colour_under_clear_pixels_does_not_matter() -> None:
    """Two files that show the same graphic but keep different garbage under transparent pixels."""
    a = np.asarray(STAMP).copy()
    b = a.copy()
    clear = a[..., 3] == 0
    assert clear.any()
    a[clear, :3] = (0, 0, 0)
    b[clear, :3] = (255, 0, 255)
    da = decode_image(encode(Image.fromarray(a, "RGBA"), "PNG")).pixels
    db = decode_image(encode(Image.fromarray(b, "RGBA"), "PNG")).pixels
    assert np.array_equal(da, db)
    assert (da[clear] == 255).all()  # clear shows white


def test_transparent_png_fingerprints_like_the_graphic_on_white() -> None:
    transparent = fingerprint(encode(STAMP, "PNG"))
    flattened = fingerprint(encode(on_white(STAMP), "PNG"))

    assert transparent.has_alpha and not flattened.has_alpha
    assert transparent.phash == flattened.phash
    assert transparent.pdq == flattened.pdq
    for signal in Signal:
        assert transparent.distance_bits(flattened, signal) == 0, signal


def test_transparent_png_and_flattened_copy_compare_as_duplicates() -> None:
    result = compare(encode(STAMP, "PNG"), encode(on_white(STAMP), "JPEG", quality=95))
    assert result.verdict.is_duplicate


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF"])
def test_alpha_is_honoured_in_other_formats(fmt: str) -> None:
    params: dict[str, object] = {"lossless": True} if fmt == "WEBP" else {}
    image = decode_image(encode(STAMP, fmt, **params))
    assert image.has_alpha
    assert mean_abs_diff(image.pixels, on_white(STAMP)) < 0.5


def test_grayscale_with_alpha() -> None:
    la = STAMP.convert("LA")
    image = decode_image(encode(la, "PNG"))
    assert image.has_alpha
    assert mean_abs_diff(image.pixels, on_white(la.convert("RGBA"))) < 0.5


def _palette_picture() -> Image.Image:
    im = Image.new("P", (120, 90), 0)
    im.putpalette([0, 0, 0, 230, 40, 40, 40, 40, 230] + [0] * (253 * 3))
    draw = ImageDraw.Draw(im)
    draw.rectangle((10, 10, 70, 60), fill=1)
    draw.ellipse((50, 30, 110, 85), fill=2)
    return im


@pytest.mark.parametrize("fmt", ["PNG", "GIF"])
def test_palette_transparency_shows_white(fmt: str) -> None:
    im = _palette_picture()  # index 0 (black) is the transparent one
    image = decode_image(encode(im, fmt, transparency=0))

    assert image.has_alpha
    assert (image.pixels[0, 0] == 255).all()  # background: transparent, so white
    assert tuple(image.pixels[20, 20]) == (230, 40, 40)  # opaque colours as they are
    assert tuple(image.pixels[75, 80]) == (40, 40, 230)


def test_palette_without_transparency_keeps_its_black() -> None:
    image = decode_image(encode(_palette_picture(), "PNG"))
    assert not image.has_alpha
    assert (image.pixels[0, 0] == 0).all()


def test_opaque_rgba_is_the_same_picture_as_rgb() -> None:
    rgb = on_white(STAMP)
    a = decode_image(encode(rgb.convert("RGBA"), "PNG"))
    b = decode_image(encode(rgb, "PNG"))
    assert np.array_equal(a.pixels, b.pixels)
    assert a.has_alpha  # the file has an alpha channel, even though every pixel is opaque
