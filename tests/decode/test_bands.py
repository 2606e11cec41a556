"""Decoding a band of rows at a time: the pixels are those of converting the whole picture at once,
for every mode, alpha policy and orientation, and a row sink sees the full-resolution picture."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest
from PIL import Image

import lookalike.decode.image as decoding
from lookalike.decode import decode_image
from lookalike.fingerprints import analyse, full_pixel_digest
from lookalike.fingerprints.digest import pixel_digest
from tests.images import encode

U8 = npt.NDArray[np.uint8]
RNG = np.random.default_rng(7)


class Rows:
    """A row sink that keeps what it is given."""

    def __init__(self) -> None:
        self.size: tuple[int, int] | None = None
        self.bands: list[U8] = []

    def start(self, width: int, height: int) -> None:
        self.size, self.bands = (width, height), []

    def write(self, rows: U8) -> None:
        self.bands.append(rows.copy())

    def picture(self) -> U8:
        return np.concatenate(self.bands, axis=0)


def _png(im: Image.Image, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(im, "PNG", exif=exif)


def _pictures() -> list[tuple[str, Image.Image]]:
    w, h = 173, 121  # sizes no band or reduction factor divides
    rgba = RNG.integers(0, 256, (h, w, 4), dtype=np.uint8)
    drawn_in_alpha = np.full((h, w, 4), 255, dtype=np.uint8)
    drawn_in_alpha[..., 3] = RNG.integers(0, 256, (h, w))
    palette = Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8)).quantize(64)
    palette.info["transparency"] = 5
    return [
        ("rgba", Image.fromarray(rgba, "RGBA")),
        ("alpha-only", Image.fromarray(drawn_in_alpha, "RGBA")),
        ("palette-clear", palette),
        ("la", Image.fromarray(RNG.integers(0, 256, (h, w, 2), dtype=np.uint8), "LA")),
        ("gray16", Image.fromarray(RNG.integers(0, 65535, (h, w), dtype=np.uint16))),
        ("rgb", Image.fromarray(RNG.integers(0, 256, (h, w, 3), dtype=np.uint8))),
    ]


PICTURES = _pictures()


@pytest.fixture
def small_bands(monkeypatch: pytest.MonkeyPatch) -> None:
    """Bands of a few rows, so that every picture here spans many of them."""
    monkeypatch.setattr(decoding, "_BAND_PIXELS", 500)


@pytest.mark.parametrize("orientation", [1, 2, 3, 4, 5, 6, 7, 8])
@pytest.mark.parametrize(("name", "im"), PICTURES, ids=[n for n, _ in PICTURES])
def test_banded_decode_matches_one_band(
    small_bands: None, monkeypatch: pytest.MonkeyPatch, name: str, im: Image.Image, orientation: int
) -> None:
    data = _png(im, orientation)
    rows = Rows()
    banded = decode_image(data, min_side=30, full_rows=rows)
    banded_full = decode_image(data)
    monkeypatch.setattr(decoding, "_BAND_PIXELS", 1 << 30)  # the whole picture in one band
    whole = decode_image(data, min_side=30)
    whole_full = decode_image(data)

    assert banded.reduced
    assert np.array_equal(banded.pixels, whole.pixels)
    assert np.array_equal(banded_full.pixels, whole_full.pixels)
    assert rows.size == (whole_full.pixels.shape[1], whole_full.pixels.shape[0])
    assert np.array_equal(rows.picture(), whole_full.pixels)


def test_alpha_drawn_picture_goes_onto_black_across_bands(small_bands: None) -> None:
    name, im = PICTURES[1]
    pixels = decode_image(_png(im, 1)).pixels
    alpha = np.asarray(im)[..., 3]
    assert np.abs(pixels[..., 0].astype(int) - alpha).max() <= 1  # white drawn in alpha, onto black


@pytest.mark.parametrize("orientation", [1, 6])
def test_streamed_pixel_digest_is_the_digest_of_the_full_decode(orientation: int) -> None:
    im = Image.fromarray(RNG.integers(0, 256, (300, 420, 3), dtype=np.uint8))
    exif = Image.Exif()
    exif[0x0112] = orientation
    for data in (_png(im, orientation), encode(im, "JPEG", quality=90, exif=exif)):
        expected = pixel_digest(decode_image(data))
        assert full_pixel_digest(data) == expected
        assert analyse(data, with_pixel_digest=True).fingerprint.pixel_digest == expected
