"""The pixel digest: SHA-256 of the canonical full-resolution pixels.

Two files with the same digest show the same picture pixel for pixel (after
orientation and the alpha policy), whatever their bytes: a metadata-only
change or a lossless re-encode.
"""

from __future__ import annotations

import hashlib
import struct

import numpy as np
import numpy.typing as npt

from lookalike.decode import DecodedImage

__all__ = ["PixelDigester", "pixel_digest"]


def pixel_digest(image: DecodedImage) -> bytes:
    """SHA-256 over a small header (size) and the RGB bytes. ``image`` must be full resolution."""
    if image.reduced:
        raise ValueError("pixel_digest needs a full-resolution decode")
    h, w = image.pixels.shape[:2]
    digest = hashlib.sha256(b"lkpx1" + struct.pack(">II", w, h))
    digest.update(image.pixels.tobytes())
    return digest.digest()


class PixelDigester:
    """``pixel_digest`` computed from rows as a decode streams them (a ``decode.RowSink``), so that
    a full-resolution picture is never held as one array: the same bytes are hashed in the same
    order, so the digest is the same."""

    def __init__(self) -> None:
        self._hash = hashlib.sha256()
        self._rows_left = 0

    def start(self, width: int, height: int) -> None:
        self._hash = hashlib.sha256(b"lkpx1" + struct.pack(">II", width, height))
        self._rows_left = height

    def write(self, rows: npt.NDArray[np.uint8]) -> None:
        self._hash.update(np.ascontiguousarray(rows).data)
        self._rows_left -= rows.shape[0]

    def digest(self) -> bytes:
        """The pixel digest. Raises ``ValueError`` before every row was written."""
        if self._rows_left != 0:
            raise ValueError("the decode did not hand over every row")
        return self._hash.digest()
