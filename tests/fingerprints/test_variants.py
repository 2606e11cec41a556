"""The eight pHash variants: ``phash_variants[k]`` is the pHash of the picture under ``Dihedral(k)``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import Dihedral, fingerprint
from lookalike.decode import decode_image
from lookalike.fingerprints import transform_pixels
from tests.images import EXAMPLES, encode, photo

PICTURES = {
    "photo-320x240": lambda: encode(photo(320, 240, seed=3), "PNG"),
    "photo-301x177": lambda: encode(photo(301, 177, seed=4), "PNG"),  # odd sizes: fractional grid cells
    "photo-700x520": lambda: encode(photo(700, 520, seed=5), "PNG"),  # reduced decode
    "coffee": lambda: (EXAMPLES / "library" / "coffee.jpg").read_bytes(),
}


def _transformed_png(data: bytes, which: Dihedral) -> bytes:
    return _turned_png(decode_image(data).pixels, which)


def _turned_png(pixels: np.ndarray, which: Dihedral) -> bytes:
    return encode(Image.fromarray(np.ascontiguousarray(transform_pixels(pixels, which))), "PNG")


@pytest.mark.parametrize("name", list(PICTURES))
def test_each_variant_is_the_phash_of_the_transformed_picture(name: str) -> None:
    data = PICTURES[name]()
    variants = fingerprint(data).phash_variants
    assert len(variants) == 8
    pixels = decode_image(data).pixels
    for which in Dihedral:
        turned = fingerprint(_turned_png(pixels, which))
        assert turned.phash == variants[which], f"{which.name}: {(turned.phash ^ variants[which]).bit_count()} bits"


def test_variants_of_a_photo_are_all_different() -> None:
    variants = fingerprint(PICTURES["coffee"]()).phash_variants
    assert len(set(variants)) == 8


@pytest.mark.parametrize("which", list(Dihedral))
def test_transformed_copy_is_found_at_distance_zero_with_its_turn(which: Dihedral) -> None:
    data = PICTURES["photo-320x240"]()
    original = fingerprint(data)
    turned = fingerprint(_transformed_png(data, which))
    assert original.dihedral_distance_bits(turned) == (0, which)


def test_transform_pixels_matches_its_names() -> None:
    x = np.arange(6, dtype=np.uint8).reshape(2, 3)  # [[0 1 2] [3 4 5]]
    expected = {
        Dihedral.IDENTITY: x,
        Dihedral.FLIP_LR: np.fliplr(x),
        Dihedral.FLIP_UD: np.flipud(x),
        Dihedral.ROT180: np.rot90(x, 2),
        Dihedral.TRANSPOSE: x.T,
        Dihedral.ROT90: np.rot90(x, 1),
        Dihedral.ROT270: np.rot90(x, -1),
        Dihedral.ANTITRANSPOSE: np.rot90(x, 2).T,
    }
    for which, want in expected.items():
        assert np.array_equal(transform_pixels(x, which), want), which.name


def test_committed_examples_exist() -> None:
    assert isinstance(EXAMPLES, Path)
    assert (EXAMPLES / "library" / "coffee.jpg").is_file()


def test_variants_estimated_from_the_hash_alone_are_close_to_the_exact_ones() -> None:
    """From a 64-bit pHash alone (a client's hash check) the turned hashes can only be estimated:
    exact for the picture as it is, a few bits off for the turns (what ``Index.files_near`` allows)."""
    from lookalike.fingerprints import phash_variants_estimated

    errors = []
    for path in sorted((EXAMPLES / "library").iterdir()):
        fp = fingerprint(path)
        estimated = phash_variants_estimated(fp.phash)
        assert estimated[0] == fp.phash
        errors += [(e ^ exact).bit_count() for e, exact in zip(estimated[1:], fp.phash_variants[1:], strict=True)]
    assert len(errors) == 7 * 5
    assert np.median(errors) <= 4 and max(errors) <= 12, errors
