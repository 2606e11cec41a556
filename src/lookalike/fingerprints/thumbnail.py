"""The luminance thumbnail and colour statistics.

Binary hashes carry little information for featureless pictures (gradients,
flat colours, near-blank screenshots): two different gradients can hash to
the same bits. These two signals keep the actual levels, so such pictures can
still be told apart:

* the luminance thumbnail: 16 x 16 block means of the 64 x 64 grid, rounded
  to 8 bits;
* colour statistics: mean and standard deviation of Y, Cb and Cr (JPEG's
  full-range BT.601 conversion) over the 64 x 64 area-averaged colour grid,
  so that they do not depend on the picture's resolution.

Both are computed element-wise and summed in ``arithmetic``'s fixed order (same bits on every CPU).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.arithmetic import ordered_moments
from lookalike.fingerprints.grid import block_mean

__all__ = ["THUMB_SIDE", "colour_stats", "luma_thumbnail"]

THUMB_SIDE = 16

_YCC = (
    (0.299, 0.587, 0.114),
    (-0.168736, -0.331264, 0.5),
    (0.5, -0.418688, -0.081312),
)


def luma_thumbnail(grid64: npt.NDArray[np.float64]) -> bytes:
    """16 x 16 luminance, row-major, one byte a cell."""
    cells = np.clip(np.rint(block_mean(grid64, THUMB_SIDE)), 0, 255).astype(np.uint8)
    return cells.tobytes()


def colour_stats(grid_rgb: npt.NDArray[np.float64]) -> tuple[float, ...]:
    """(mean Y, mean Cb, mean Cr, std Y, std Cb, std Cr) of a colour grid, rounded to float32;
    Cb and Cr centred on 0."""
    r, g, b = (grid_rgb[..., c].reshape(-1) for c in range(3))
    ycc = np.stack([r * row[0] + g * row[1] + b * row[2] for row in _YCC], axis=1)  # (cells, 3), element-wise
    mean, std = ordered_moments(ycc)
    stats = np.concatenate([mean, std]).astype(np.float32)
    return tuple(float(v) for v in stats)
