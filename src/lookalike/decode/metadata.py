"""What a file says about itself besides its pixels: when it was taken, whether it is lossless,
and small previews for reports. Read without decoding more than needed."""

from __future__ import annotations

import io
import re
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image

from lookalike.config import DecodeLimits
from lookalike.decode.image import decode_image

__all__ = ["FileFacts", "file_facts", "preview_jpeg", "preview_pixels"]

_LOSSLESS_MIMES = frozenset({"image/png", "image/bmp", "image/gif", "image/tiff"})
_EXIF_IFD = 0x8769
_DATETIME_ORIGINAL = 0x9003
_DATETIME = 0x0132
_EXIF_DATE = re.compile(r"^(\d{4}):(\d{2}):(\d{2})[ T](\d{2}):(\d{2}):(\d{2})")


@dataclass(frozen=True, slots=True)
class FileFacts:
    """``taken_at``: EXIF DateTimeOriginal (else DateTime) as ``YYYY-MM-DDTHH:MM:SS``, or None;
    ``lossless``: the file's encoding loses nothing (PNG, BMP, GIF, TIFF, lossless WebP)."""

    taken_at: str | None
    lossless: bool


def file_facts(data: bytes, mime: str) -> FileFacts:
    """The ``FileFacts`` of an image file's bytes (already known to decode, of type ``mime``)."""
    lossless = mime in _LOSSLESS_MIMES or (mime == "image/webp" and _webp_lossless(data))
    return FileFacts(taken_at=_taken_at(data), lossless=lossless)


def _webp_lossless(data: bytes) -> bool:
    head = data[12:16]
    if head == b"VP8L":
        return True
    if head == b"VP8X":  # extended: the image chunk follows the optional ICCP/ANIM/ALPH chunks
        return b"VP8L" in data[:4096] and b"VP8 " not in data[:4096]
    return False


def _taken_at(data: bytes) -> str | None:
    if b"Exif" not in data[:65536] and not data.startswith((b"II*\x00", b"MM\x00*")):
        return None  # no EXIF block near the start: nothing to parse
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns on odd EXIF and big pictures: metadata only
            with Image.open(io.BytesIO(data)) as im:
                exif = im.getexif()
                value = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    except Exception:  # best effort: a malformed EXIF block only costs the date, never the file
        return None
    if not isinstance(value, str):
        return None
    m = _EXIF_DATE.match(value.strip())
    if m is None or m.group(1) == "0000":
        return None
    y, mo, d, h, mi, s = m.groups()
    return f"{y}-{mo}-{d}T{h}:{mi}:{s}"


def preview_jpeg(data: bytes, *, max_side: int = 256, quality: int = 80, limits: DecodeLimits | None = None) -> bytes:
    """A JPEG preview of an image's upright canonical pixels, its long side at most ``max_side``.

    Raises the ``InputError`` subclasses of ``decode_image``."""
    im = Image.fromarray(preview_pixels(data, max_side=max_side, limits=limits), "RGB")
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def preview_pixels(data: bytes, *, max_side: int = 512, limits: DecodeLimits | None = None) -> npt.NDArray[np.uint8]:
    """Upright canonical RGB pixels (h, w, 3) with the long side at most ``max_side``."""
    decoded = decode_image(data, limits=limits, min_side=max_side // 2 or 1)
    im = Image.fromarray(decoded.pixels, "RGB")
    im.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(im, dtype=np.uint8)
