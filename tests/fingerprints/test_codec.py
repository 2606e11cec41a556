"""The versioned bytes and text forms of a fingerprint: exact round trips, and typed errors for anything else."""

from __future__ import annotations

import json
import os
import string
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lookalike import (
    Fingerprint,
    FingerprintError,
    fingerprint,
    fingerprint_from_bytes,
    fingerprint_from_text,
    fingerprint_to_bytes,
    fingerprint_to_text,
)
from tests.images import encode, photo, stamp

U64 = st.integers(min_value=0, max_value=2**64 - 1)

fingerprints = st.builds(
    Fingerprint,
    sha256=st.binary(min_size=32, max_size=32),
    phash_variants=st.tuples(*[U64] * 8),
    dhash=U64,
    ahash=U64,
    whash=U64,
    pdq=st.binary(min_size=32, max_size=32),
    pdq_quality=st.integers(min_value=0, max_value=100),
    thumbnail=st.binary(min_size=256, max_size=256),
    colour=st.tuples(*[st.floats(width=32, allow_nan=False)] * 6),
    width=st.integers(min_value=1, max_value=2**32 - 1),
    height=st.integers(min_value=1, max_value=2**32 - 1),
    byte_size=st.integers(min_value=0, max_value=2**63),
    mime=st.sampled_from(["image/jpeg", "image/png", "image/webp", "image/heic", "image/avif"]),
    name=st.text(max_size=300),
    has_alpha=st.booleans(),
    pixel_digest=st.none() | st.binary(min_size=32, max_size=32),
    version=st.integers(min_value=0, max_value=2**16 - 1),
)


@settings(max_examples=60, deadline=None, database=None)
@given(fingerprints)
def test_bytes_round_trip_is_exact(fp: Fingerprint) -> None:
    assert fingerprint_from_bytes(fingerprint_to_bytes(fp)) == fp


@settings(max_examples=60, deadline=None, database=None)
@given(fingerprints)
def test_text_round_trip_is_exact(fp: Fingerprint) -> None:
    text = fingerprint_to_text(fp)
    assert text.startswith("lkfp1.")
    assert set(text[len("lkfp1.") :]) <= set(string.ascii_letters + string.digits + "-_")  # URL-safe, no padding
    assert fingerprint_from_text(text) == fp


@pytest.mark.parametrize(
    "data",
    [encode(photo(320, 240, seed=1), "JPEG"), encode(stamp(120), "PNG")],
    ids=["photo", "transparent"],
)
def test_real_fingerprint_round_trips(data: bytes) -> None:
    fp = fingerprint(data)
    for copy in (fingerprint_from_bytes(fingerprint_to_bytes(fp)), fingerprint_from_text(fingerprint_to_text(fp))):
        assert copy == fp
        assert copy.to_dict() == fp.to_dict()


def test_pixel_digest_survives_the_round_trip() -> None:
    fp = fingerprint(encode(photo(64, 48), "PNG")).with_pixel_digest(b"\x07" * 32)
    assert fingerprint_from_text(fingerprint_to_text(fp)).pixel_digest == b"\x07" * 32


def test_fingerprint_of_a_file_with_a_non_utf8_name_serialises(tmp_path: Path) -> None:
    path = tmp_path / os.fsdecode(b"caf\xe9.png")
    try:
        path.write_bytes(encode(photo(64, 48), "PNG"))
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system does not take non-UTF-8 names")
    fp = fingerprint(path)
    assert fingerprint_from_text(fingerprint_to_text(fp)) == fp


@pytest.fixture(scope="module")
def serialised() -> bytes:
    return fingerprint_to_bytes(fingerprint(encode(photo(64, 48, seed=2), "PNG")))


def test_truncated_bytes_are_a_fingerprint_error(serialised: bytes) -> None:
    for cut in (0, 1, 3, 10, 100, len(serialised) // 2, len(serialised) - 1):
        with pytest.raises(FingerprintError):
            fingerprint_from_bytes(serialised[:cut])


def test_extra_bytes_are_a_fingerprint_error(serialised: bytes) -> None:
    with pytest.raises(FingerprintError):
        fingerprint_from_bytes(serialised + b"\x00")


def test_wrong_magic_or_format_is_a_fingerprint_error(serialised: bytes) -> None:
    with pytest.raises(FingerprintError, match="not a serialised"):
        fingerprint_from_bytes(b"XYZ" + serialised[3:])
    with pytest.raises(FingerprintError, match="format 2"):
        fingerprint_from_bytes(serialised[:3] + b"\x02" + serialised[4:])


@settings(max_examples=150, deadline=None, database=None)
@given(st.binary(max_size=800))
def test_random_bytes_never_raise_anything_but_fingerprint_error(data: bytes) -> None:
    try:
        fingerprint_from_bytes(data)
    except FingerprintError:
        pass


@settings(max_examples=100, deadline=None, database=None)
@given(st.data())
def test_damaged_serialisation_never_raises_anything_but_fingerprint_error(
    serialised: bytes, data: st.DataObject
) -> None:
    damaged = bytearray(serialised)
    for _ in range(data.draw(st.integers(min_value=1, max_value=8))):
        damaged[data.draw(st.integers(min_value=0, max_value=len(damaged) - 1))] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(min_value=0, max_value=len(damaged)))
    try:
        fingerprint_from_bytes(bytes(damaged[:cut]))
    except FingerprintError:
        pass


@pytest.mark.parametrize(
    "text",
    ["", "lkfp1.", "lkfp2.AAAA", "hello", "lkfp1.@@@@", "lkfp1.é", "lkfp1.A", "lkfp1." + "A" * 500],
)
def test_bad_text_is_a_fingerprint_error(text: str) -> None:
    with pytest.raises(FingerprintError):
        fingerprint_from_text(text)


def test_damaged_text_is_a_fingerprint_error(serialised: bytes) -> None:
    text = fingerprint_to_text(fingerprint_from_bytes(serialised))
    with pytest.raises(FingerprintError):
        fingerprint_from_text(text[:-7])


def test_to_dict_is_json(serialised: bytes) -> None:
    fp = fingerprint_from_bytes(serialised)
    d = json.loads(json.dumps(fp.to_dict()))
    assert d["phash"] == f"{fp.phash:016x}"
    assert d["pdq"] == fp.pdq.hex()
    assert d["width"] == fp.width and d["mime"] == fp.mime
    assert len(d["phash_variants"]) == 8
