"""aHash, dHash and wHash from the 64 x 64 luminance grid.

* aHash: 8 x 8 block means above their mean (imagehash's ``average_hash``).
* dHash: an 8-row, 9-column area-averaged grid; each bit says whether a cell is
  brighter than its left neighbour (imagehash's ``dhash``; Krawetz, "Kind of
  like that", 2013).
* wHash: imagehash's Haar ``whash`` removes the lowest Haar band (the global
  mean) and keeps the approximation band at 8 x 8; on an orthonormal Haar
  basis that band is the 8 x 8 block means (scaled), so the hash is those
  means above their median.

Each compares grey levels rounded to a millionth (``_settled``): cells that are equal in exact
arithmetic (a plain background, a flat border) can come out of the weighted sums a few ULPs
apart, and a tie should give 0, not whichever way the rounding fell. A millionth of a grey level
is far below any real difference between cells. (The arithmetic itself is the same on every CPU:
see ``arithmetic``.)
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.arithmetic import ordered_sum
from lookalike.fingerprints.bits import bits_to_int
from lookalike.fingerprints.grid import block_mean, resize_area

__all__ = ["ahash", "dhash", "whash"]

Float = npt.NDArray[np.float64]


def _settled(values: Float) -> Float:
    rounded: Float = np.round(values, 6)
    return rounded


def ahash(grid64: Float) -> int:
    """64-bit average hash."""
    means = _settled(block_mean(grid64, 8))
    return bits_to_int(means > _settled(ordered_sum(means.reshape(-1)) / np.float64(means.size)))


def dhash(grid64: Float) -> int:
    """64-bit horizontal difference hash."""
    cells = _settled(resize_area(grid64, 8, 9))
    return bits_to_int(cells[:, 1:] > cells[:, :-1])


def whash(grid64: Float) -> int:
    """64-bit Haar wavelet hash."""
    means = _settled(block_mean(grid64, 8))
    return bits_to_int(means > np.median(means))
