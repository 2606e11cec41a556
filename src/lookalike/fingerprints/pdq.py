"""PDQ: Meta's 256-bit perceptual hash and its quality score, from our grid.

PDQ (ThreatExchange, "The TMK+PDQF and PDQ hashing algorithms", 2019) takes a
64 x 64 low-passed luminance image, keeps the 16 x 16 lowest non-DC
frequencies of its DCT (rows 1..16 of the 64-point DCT-II), and sets each bit
whose coefficient is above their median. Its quality score sums the image's
gradients (each step scaled to 0..100, truncated), divides by 90 and caps at
100; Meta advises not to trust matches of hashes with quality below 50.

lookalike runs these stages on its own 64 x 64 area-averaged grid instead of
PDQ's Jarosz tent filter, so the resampling is the same one every other signal
uses and stays under our control. The hashes are therefore close to, not
always bit-equal with, reference PDQ (the tests measure how close); bits are
stored row-major, most significant first. Products run in ``arithmetic``'s fixed order, so
the bits are the same on every CPU.
"""

from __future__ import annotations

from decimal import Decimal
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.arithmetic import cos_pi, ordered_matmul
from lookalike.fingerprints.bits import above_median, bits_to_bytes

__all__ = ["pdq"]

Float = npt.NDArray[np.float64]


@lru_cache(maxsize=1)
def _pdq_dct() -> Float:
    # sqrt(2 / 64) * cos(pi / 128 * i * (2j + 1)), in decimal and rounded once (``cos_pi``)
    scale = (Decimal(2) / 64).sqrt()
    m: Float = np.array([[cos_pi(i * (2 * j + 1), 128, scale) for j in range(64)] for i in range(1, 17)])
    m.setflags(write=False)
    return m


def _quality(grid64: Float) -> int:
    down = np.trunc((grid64[:-1, :] - grid64[1:, :]) * 100.0 / 255.0)
    across = np.trunc((grid64[:, :-1] - grid64[:, 1:]) * 100.0 / 255.0)
    total = int(np.abs(down).sum() + np.abs(across).sum())
    return min(100, total // 90)


def pdq(grid64: Float) -> tuple[bytes, int]:
    """(256-bit hash as 32 bytes, quality 0..100) of a 64 x 64 luminance grid."""
    d = _pdq_dct()
    coefficients = ordered_matmul(ordered_matmul(d, grid64), d.T)
    levels = np.clip(np.rint(grid64), 0, 255).astype(np.uint8).tobytes()  # turns with the picture
    return bits_to_bytes(above_median(coefficients.reshape(1, -1), salt=levels)), _quality(grid64)
