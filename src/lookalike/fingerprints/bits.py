"""Packing boolean hash bits into integers and bytes, and counting differences."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

__all__ = ["bits_to_bytes", "bits_to_int", "hamming_bytes", "hamming_int"]


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
