"""Every allow-listed format decodes to the picture it holds, in canonical (h, w, 3) uint8 RGB."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from lookalike.decode import decode_image, read_header
from tests.images import animated, encode, gradient, mean_abs_diff, photo

SOURCE = photo(320, 240, seed=1)

# (Pillow format to write, what lookalike reports, MIME type, save options, how far a lossy codec may drift)
FORMATS = [
    ("JPEG", "JPEG", "image/jpeg", {"quality": 95}, 6.0),
    ("PNG", "PNG", "image/png", {}, 0.0),
    ("WEBP", "WEBP", "image/webp", {"quality": 95}, 6.0),
    ("WEBP", "WEBP", "image/webp", {"lossless": True}, 0.0),
    ("GIF", "GIF", "image/gif", {}, 8.0),  # 256-colour palette
    ("BMP", "BMP", "image/bmp", {}, 0.0),
    ("TIFF", "TIFF", "image/tiff", {}, 0.0),
    ("TIFF", "TIFF", "image/tiff", {"compression": "tiff_deflate"}, 0.0),
    ("AVIF", "AVIF", "image/avif", {"quality": 90}, 6.0),
    ("HEIF", "HEIF", "image/heic", {"quality": 90}, 6.0),
]


def _heif_available() -> bool:
    try:
        import pillow_heif
    except ImportError:
        return False
    pillow_heif.register_heif_opener()
    return True


@pytest.mark.parametrize(
    ("write_as", "fmt", "mime", "params", "max_drift"),
    FORMATS,
    ids=[f"{f[0]}-{'-'.join(str(v) for v in f[3].values()) or 'default'}" for f in FORMATS],
)
def test_each_allowed_format_decodes_to_its_picture(
    write_as: str, fmt: str, mime: str, params: dict[str, object], max_drift: float
) -> None:
    if write_as == "HEIF" and not _heif_available():
        pytest.skip("pillow-heif is not installed")
    data = encode(SOURCE, write_as, **params)

    image = decode_image(data)

    assert image.pixels.shape == (240, 320, 3)
    assert image.pixels.dtype == np.uint8
    assert (image.width, image.height) == (320, 240)
    assert (image.format, image.mime) == (fmt, mime)
    assert not image.has_alpha
    assert not image.reduced
    assert mean_abs_diff(image.pixels, SOURCE) <= max_drift
    header = read_header(data)
    assert (header.format, header.mime, header.width, header.height) == (fmt, mime, 320, 240)


def test_lossless_formats_are_pixel_exact() -> None:
    for fmt in ("PNG", "BMP", "TIFF"):
        assert np.array_equal(decode_image(encode(SOURCE, fmt)).pixels, np.asarray(SOURCE)), fmt


@pytest.mark.parametrize("mode", ["L", "1", "P", "LA", "RGBA", "CMYK", "I;16"])
def test_every_mode_becomes_8_bit_rgb(mode: str) -> None:
    if mode == "CMYK":
        data = encode(SOURCE.convert("CMYK"), "JPEG", quality=95)
    elif mode == "I;16":
        data = encode(Image.fromarray(np.tile(np.linspace(0, 65535, 320).astype(np.uint16), (240, 1))), "PNG")
    else:
        data = encode(SOURCE.convert(mode), "PNG")
    assert Image.open(io.BytesIO(data)).mode == mode  # the file really is in that mode

    image = decode_image(data)

    assert image.pixels.shape == (240, 320, 3)
    assert image.pixels.dtype == np.uint8
    if mode in ("L", "1", "I;16", "LA"):
        # grayscale stays gray in all three channels
        assert np.array_equal(image.pixels[..., 0], image.pixels[..., 1])
        assert np.array_equal(image.pixels[..., 1], image.pixels[..., 2])


def test_cmyk_jpeg_looks_like_the_rgb_picture() -> None:
    image = decode_image(encode(SOURCE.convert("CMYK"), "JPEG", quality=95))
    assert mean_abs_diff(image.pixels, SOURCE) < 6


def test_grayscale_and_palette_pngs_keep_their_levels() -> None:
    for mode in ("L", "P"):
        im = SOURCE.convert(mode)
        assert mean_abs_diff(decode_image(encode(im, "PNG")).pixels, im.convert("RGB")) == 0, mode


def test_one_bit_image_is_black_and_white() -> None:
    image = decode_image(encode(SOURCE.convert("1"), "PNG"))
    assert set(np.unique(image.pixels)) <= {0, 255}
    assert 0 < image.pixels.mean() < 255


def test_16_bit_grayscale_is_scaled_not_clipped() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    data = encode(Image.fromarray(ramp), "PNG")

    gray = decode_image(data).pixels[..., 0]

    assert gray.min() <= 1 and gray.max() >= 254
    # an evenly spaced 16-bit ramp stays evenly spaced in 8 bits (clipping would flatten it at 255)
    expected = np.rint(np.linspace(0, 255, 256))
    assert np.abs(gray[0].astype(np.int16) - expected).max() <= 1
    assert len(np.unique(gray)) > 200


def test_16_bit_tiff_is_scaled_too() -> None:
    ramp = np.tile(np.linspace(0, 65535, 256).astype(np.uint16), (32, 1))
    gray = decode_image(encode(Image.fromarray(ramp), "TIFF")).pixels[..., 0]
    assert gray.min() <= 1 and gray.max() >= 254


def test_16_bit_and_8_bit_versions_of_a_picture_decode_alike() -> None:
    eight = np.asarray(gradient(256, 64).convert("L"))
    sixteen = eight.astype(np.uint16) * 257  # 0..255 -> 0..65535 exactly
    a = decode_image(encode(Image.fromarray(eight), "PNG")).pixels
    b = decode_image(encode(Image.fromarray(sixteen), "PNG")).pixels
    assert np.array_equal(a, b)


FRAMES = [(220, 30, 30), (30, 200, 30), (30, 30, 220)]


@pytest.mark.parametrize("fmt", ["GIF", "PNG", "WEBP"], ids=["gif", "apng", "webp"])
def test_animation_decodes_its_first_frame(fmt: str) -> None:
    data = animated(fmt, FRAMES)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 3  # really animated

    image = decode_image(data)

    assert image.format == fmt
    mean = image.pixels.reshape(-1, 3).mean(axis=0)
    assert np.abs(mean - np.array(FRAMES[0])).max() < 8, f"not the first (red) frame: mean colour {mean}"


def test_animations_that_differ_only_after_the_first_frame_decode_alike() -> None:
    a = decode_image(animated("GIF", [FRAMES[0], FRAMES[1]])).pixels
    b = decode_image(animated("GIF", [FRAMES[0], FRAMES[2]])).pixels
    assert np.array_equal(a, b)
