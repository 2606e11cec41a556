"""What the signals promise: determinism, symmetric distances, informative featureless pictures, and
agreement with the reference implementations they follow."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
from PIL import Image

from lookalike import Signal, fingerprint
from lookalike.decode import decode_image
from tests.images import EXAMPLES, encode, flat, gradient, photo

LIBRARY = sorted((EXAMPLES / "library").glob("*.jpg"))


def test_same_bytes_give_the_same_fingerprint() -> None:
    data = encode(photo(400, 300, seed=12), "JPEG", quality=85)
    assert fingerprint(data) == fingerprint(bytes(data))


def test_same_pixels_in_another_lossless_format_give_the_same_hashes() -> None:
    im = photo(320, 240, seed=13)
    a, b = fingerprint(encode(im, "PNG")), fingerprint(encode(im, "TIFF"))
    assert a.sha256 != b.sha256
    for signal in Signal:
        assert a.distance_bits(b, signal) == 0
    assert (a.thumbnail, a.colour) == (b.thumbnail, b.colour)


def test_distances_are_symmetric_and_zero_on_the_diagonal() -> None:
    fps = [fingerprint(p) for p in LIBRARY[:4]]
    for signal in Signal:
        for a, b in itertools.product(fps, repeat=2):
            d = a.distance_bits(b, signal)
            assert d == b.distance_bits(a, signal)
            assert 0 <= d <= signal.bits
        for a in fps:
            assert a.distance_bits(a, signal) == 0


def test_unrelated_photos_are_far_apart() -> None:
    fps = [fingerprint(p) for p in LIBRARY]
    for a, b in itertools.combinations(fps, 2):
        assert a.distance_bits(b, Signal.PHASH) >= 12, (a.name, b.name)
        assert a.distance_bits(b, Signal.PDQ) >= 64, (a.name, b.name)


def test_fingerprint_describes_the_file() -> None:
    data = encode(photo(333, 222, seed=14), "WEBP", quality=80)
    fp = fingerprint(data)
    assert (fp.width, fp.height, fp.byte_size, fp.mime) == (333, 222, len(data), "image/webp")
    assert len(fp.pdq) == 32 and len(fp.thumbnail) == 256 and len(fp.colour) == 6
    assert json.loads(json.dumps(fp.to_dict()))["byte_size"] == len(data)


FEATURELESS = {
    "red-vs-blue": (flat((200, 30, 30)), flat((30, 30, 200))),
    "dark-vs-light-grey": (flat((40, 40, 40)), flat((220, 220, 220))),
    "ramp-vs-shallow-ramp": (gradient(), gradient(start=60, stop=190)),
    "ramp-vs-brighter-ramp": (gradient(start=0, stop=160), gradient(start=90, stop=250)),
    "vertical-ramps": (gradient(vertical=True), gradient(start=100, stop=160, vertical=True)),
}


@pytest.mark.parametrize("name", list(FEATURELESS))
def test_featureless_pictures_are_told_apart_by_levels(name: str) -> None:
    """Binary hashes carry little for flat pictures and ramps; the thumbnail and colour statistics keep
    the actual levels, so two such pictures stay distinguishable whatever their hashes say."""
    a, b = (fingerprint(encode(im, "PNG")) for im in FEATURELESS[name])
    thumb_a = np.frombuffer(a.thumbnail, np.uint8).astype(int)
    thumb_b = np.frombuffer(b.thumbnail, np.uint8).astype(int)
    assert np.abs(thumb_a - thumb_b).mean() > 10 or max(abs(x - y) for x, y in zip(a.colour, b.colour)) > 10


def test_thumbnail_is_the_picture_in_small() -> None:
    fp = fingerprint(encode(gradient(256, 192), "PNG"))
    thumb = np.frombuffer(fp.thumbnail, np.uint8).reshape(16, 16)
    assert (np.diff(thumb.astype(int), axis=1) > 0).all()  # a left-to-right ramp
    assert thumb[:, 0].max() < 16 and thumb[:, -1].min() > 239
    assert (thumb == thumb[0]).all()  # every row alike


def test_colour_statistics_track_colour() -> None:
    red, grey = (fingerprint(encode(flat(c), "PNG")) for c in ((200, 30, 30), (128, 128, 128)))
    assert red.colour[2] > 50  # Cr: strongly red
    assert abs(grey.colour[1]) < 1 and abs(grey.colour[2]) < 1  # no chroma
    assert abs(grey.colour[0] - 128) < 1  # mean luma


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (128, 64, 200)])
def test_pdq_quality_is_low_for_flat_pictures(colour: tuple[int, int, int]) -> None:
    assert fingerprint(encode(flat(colour), "PNG")).pdq_quality < 50


def test_pdq_quality_is_low_for_a_smooth_ramp() -> None:
    assert fingerprint(encode(gradient(), "PNG")).pdq_quality < 50


def test_pdq_quality_is_high_for_photos() -> None:
    for path in LIBRARY:
        assert fingerprint(path).pdq_quality >= 80, path.name
    assert fingerprint(encode(photo(320, 240, seed=15), "PNG")).pdq_quality >= 80


def test_phash_dhash_ahash_whash_agree_with_imagehash() -> None:
    """The pHash follows imagehash's; the others use another resampling, so a few bits may move."""
    imagehash = pytest.importorskip("imagehash")
    for path in LIBRARY:
        fp = fingerprint(path)
        im = Image.fromarray(decode_image(path.read_bytes()).pixels)
        theirs = {
            Signal.PHASH: imagehash.phash(im),
            Signal.DHASH: imagehash.dhash(im),
            Signal.AHASH: imagehash.average_hash(im),
            Signal.WHASH: imagehash.whash(im),
        }
        limits = {Signal.PHASH: 4, Signal.DHASH: 14, Signal.AHASH: 10, Signal.WHASH: 4}
        for signal, value in theirs.items():
            d = (int(str(value), 16) ^ fp.code(signal)).bit_count()
            assert d <= limits[signal], f"{path.name} {signal}: {d} bits from imagehash"


def test_pdq_is_close_to_the_reference_implementation() -> None:
    """Within PDQ's own match threshold (31 bits) of Meta's reference on real photos. The reference
    numbers its bits the other way round, so its vector is reversed before comparing."""
    pdqhash = pytest.importorskip("pdqhash")
    for path in LIBRARY:
        fp = fingerprint(path)
        ref_bits, ref_quality = pdqhash.compute(np.ascontiguousarray(decode_image(path.read_bytes()).pixels))
        ours = np.unpackbits(np.frombuffer(fp.pdq, np.uint8))
        distance = int((np.asarray(ref_bits, dtype=np.uint8)[::-1] != ours).sum())
        assert distance <= 31, f"{path.name}: {distance} bits from reference PDQ"
        assert abs(int(ref_quality) - fp.pdq_quality) <= 20
