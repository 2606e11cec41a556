"""Hashes exchanged with other tools: reference PDQ equals what ThreatExchange's own hasher writes,
lookalike's pHash is imagehash's on opaque pictures (to within two bits), (``lookalike hash
--format`` writes both in the form those tools read: tests/cli/test_hash.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike import fingerprint, reference_pdq
from lookalike.walk import iter_image_files
from tests.images import CORPUS, EXAMPLES

OPAQUE = sorted((EXAMPLES / "library").iterdir()) + sorted((EXAMPLES / "uploads").iterdir())


def threatexchange_pdq(path: Path) -> tuple[str, int]:
    """PDQ as python-threatexchange's ``pdq_from_file`` computes and writes it: Pillow's decode,
    Meta's pdqhash, the vector's first bit most significant."""
    pdqhash = pytest.importorskip("pdqhash")
    with Image.open(path) as im:
        vector, quality = pdqhash.compute(np.ascontiguousarray(np.asarray(im.convert("RGB"))))
    return f"{int(''.join(str(int(b)) for b in vector), 2):064x}", int(quality)


def test_reference_pdq_is_what_threatexchange_writes() -> None:
    pytest.importorskip("pdqhash")
    for path in OPAQUE:
        ref = reference_pdq(path)
        assert (ref.hex, ref.quality) == threatexchange_pdq(path), path.name


def test_the_builtin_256_bit_hash_is_pdq_like_not_pdq() -> None:
    """Close to reference PDQ (well inside its 31-bit match threshold) but not equal: the README says so."""
    pytest.importorskip("pdqhash")
    distances = []
    for path in OPAQUE:
        ours = int(format(int.from_bytes(fingerprint(path).pdq, "big"), "0256b")[::-1], 2)  # PDQ's bit order
        distances.append(reference_pdq(path).distance_bits(type(reference_pdq(path))(f"{ours:064x}", 0)))
    assert max(distances) <= 31
    assert sum(d > 0 for d in distances) >= len(distances) // 2


def _opaque_photos() -> list[Path]:
    photos = [*OPAQUE]
    if CORPUS.is_dir():  # the public benchmark corpus, beside the repository in CI
        photos += list(iter_image_files([CORPUS / "photos"]))[:40]
    return photos


def test_phash_is_imagehashs_on_opaque_pictures() -> None:
    imagehash = pytest.importorskip("imagehash")
    bits = []
    for path in _opaque_photos():
        fp = fingerprint(path)
        if fp.has_alpha:
            continue
        with Image.open(path) as im:
            theirs = imagehash.phash(im)
        bits.append((int(fp.phash) ^ int(str(theirs), 16)).bit_count())
    assert max(bits) <= 2, bits  # imagehash resamples with Lanczos from a full decode: a bit pair may move
    assert sum(b == 0 for b in bits) >= 0.6 * len(bits), bits
