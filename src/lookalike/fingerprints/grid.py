"""The resampling path every perceptual signal starts from, owned here so that
hashes do not change when Pillow, OpenCV, a BLAS library or the CPU does.

``colour_grid`` turns RGB pixels into a 64 x 64 x 3 grid by exact area
averaging: each grid cell is the mean of the (fractional) pixels it covers,
summed in integers and divided once (``arithmetic.area_sums``).
``luma_grid`` is its BT.601 luminance (averaging and the luma weights are both
linear, so the order does not matter). Area averaging is symmetric, so a flipped or 90-degree-turned picture
gives exactly the flipped or turned grid, which the DCT-hash variants rely on.
Coarser grids (32 x 32, 16 x 16, 8 x 8) are block means of this one.

Nothing here goes through BLAS (see ``arithmetic``): every value is the same bits on every CPU.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt

from lookalike.decode import halve
from lookalike.fingerprints.arithmetic import area_sums, ordered_matmul, ordered_sum

__all__ = [
    "GRID", "LUMA_WEIGHTS", "area_weights", "block_mean", "colour_grid", "luma_grid", "resize_area",
]  # fmt: skip

#: side of the base grid
GRID = 64

#: ITU-R BT.601 luma weights (the ones JPEG and Pillow's "L" mode use)
LUMA_WEIGHTS = (0.299, 0.587, 0.114)

Float = npt.NDArray[np.float64]


@lru_cache(maxsize=256)
def area_weights(size_in: int, size_out: int) -> Float:
    """Matrix (size_out, size_in) whose rows average the input samples each output cell covers."""
    edges = np.arange(size_out + 1, dtype=np.float64) * (size_in / size_out)
    lo = np.arange(size_in, dtype=np.float64)
    left = np.maximum(lo[None, :], edges[:-1, None])
    right = np.minimum(lo[None, :] + 1.0, edges[1:, None])
    weights: Float = np.clip(right - left, 0.0, None) / (size_in / size_out)
    weights.setflags(write=False)
    return weights


def resize_area(plane: Float, rows: int, cols: int) -> Float:
    """Area-average a 2-D float array to ``rows`` x ``cols`` (in a fixed order of operations)."""
    return ordered_matmul(
        ordered_matmul(area_weights(plane.shape[0], rows), plane), area_weights(plane.shape[1], cols).T
    )


def colour_grid(rgb: npt.NDArray[np.uint8]) -> Float:
    """64 x 64 x 3 area-averaged RGB (0..255) of an (h, w, 3) uint8 image.

    Pictures with both sides of 4 x 64 pixels or more are first halved by
    exact 2 x 2 integer box averaging (``lookalike.decode.halve``), which
    costs a fraction of what it saves; the last halving is made inside the area sums, row by row
    (a halved picture of its own, through Pillow, had cost twice the sums). The area sums are
    exact integers; each cell is then one correctly rounded division.
    """
    while min(rgb.shape[:2]) // 2 >= 4 * GRID:  # two halvings or more to go
        rgb = halve(rgb)
    sums, denominator = area_sums(rgb, GRID, halved=min(rgb.shape[:2]) >= 4 * GRID)
    grid: Float = sums / np.float64(denominator)
    return grid


def luma_grid(grid_rgb: Float) -> Float:
    """64 x 64 BT.601 luminance of a ``colour_grid`` (element-wise, in a fixed order)."""
    r, g, b = LUMA_WEIGHTS
    luma: Float = grid_rgb[..., 0] * r + grid_rgb[..., 1] * g + grid_rgb[..., 2] * b
    return luma


def block_mean(grid: Float, side: int) -> Float:
    """Mean of equal square blocks: a (n, n) grid to (side, side); n must be a multiple of side."""
    n = grid.shape[0]
    k = n // side
    blocks = grid.reshape(side, k, side, k).transpose(1, 3, 0, 2).reshape(k * k, side, side)
    means: Float = ordered_sum(blocks) / np.float64(k * k)
    return means
