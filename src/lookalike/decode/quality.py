"""The JPEG quality a file was most likely saved with, read off its quantisation table."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image

__all__ = ["jpeg_dc_step", "jpeg_quality"]

# The IJG (libjpeg) standard luminance quantisation table, quality 50 (ITU-T T.81, Annex K).
_IJG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99],
    dtype=np.float64,
)  # fmt: skip


def _luma_table(data: bytes) -> np.ndarray | None:
    """The JPEG's luminance quantisation table (64 entries), or None."""
    if not data.startswith(b"\xff\xd8"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as im:
                tables = getattr(im, "quantization", None)
    except Exception:  # a header Pillow cannot read only costs the estimate
        return None
    if not tables or 0 not in tables:
        return None
    table = np.asarray(list(tables[0]), dtype=np.float64)
    return table if table.size == 64 else None


def jpeg_dc_step(data: bytes) -> int:
    """The step a JPEG's luminance DC coefficients were quantised with (0 for another format or
    an unreadable header): a lossless file decoded from it carries its DC on multiples of it
    (``fingerprints.provenance``)."""
    table = _luma_table(data)
    return 0 if table is None else int(table[0])


def jpeg_quality(data: bytes) -> float | None:
    """The IJG quality (1..100) a JPEG's luminance table was most likely made with, or None for
    another format or an unreadable header. The table is compared with the standard table scaled
    as libjpeg scales it (sum of entries, as in ImageMagick's estimate)."""
    table = _luma_table(data)
    if table is None:
        return None
    scale = 100.0 * float(table.sum()) / float(_IJG_LUMA.sum())
    quality = 5000.0 / scale if scale > 100 else (200.0 - scale) / 2.0
    return float(min(100.0, max(1.0, quality)))
