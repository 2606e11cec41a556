"""Setting hash bits, packing them into integers and bytes, and counting differences."""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt

__all__ = ["above_median", "bits_to_bytes", "bits_to_int", "hamming_bytes", "hamming_int"]

#: a coefficient within this fraction of the row's largest of the median is tied with it
_TIE = 1e-9


def above_median(rows: npt.NDArray[np.float64], *, salt: bytes = b"") -> npt.NDArray[np.bool_]:
    """Hash bits of each row of coefficients: above the row's median (pHash, PDQ).

    A coefficient tied with the median says neither: symmetric pictures (stripes, a checkerboard,
    a centred logo, a plain page) have many coefficients that are exactly zero, and so is the
    median. Such a bit is unknown, and two unrelated pictures should agree on about half of their
    unknown bits, not on all of them; so tied bits are drawn from a hash of the row's known bits
    and of where its ties are. The same picture (and the same picture flipped or turned, whose
    ties are the same) gets the same bits; different pictures get unrelated ones. ``salt`` adds
    what else the caller knows of the picture, for rows that may tie everywhere (PDQ leaves out
    the lowest frequencies, so vertical stripes tie in every bit, like a blank page). (Before
    fingerprint version 2 rounding noise decided these bits, differently on each CPU.)"""
    median = np.median(rows, axis=1, keepdims=True)
    bits = rows > median
    tied = np.abs(rows - median) <= _TIE * np.max(np.abs(rows), axis=1, keepdims=True)
    n = rows.shape[1]
    for i in np.flatnonzero(tied.any(axis=1)):
        known = np.packbits(bits[i] & ~tied[i]).tobytes() + np.packbits(tied[i]).tobytes() + salt
        drawn = np.unpackbits(np.frombuffer(hashlib.blake2b(known, digest_size=n // 8).digest(), np.uint8))
        bits[i, tied[i]] = drawn[tied[i]].astype(bool)
    return bits


def bits_to_int(bits: npt.NDArray[np.bool_]) -> int:
    """Row-major bits, first bit most significant (imagehash's hex order)."""
    return int.from_bytes(np.packbits(bits.ravel()).tobytes(), "big")


def bits_to_bytes(bits: npt.NDArray[np.bool_]) -> bytes:
    """Row-major bits packed big-endian into bytes."""
    return np.packbits(bits.ravel()).tobytes()


def hamming_int(a: int, b: int) -> int:
    """Number of differing bits of two non-negative integers."""
    return (a ^ b).bit_count()


def hamming_bytes(a: bytes, b: bytes) -> int:
    """Number of differing bits of two equal-length byte strings."""
    return (int.from_bytes(a, "big") ^ int.from_bytes(b, "big")).bit_count()
