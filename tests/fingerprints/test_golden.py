"""Golden values: the exact hashes of fixed pictures.

These pin the output of every hash. If one of them changes, stored fingerprints
no longer match new ones: bump ``FINGERPRINT_VERSION`` (fingerprints/model.py)
in the same change, then update the values here.

Only structured pictures are pinned. The hashes of flat and gradient pictures
come from coefficients at rounding-noise level and are not stable enough to pin.

Version 2 (2026-12-02): the stamp's white margins tie, and in version 1 the tied bits of its dHash
followed the CPU's BLAS rounding (...0d on an Intel machine, ...0c on an AMD EPYC). The grid and
the DCTs are now computed without BLAS in a fixed order, and ties give 0 on every machine
(``test_determinism`` runs the path under other BLAS kernels and SIMD levels).
"""

from __future__ import annotations

import pytest

from lookalike import fingerprint
from lookalike.fingerprints import FINGERPRINT_VERSION
from tests.images import EXAMPLES, encode, photo, stamp

GOLDEN_VERSION = 2

GOLDEN = {
    # photo(320, 240, seed=0) as PNG: full-size path
    "photo0": {
        "phash": "b566b9e1469c438d",
        "dhash": "871e3ceccc1e3a78",
        "ahash": "c0800420f7cf9f3e",
        "whash": "c0810620f7cf9f3f",
        "pdq": "cc70731bc1958ce439ce873b1ab522c4ce4a9dce23b1dd4bb94a66a4ccb59399",
        "pdq_quality": 100,
    },
    # photo(900, 600, seed=1) as PNG: reduced (box-averaged) decode path
    "photo1_900x600": {
        "phash": "a2b7d4216ccd2cda",
        "dhash": "2c6d69cfcb93b6b6",
        "ahash": "a7af252161417f16",
        "whash": "a7af252161417f1e",
        "pdq": "6f73a85341a7d90b989e58dcb54a38cc97ad397cd29c99d902db398c34ac19e4",
        "pdq_quality": 89,
    },
    # stamp(200, seed=0) as RGBA PNG: alpha composited onto white
    "stamp": {
        "phash": "f9c786309bc63869",
        "dhash": "0c0f0f271b0f0f0c",
        "ahash": "ffe7c18181c3e7ff",
        "whash": "ffc381818181c3ff",
        "pdq": "9f0a0ddd70f736628da0709dd27dc9362dda36497a268d9386c9c364f0b234d9",
        "pdq_quality": 100,
    },
    # the committed examples/library/coffee.jpg
    "coffee": {
        "phash": "bb8320376c0f3637",
        "dhash": "f3e95b331e2b0f36",
        "ahash": "3f7f3fbb838180c3",
        "whash": "3f7f3fbb818080c1",
        "pdq": "0799413c6fe599e31f876d786f9e6584364f6401661dc19d326c66596e794632",
        "pdq_quality": 100,
    },
}


def _picture(name: str) -> bytes:
    if name == "photo0":
        return encode(photo(320, 240, seed=0), "PNG")
    if name == "photo1_900x600":
        return encode(photo(900, 600, seed=1), "PNG")
    if name == "stamp":
        return encode(stamp(200, seed=0), "PNG")
    return (EXAMPLES / "library" / "coffee.jpg").read_bytes()


@pytest.mark.parametrize("name", list(GOLDEN))
def test_golden_hashes(name: str) -> None:
    fp = fingerprint(_picture(name))
    d = fp.to_dict()
    got = {key: d[key] for key in ("phash", "dhash", "ahash", "whash", "pdq", "pdq_quality")}  # type: ignore[literal-required]
    assert got == GOLDEN[name], "hash output changed: bump FINGERPRINT_VERSION and update the golden values"


def test_golden_values_belong_to_this_fingerprint_version() -> None:
    assert FINGERPRINT_VERSION == GOLDEN_VERSION, "FINGERPRINT_VERSION changed: recompute the golden values"
