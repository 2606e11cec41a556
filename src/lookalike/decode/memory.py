"""Pictures already in memory (a Pillow image, a NumPy array) as bytes the decoder reads.

A Pillow image straight from ``Image.open`` has decoded no pixel yet: its file's bytes are read
back from its file object, so it is fingerprinted exactly as the file is (same SHA-256, size and
format). Any other image (loaded, converted, drawn, or a NumPy array) has no file: its pixels are
written to a lossless PNG in memory, which the one decoder then reads like any file, so the alpha
and orientation policies stay in one place.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, ImageFile

from lookalike.errors import InputError, TooLarge

__all__ = ["InMemory", "is_in_memory", "memory_bytes"]

#: what ``memory_bytes`` accepts
InMemory = Image.Image | np.ndarray[Any, Any]

#: modes a PNG holds as they are; anything else is converted first (as the decoder would convert it)
_PNG_MODES = frozenset({"1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"})


def is_in_memory(obj: object) -> bool:
    """True for a Pillow image or a NumPy array."""
    return isinstance(obj, Image.Image | np.ndarray)


def memory_bytes(obj: InMemory, *, max_bytes: int) -> tuple[bytes, bool]:
    """(bytes, True) for an unloaded ``Image.open`` result (its file's own bytes), else (a lossless PNG
    of the pixels, False). Raises ``InputError`` for an array of another shape or type, ``TooLarge``
    over ``max_bytes``."""
    if isinstance(obj, np.ndarray):
        return _png(_from_array(obj), max_bytes=max_bytes), False
    source = _file_bytes(obj, max_bytes=max_bytes)
    if source is not None:
        return source, True
    return _png(obj, max_bytes=max_bytes), False


def _file_bytes(im: Image.Image, *, max_bytes: int) -> bytes | None:
    """The bytes of the file ``im`` was opened from, when no pixel of it has been decoded (so none
    can have been changed) and it shows its first frame."""
    fp = getattr(im, "fp", None)
    if not isinstance(im, ImageFile.ImageFile) or fp is None or getattr(im, "_im", None) is not None or im.tell():
        return None
    try:
        at = fp.tell()
        fp.seek(0)
        data = fp.read(max_bytes + 1)
        fp.seek(at)
    except (OSError, ValueError, AttributeError):
        return None  # not seekable, or closed: use the pixels
    if len(data) > max_bytes:
        raise TooLarge(f"image is over the limit of {max_bytes:,} bytes")
    return bytes(data)


def _from_array(a: np.ndarray[Any, Any]) -> Image.Image:
    if a.dtype != np.uint8:
        raise InputError(f"a NumPy picture must be uint8 (0..255), not {a.dtype}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        return Image.fromarray(np.ascontiguousarray(a), "L")
    if a.ndim == 3 and a.shape[2] in (3, 4):
        return Image.fromarray(np.ascontiguousarray(a), "RGB" if a.shape[2] == 3 else "RGBA")
    raise InputError(f"a NumPy picture must be (h, w) grey, (h, w, 3) RGB or (h, w, 4) RGBA, not shape {a.shape}")


def _png(im: Image.Image, *, max_bytes: int) -> bytes:
    if im.width <= 0 or im.height <= 0:
        raise InputError(f"an empty picture ({im.width}x{im.height})")
    if im.mode not in _PNG_MODES:
        im = im.convert("RGBA" if "A" in im.mode or "a" in im.mode else "RGB")
    info: dict[str, Any] = {}
    orientation = im.getexif().get(0x0112) if "exif" in im.info else None
    if orientation:  # a loaded photo still carries its Orientation tag: the decoder turns it upright
        exif = Image.Exif()
        exif[0x0112] = orientation
        info["exif"] = exif
    buf = io.BytesIO()
    im.save(buf, "PNG", compress_level=1, **info)
    if buf.tell() > max_bytes:
        raise TooLarge(f"picture is {buf.tell():,} bytes as PNG, over the limit of {max_bytes:,}")
    return buf.getvalue()
