"""Alpha policy: transparency is composited onto white, as a web page with a white background shows it;
a picture that would be blank on white (drawn in its alpha channel alone) is composited onto black."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookalike import Signal, compare, fingerprint
from lookalike.decode import decode_image
from lookalike.index import Index
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


@pytest.mark.parametrize("mode", ["RGB", "L"])
def test_a_colour_key_in_a_truecolour_or_grey_png_shows_white(mode: str) -> None:
    im = _palette_picture().convert(mode)  # black background, the colour the key names
    key = (0, 0, 0) if mode == "RGB" else 0
    image = decode_image(encode(im, "PNG", transparency=key))

    assert image.has_alpha
    assert (image.pixels[0, 0] == 255).all()  # the keyed colour is transparent, so white
    assert (image.pixels[20, 20] == np.asarray(im.convert("RGB"))[20, 20]).all()


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


# ---- pictures drawn in the alpha channel alone -----------------------------------------------------
# White on transparency (a logo made for dark backgrounds) is blank on white; such pictures are
# composited onto black instead, so that they stay apart from each other and from a blank page.


def _alpha_shapes(size: int = 200) -> dict[str, np.ndarray]:
    """Clearly different alpha patterns: a soft-rimmed disc, stripes, a ring and a checkerboard."""
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(x - size / 2, y - size / 2)
    return {
        "disc": np.clip((size * 0.35 - r) * 8, 0, 255),
        "stripes": np.where((x // 25) % 2 == 0, 255.0, 0.0),
        "ring": np.where((r > size * 0.2) & (r < size * 0.35), 255.0, 0.0),
        "checks": np.where((x // 50 + y // 50) % 2 == 0, 255.0, 0.0),
    }


def drawn_in_alpha(alpha: np.ndarray, colour: tuple[int, int, int] = (255, 255, 255)) -> Image.Image:
    """One colour everywhere; the picture is in the alpha channel alone."""
    rgb = np.empty((*alpha.shape, 3), np.uint8)
    rgb[:] = colour
    return Image.fromarray(np.dstack([rgb, np.rint(alpha).astype(np.uint8)]), "RGBA")


def on_black(im: Image.Image) -> Image.Image:
    """``im`` (with alpha) composited onto black."""
    rgba = im.convert("RGBA")
    return Image.alpha_composite(Image.new("RGBA", rgba.size, (0, 0, 0, 255)), rgba).convert("RGB")


SHAPES = _alpha_shapes()
WHITE_LOGOS = {name: drawn_in_alpha(alpha) for name, alpha in SHAPES.items()}
BLANK_PAGE = Image.new("RGB", (200, 200), (255, 255, 255))


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "TIFF", "LA"])
def test_a_white_logo_decodes_as_white_on_black(fmt: str) -> None:
    logo = WHITE_LOGOS["disc"]
    data = encode(logo.convert("LA"), "PNG") if fmt == "LA" else encode(logo, fmt, lossless=True)
    image = decode_image(data)

    assert image.has_alpha
    assert mean_abs_diff(image.pixels, on_black(logo)) < 0.5
    assert image.pixels.std() > 50  # the disc shows; the picture is not blank


def test_a_white_logo_in_a_gif_shows_on_black() -> None:
    im = Image.new("P", (200, 200), 0)
    im.putpalette([0, 0, 0, 255, 255, 255] + [0] * (254 * 3))
    im.putdata([1 if v else 0 for v in (SHAPES["stripes"] > 0).ravel()])
    image = decode_image(encode(im, "GIF", transparency=0))  # white stripes on transparency

    assert image.has_alpha
    assert mean_abs_diff(image.pixels, on_black(WHITE_LOGOS["stripes"])) < 0.5


def test_the_colour_hidden_under_clear_pixels_of_a_white_logo_does_not_matter() -> None:
    logo = np.asarray(WHITE_LOGOS["ring"]).copy()
    clear = logo[..., 3] == 0
    garbage = logo.copy()
    garbage[clear, :3] = np.random.default_rng(0).integers(0, 256, size=(int(clear.sum()), 3), dtype=np.uint8)

    a = decode_image(encode(Image.fromarray(logo, "RGBA"), "PNG")).pixels
    b = decode_image(encode(Image.fromarray(garbage, "RGBA"), "PNG")).pixels

    assert np.array_equal(a, b)
    assert (a[clear] == 0).all()


@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(sorted(WHITE_LOGOS), 2)))
def test_white_logos_of_different_shapes_are_told_apart(a: str, b: str) -> None:
    data_a, data_b = encode(WHITE_LOGOS[a], "PNG"), encode(WHITE_LOGOS[b], "PNG")
    fa, fb = fingerprint(data_a), fingerprint(data_b)

    assert fa.phash != fb.phash and fa.pdq != fb.pdq
    assert fa.distance_bits(fb, Signal.PHASH) > 16
    assert not compare(data_a, data_b).verdict.is_duplicate


@pytest.mark.parametrize("name", sorted(WHITE_LOGOS))
def test_a_white_logo_is_not_a_blank_page(name: str) -> None:
    assert not compare(encode(WHITE_LOGOS[name], "PNG"), encode(BLANK_PAGE, "JPEG", quality=95)).verdict.is_duplicate


def test_a_white_logo_matches_its_copy_flattened_onto_black() -> None:
    logo = WHITE_LOGOS["disc"]
    result = compare(encode(logo, "PNG"), encode(on_black(logo), "JPEG", quality=95))
    assert result.verdict.is_duplicate


def test_an_index_tells_white_logos_apart(tmp_path: Path) -> None:
    with Index(tmp_path / "logos.sqlite") as index:
        for name, logo in WHITE_LOGOS.items():
            index.add(encode(logo, "PNG"), id=name)

        for name, logo in WHITE_LOGOS.items():
            result = index.check(encode(logo, "WEBP", lossless=True))  # the same logo, another file
            duplicates = [m.image_id for m in result.matches if m.verdict.is_duplicate]
            assert duplicates == [name]
        blank = index.check(encode(BLANK_PAGE, "PNG"))
        assert not any(m.verdict.is_duplicate for m in blank.matches)


def test_a_drawing_in_black_and_alpha_alone_still_shows_on_white() -> None:
    """The usual transparent logo: dark ink whose shape is in the alpha channel. It is not blank on
    white, so it stays on white and equals its flattened copies."""
    logo = drawn_in_alpha(SHAPES["ring"], colour=(0, 0, 0))
    decoded = decode_image(encode(logo, "PNG"))
    assert mean_abs_diff(decoded.pixels, on_white(logo)) < 0.5

    assert fingerprint(encode(logo, "PNG")).phash == fingerprint(encode(on_white(logo), "PNG")).phash
    assert compare(encode(logo, "PNG"), encode(on_white(logo), "JPEG", quality=95)).verdict.is_duplicate
