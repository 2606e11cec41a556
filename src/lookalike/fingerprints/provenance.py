"""What a picture's pixels say of where they came from, for choosing the original of a group of
copies: how many colours it holds (a palette of 256 or fewer is a lossy reduction, whatever the
format) and whether a lossless file carries a JPEG's 8 x 8 block grid (it was decoded from one).

``PixelFacts`` reads the full-resolution pixels as a decode streams them (a ``decode.RowSink``),
so the picture is never held whole; ``colours`` and ``grid_step`` read the result.

The grid: a JPEG stores each 8 x 8 block's DCT coefficients divided by a step and rounded, so the
blocks of its decode have DC coefficients (8 x the block's mean luminance, less 1024) close to
multiples of the luminance table's DC step; a picture that never went through a JPEG has them
spread evenly. The step is estimated as the largest whose multiples the DC coefficients of the
textured blocks cluster on (Fan and de Queiroz, "Identification of bitmap compression history:
JPEG detection and quantizer estimation", IEEE Trans. Image Processing 12(2), 2003, estimate
each coefficient's step from its histogram; the DC alone suffices here). Flat blocks are left
out: a flat area of integer levels has a DC on multiples of 8 whatever its history.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits
from lookalike.decode import decode_image

__all__ = ["COLOURS_CAP", "DECODED_LEVELS", "PixelFacts", "decoded_alike", "estimate_grid_step", "pixel_facts"]

#: the second picture's working-size decode, which ``decoded_alike`` does not use: as small as it gets
_SMALL_SIDE = 8
#: distinct colours are counted up to this many (a photo has far more; a palette 256 at most)
COLOURS_CAP = 65_535
#: pixels sampled for the colour count (rows and columns at a stride): a palette's colours all
#: show up in a sample this size, and a photo's count stays far above 256
_COLOUR_SAMPLE = 1 << 18
#: textured blocks the grid estimate looks at, at most (spread evenly over the picture)
_MAX_BLOCKS = 60_000
#: fewer textured blocks than this and the grid is not judged
_MIN_BLOCKS = 150
#: a block is textured when its luminance varies by this much (standard deviation, grey levels)
_TEXTURED_STD = 2.0
#: steps tried: under 3 the rounding of the pixels hides the grid
_STEPS = range(3, 65)
#: mean cos(2 pi DC / step) from which the DC coefficients cluster on the step's multiples
#: (evenly spread values give 0 +- 0.08 over 150 blocks; a decode at step 3 about 0.6)
_CLUSTERED = 0.45


class PixelFacts:
    """A ``decode.RowSink`` that counts a picture's colours (on a sample) and collects the DC
    coefficients of its textured 8 x 8 blocks, aligned on the top-left corner as a JPEG's are."""

    def __init__(self, *, grid: bool = True) -> None:
        self._grid = grid
        self._width = self._height = 0
        self._row_stride = self._col_stride = 1
        self._row = 0
        self._samples: list[npt.NDArray[np.uint32]] = []
        self._counted: tuple[int, float] | None = None
        self._pending: npt.NDArray[np.float32] | None = None  # luminance rows short of a block row
        self._dc: list[npt.NDArray[np.float32]] = []
        self._block_stride = 1
        self.started = False

    def start(self, width: int, height: int) -> None:
        """Called with the upright size before the first band."""
        self._width, self._height = width, height
        self.started = True
        stride = max(1, int(np.ceil(np.sqrt(width * height / _COLOUR_SAMPLE))))
        self._row_stride = self._col_stride = stride
        blocks = (width // 8) * (height // 8)
        self._block_stride = max(1, blocks // (4 * _MAX_BLOCKS))

    def write(self, rows: npt.NDArray[np.uint8]) -> None:
        """The next rows, (k, width, 3) uint8."""
        first = (-self._row) % self._row_stride
        sample = rows[first :: self._row_stride, :: self._col_stride].reshape(-1, 3).astype(np.uint32)
        if len(sample):
            packed = (sample[:, 0] << 16) | (sample[:, 1] << 8) | sample[:, 2]
            self._samples.append(packed.astype(np.uint32))
        self._row += rows.shape[0]
        if not self._grid:
            return
        luma = rows.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
        if self._pending is not None:
            luma = np.concatenate([self._pending, luma])
        whole = luma.shape[0] // 8 * 8
        self._pending = luma[whole:] if whole < luma.shape[0] else None
        if whole and self._width >= 8:
            w = self._width // 8 * 8
            blocks = luma[:whole, :w].reshape(whole // 8, 8, w // 8, 8).transpose(0, 2, 1, 3).reshape(-1, 64)
            blocks = blocks[:: self._block_stride]
            textured = blocks[blocks.std(axis=1) >= _TEXTURED_STD]
            self._dc.append(8.0 * (textured.mean(axis=1) - 128.0))

    def _count(self) -> tuple[int, float]:
        if self._counted is None:
            packed = np.concatenate(self._samples) if self._samples else np.zeros(0, np.uint32)
            _, counts = np.unique(packed, return_counts=True)
            top = np.sort(counts)[::-1][:256].sum() / max(1, len(packed))
            self._counted = int(min(len(counts), COLOURS_CAP + 1)), float(top)
            self._samples = []
        return self._counted

    @property
    def colours(self) -> int:
        """Distinct colours in the sample, at most ``COLOURS_CAP + 1``."""
        return self._count()[0]

    @property
    def top_share(self) -> float:
        """Share of the sampled pixels in the sample's 256 most frequent colours: 1.0 for a
        palette, near 1 for a drawing of a few flat colours saved as JPEG, low for a photo."""
        return self._count()[1]

    @property
    def grid_step(self) -> int:
        """The DC step of the JPEG these pixels were decoded from, 0 when they show none."""
        dc = np.concatenate(self._dc) if self._dc else np.zeros(0, np.float32)
        return estimate_grid_step(dc)


def estimate_grid_step(dc: npt.NDArray[np.floating]) -> int:
    """The largest step in 3..64 whose multiples the DC coefficients ``dc`` cluster on, else 0."""
    if len(dc) < _MIN_BLOCKS:
        return 0
    if len(dc) > _MAX_BLOCKS:
        dc = dc[:: len(dc) // _MAX_BLOCKS + 1]
    values = dc.astype(np.float64)
    for step in reversed(_STEPS):
        if float(np.cos(2.0 * np.pi * values / step).mean()) >= _CLUSTERED:
            return step
    return 0


def pixel_facts(pixels: npt.NDArray[np.uint8], *, grid: bool = True) -> PixelFacts:
    """``PixelFacts`` of a whole (h, w, 3) uint8 picture (without ``grid``, its colours only)."""
    facts = PixelFacts(grid=grid)
    facts.start(pixels.shape[1], pixels.shape[0])
    facts.write(pixels)
    return facts


class _Within:
    """A ``decode.RowSink`` comparing a decode's rows with ``pixels``, row for row."""

    def __init__(self, pixels: npt.NDArray[np.uint8]) -> None:
        self._pixels = pixels
        self.rows = 0
        self.alike = True

    def start(self, width: int, height: int) -> None:
        self.alike = (height, width) == self._pixels.shape[:2]

    def write(self, rows: npt.NDArray[np.uint8]) -> None:
        if self.alike:
            mine = self._pixels[self.rows : self.rows + rows.shape[0]].astype(np.int16)
            self.alike = int(np.abs(mine - rows.astype(np.int16)).max(initial=0)) <= DECODED_LEVELS
        self.rows += rows.shape[0]


#: grey levels two decodes of one JPEG may differ by (another decoder's colour conversion and rounding)
DECODED_LEVELS = 1


def decoded_alike(a: bytes, b: bytes, *, limits: DecodeLimits | None = None) -> bool:
    """Whether two files decode to the same size and pixels within ``DECODED_LEVELS`` of each
    other everywhere: a lossless file holding a JPEG's decode made by another decoder (whose
    colour conversion rounds otherwise). A re-encode as JPEG, even at quality 100 with its colour
    subsampled, moves pixels at colour edges by far more. One picture is held whole, the other
    streamed. Raises the ``InputError`` subclasses of ``decode_image``."""
    first = decode_image(a, limits=limits).pixels
    within = _Within(first)
    decode_image(b, limits=limits, min_side=_SMALL_SIDE, full_rows=within)
    return within.alike and within.rows == first.shape[0]
