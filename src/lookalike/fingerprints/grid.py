"""The resampling path every perceptual signal starts from, owned here so that
hashes do not change when Pillow, OpenCV or a BLAS library does.

``colour_grid`` turns RGB pixels into a 64 x 64 x 3 grid by exact area
averaging: each grid cell is the mean of the (fractional) pixels it covers.
``luma_grid`` is its BT.601 luminance (averaging and the luma weights are both
linear, so the order does not matter). Area averaging is symmetric, so a flipped or 90-degree-turned picture
gives exactly the flipped or turned grid, which the DCT-hash variants rely on.
Coarser grids (32 x 32, 16 x 16, 8 x 8) are block means of this one.
"""

from __future__ import annotations

from functools import cache, lru_cache

import numpy as np
import numpy.typing as npt
from threadpoolctl import threadpool_limits

from lookalike.decode import halve

__all__ = [
    "GRID", "LUMA_WEIGHTS", "area_weights", "block_mean", "colour_grid", "luma_grid", "one_blas_thread", "resize_area",
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


@cache
def one_blas_thread() -> None:
    """Turn the BLAS library's thread pool off in this process, once.

    Each product here is one picture's, a few million multiply-adds: too small for BLAS threads
    to pay for their hand-offs, and callers already run one process per core. With the pool on,
    its idle threads spin while they wait, and on two busy cores a check cost 2.5 times the CPU
    (measured: 702 benchmark queries, 40.8 against 16.3 CPU-seconds). The same policy as OpenCV's
    pool (``fingerprints.local.opencv``)."""
    threadpool_limits(1, user_api="blas")


def resize_area(plane: Float, rows: int, cols: int) -> Float:
    """Area-average a 2-D float array to ``rows`` x ``cols``."""
    one_blas_thread()
    out: Float = area_weights(plane.shape[0], rows) @ plane @ area_weights(plane.shape[1], cols).T
    return out


def colour_grid(rgb: npt.NDArray[np.uint8]) -> Float:
    """64 x 64 x 3 area-averaged RGB (0..255) of an (h, w, 3) uint8 image.

    Pictures with both sides of 4 x 64 pixels or more are first halved by
    exact 2 x 2 integer box averaging (``lookalike.decode.halve``), which
    costs a fraction of what it saves. The large
    first pass (rows) runs in float32 for speed; its error is far below one
    grey level. The second pass and everything after run in float64.
    """
    one_blas_thread()
    while min(rgb.shape[:2]) >= 4 * GRID:
        rgb = halve(rgb)
    h, w = rgb.shape[:2]
    rows = area_weights(h, GRID).astype(np.float32) @ rgb.reshape(h, w * 3).astype(np.float32)
    per_channel = rows.reshape(GRID, w, 3).transpose(0, 2, 1).reshape(GRID * 3, w).astype(np.float64)
    cells = per_channel @ area_weights(w, GRID).T  # (64 rows x 3 channels, 64 columns)
    grid: Float = np.ascontiguousarray(cells.reshape(GRID, 3, GRID).transpose(0, 2, 1))  # (64, 64, 3)
    return grid


def luma_grid(grid_rgb: Float) -> Float:
    """64 x 64 BT.601 luminance of a ``colour_grid``."""
    luma: Float = grid_rgb @ np.array(LUMA_WEIGHTS)
    return luma


def block_mean(grid: Float, side: int) -> Float:
    """Mean of equal square blocks: a (n, n) grid to (side, side); n must be a multiple of side."""
    n = grid.shape[0]
    k = n // side
    means: Float = grid.reshape(side, k, side, k).mean(axis=(1, 3))
    return means
