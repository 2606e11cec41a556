"""The pixel digest: SHA-256 of the canonical full-resolution pixels.

Two files with the same digest show the same picture pixel for pixel (after
orientation and the alpha policy), whatever their bytes: a metadata-only
change or a lossless re-encode.
"""

from __future__ import annotations

import hashlib
import struct

from lookalike.decode import DecodedImage

__all__ = ["pixel_digest"]


def pixel_digest(image: DecodedImage) -> bytes:
    """SHA-256 over a small header (size) and the RGB bytes. ``image`` must be full resolution."""
    if image.reduced:
        raise ValueError("pixel_digest needs a full-resolution decode")
    h, w = image.pixels.shape[:2]
    digest = hashlib.sha256(b"lkpx1" + struct.pack(">II", w, h))
    digest.update(image.pixels.tobytes())
    return digest.digest()
