"""The Python API as its README section shows it: fingerprints of paths, bytes, URLs, Pillow images
and NumPy arrays; fingerprints that subtract like imagehash's; find_duplicates with no database."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

import lookalike
from lookalike import FetchLimits, Verdict
from tests.conftest import ImageServer
from tests.images import EXAMPLES, encode, photo, save

PICTURES = sorted((EXAMPLES / "library").iterdir()) + sorted((EXAMPLES / "uploads").iterdir())
QUICK = FetchLimits(connect_timeout_s=2.0, read_timeout_s=5.0)


def test_a_pillow_image_as_opened_is_its_file() -> None:
    for path in PICTURES:
        with Image.open(path) as im:
            assert lookalike.fingerprint(im) == lookalike.fingerprint(path), path.name


def test_pixels_without_a_file_have_the_files_signals_not_its_bytes(tmp_path: Path) -> None:
    """A loaded or converted Pillow image, or an array, has no file: its signals and size equal the
    file's; its sha256 is the digest of the pixels, so equal pixels are identical to each other."""
    png = save(photo(300, 200, seed=4), tmp_path / "p.png")
    for path in [*PICTURES, png]:
        from_file = lookalike.fingerprint(path)
        with Image.open(path) as im:
            im.load()
            loaded = lookalike.fingerprint(im)
            pixels = np.asarray(im.convert("RGB"))
        from_array = lookalike.fingerprint(pixels)
        assert loaded.same_picture_signals(from_file), path.name
        assert from_array.same_picture_signals(from_file), path.name
        assert (loaded.byte_size, loaded.mime, loaded.sha256 == from_file.sha256) == (0, "image/x-pixels", False)
        assert from_array == loaded  # the same pixels: the same fingerprint
        assert lookalike.compare(path, pixels).verdict is Verdict.SAME_PIXELS


def test_grey_and_transparent_arrays_follow_the_file_policies(tmp_path: Path) -> None:
    rgba = np.asarray(photo(120, 90, seed=2).convert("RGBA")).copy()
    rgba[:, :40, 3] = 0  # a clear band: composited onto white, as a file's would be
    path = save(Image.fromarray(rgba, "RGBA"), tmp_path / "clear.png")
    assert lookalike.fingerprint(rgba).same_picture_signals(lookalike.fingerprint(path))
    grey = np.asarray(photo(120, 90, seed=3).convert("L"))
    assert lookalike.fingerprint(grey).same_picture_signals(
        lookalike.fingerprint(save(Image.fromarray(grey), tmp_path / "g.png"))
    )
    with pytest.raises(lookalike.InputError, match="uint8"):
        lookalike.fingerprint(grey.astype(np.float32))
    with pytest.raises(lookalike.InputError, match="shape"):
        lookalike.fingerprint(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(TypeError, match="Pillow image or a NumPy array"):
        lookalike.fingerprint(42)  # type: ignore[arg-type]


def test_bytes_urls_and_paths_agree(image_server: ImageServer) -> None:
    path = EXAMPLES / "library" / "coffee.jpg"
    url = image_server.add("coffee.jpg", path.read_bytes())
    by_path = lookalike.fingerprint(path)
    assert lookalike.fingerprint(path.read_bytes()).same_picture_signals(by_path)
    assert lookalike.fingerprint(url, fetch=QUICK).sha256 == by_path.sha256
    with Image.open(EXAMPLES / "uploads" / "coffee_small.webp") as copy:
        assert lookalike.compare(url, copy, fetch=QUICK).verdict is Verdict.NEAR_DUPLICATE


def test_fingerprints_subtract_to_a_hamming_distance_like_imagehash() -> None:
    imagehash = pytest.importorskip("imagehash")
    a = lookalike.fingerprint(EXAMPLES / "library" / "chelsea.jpg")
    b = lookalike.fingerprint(EXAMPLES / "uploads" / "coffee_small.webp")
    assert a - b == a.phash - b.phash == bin(int(a.phash) ^ int(b.phash)).count("1")
    assert 0 < a - b <= 64 and a - a == 0
    assert str(a.phash) == f"{int(a.phash):016x}" and a.dhash - a.dhash == 0
    with pytest.raises(TypeError, match="Hamming distance"):  # number arithmetic on a hash fails loudly
        a.phash - 1
    theirs = imagehash.hex_to_hash(str(a.phash)) - imagehash.hex_to_hash(str(b.phash))
    assert a - b == theirs  # the same number an imagehash user computes from the same hex


def test_stored_fingerprints_compare_through_the_public_api(tmp_path: Path) -> None:
    original = lookalike.fingerprint(EXAMPLES / "library" / "chelsea.jpg")
    text = lookalike.fingerprint_to_text(lookalike.fingerprint(EXAMPLES / "uploads" / "chelsea_mirrored.jpg"))
    c = lookalike.compare(original, lookalike.fingerprint_from_text(text))
    assert c.verdict is Verdict.NEAR_DUPLICATE and "mirrored" in c.explanation
    other = lookalike.fingerprint(EXAMPLES / "uploads" / "coins_new.jpg")
    assert lookalike.compare(original, other).verdict is Verdict.DIFFERENT
    flipped = lookalike.fingerprint(ImageOps.mirror(photo(200, 150, seed=1)))
    assert lookalike.compare(flipped, encode(photo(200, 150, seed=1), "PNG")).verdict is Verdict.NEAR_DUPLICATE


def test_find_duplicates_needs_no_database(tmp_path: Path) -> None:
    for db in (None, ":memory:"):
        result = lookalike.find_duplicates(EXAMPLES, db=db)
        groups = sorted(sorted(Path(m.path).name for m in g.members) for g in result.groups)
        assert ["chelsea.jpg", "chelsea_mirrored.jpg"] in groups
        assert not any("coins_new.jpg" in g for g in groups)
    assert list(tmp_path.iterdir()) == []
    kept = tmp_path / "find.db"
    lookalike.find_duplicates([EXAMPLES / "library", EXAMPLES / "uploads"], db=kept)
    assert kept.is_file()


def test_the_public_names() -> None:
    from lookalike import Index, find_duplicates, reference_pdq

    assert Index.__module__ == "lookalike.index.collection"
    assert callable(find_duplicates) and callable(reference_pdq)
    assert lookalike.__version__ != "0+unknown"
