"""Bytes to upright, canonical RGB pixels — safely.

The canonical picture is what a viewer shows:

* **Orientation**: the EXIF Orientation tag is applied, so a photo stored
  sideways with a tag reads as the upright picture.
* **Alpha policy**: transparent pixels are composited onto white, the way a
  web page with a white background shows them. A transparent PNG and the same
  graphic flattened onto white therefore decode to the same pixels. (Dropping
  the alpha channel instead would expose whatever colour the editor left under
  transparent pixels, which is arbitrary.) ``DecodedImage.has_alpha`` records
  that the source had transparency, whether an alpha channel, a palette entry or
  a PNG colour key (``tRNS`` on a truecolour or grey image, as browsers honour
  it). One exception: when the picture on white
  is blank (every pixel within ``_BLANK_LEVELS`` of one colour) while its
  alpha varies, the picture is drawn in the alpha channel alone (a light
  pattern made for dark backgrounds, a white logo) and it is composited onto
  black instead, so that such pictures stay distinguishable from each other
  and from a blank page.
* **Modes**: palette, CMYK, YCbCr, 1-bit, grayscale, LA and 16/32-bit
  grayscale are normalised to 8-bit RGB; 16-bit samples are scaled, not
  clipped. Grayscale stays gray in all three channels.
* **Animation**: the first frame of GIF, APNG and animated WebP.

Safety: only formats on the allow-list are decoded; the byte limit is checked
before parsing and the pixel limit against the size the header declares,
before any pixel is decoded. Every failure is a typed ``InputError``.

Speed: a caller that does not need full resolution passes ``min_side``; JPEGs
are then decoded at 1/2, 1/4 or 1/8 scale by the codec's DCT scaling
(Pillow's draft mode), and large images of other formats are box-reduced, so
the pixels handed back have a short side between ``min_side`` and about twice
that (never upscaled).
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from lookalike.config import DecodeLimits
from lookalike.errors import (
    CorruptImage,
    NotAnImage,
    TooLarge,
    TruncatedImage,
    UnsupportedFormat,
)

__all__ = ["DecodedImage", "ImageHeader", "decode_image", "halve", "read_header"]

_MIME = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "AVIF": "image/avif",
    "HEIF": "image/heic",
}

_HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")
_AVIF_BRANDS = (b"avif", b"avis")

# Orientation values 5..8 swap width and height.
_TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})

_heif_registered: bool | None = None


def _register_heif() -> bool:
    """Register pillow-heif's HEIF opener once, if the optional extra is installed."""
    global _heif_registered
    if _heif_registered is None:
        try:
            import pillow_heif

            pillow_heif.register_heif_opener()
            _heif_registered = True
        except ImportError:
            _heif_registered = False
    return _heif_registered


@dataclass(frozen=True, slots=True)
class DecodedImage:
    """Upright 8-bit RGB pixels and what the file said about itself.

    ``pixels`` has shape (h, w, 3) and may be smaller than ``width`` x
    ``height`` (the full upright size) when a reduced decode was asked for.
    """

    pixels: npt.NDArray[np.uint8]
    width: int
    height: int
    format: str
    mime: str
    has_alpha: bool

    @property
    def reduced(self) -> bool:
        """True when ``pixels`` is smaller than the full-resolution picture."""
        return bool(self.pixels.shape[0] != self.height or self.pixels.shape[1] != self.width)


@dataclass(frozen=True, slots=True)
class ImageHeader:
    """What a file declares before any pixel is decoded."""

    format: str
    mime: str
    width: int
    height: int


def _open(data: bytes, limits: DecodeLimits) -> Image.Image:
    """Identify ``data`` and check it against the limits, decoding no pixel."""
    if not data:
        raise NotAnImage("empty file (0 bytes)")
    if len(data) > limits.max_bytes:
        raise TooLarge(f"file is {len(data):,} bytes, over the limit of {limits.max_bytes:,}")
    if "HEIF" in limits.formats:
        _register_heif()
    try:
        # Pillow's own bomb check warns or raises at a process-wide limit;
        # ours is per call and comes right after, so its warning is noise.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise TooLarge(
            f"image declares more pixels than the limit of {limits.max_pixels:,} (a decompression bomb?)"
        ) from exc
    except UnidentifiedImageError as exc:
        if data[4:8] == b"ftyp" and data[8:12] in _AVIF_BRANDS:
            raise CorruptImage("damaged or truncated AVIF image: cannot read its header") from exc
        if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
            if "HEIF" in limits.formats and _register_heif():
                raise CorruptImage("damaged HEIC/HEIF image: cannot read its header") from exc
            raise UnsupportedFormat("HEIC/HEIF image: install lookalike[heif] (pillow-heif) to read it") from exc
        raise NotAnImage("not an image (no known image format recognised)") from exc
    except Exception as exc:  # noqa: BLE001 - the decoders' boundary (see _decoder_error)
        raise _decoder_error(exc, "cannot read image header") from exc
    fmt = im.format or "unknown"
    if fmt == "MPO":  # multi-picture JPEG from cameras: its first image is a plain JPEG
        fmt = "JPEG"
    if fmt not in limits.formats:
        raise UnsupportedFormat(f"{fmt} images are not supported (allowed: {', '.join(sorted(limits.formats))})")
    w, h = im.size
    if w <= 0 or h <= 0:
        raise CorruptImage(f"image declares an empty size {w}x{h}")
    if w * h > limits.max_pixels:
        raise TooLarge(f"image is {w}x{h} = {w * h:,} pixels, over the limit of {limits.max_pixels:,}")
    return im


def _decoder_error(exc: Exception, what: str) -> CorruptImage:
    """The typed error for whatever a decoder raised on bad data. Pillow raises OSError,
    SyntaxError, ValueError and EOFError, but its plugins raise what they like: pillow-heif a
    RuntimeError ("Security limit exceeded") for a HEIC whose size box was edited, others
    IndexError, TypeError, struct.error or MemoryError. All of them describe the data, so all
    become ``CorruptImage``: one bad file must never abort a run over many."""
    text = " ".join(str(exc).split())
    return CorruptImage(f"{what}: {text or type(exc).__name__}")


def read_header(data: bytes, *, limits: DecodeLimits | None = None) -> ImageHeader:
    """Format, MIME type and upright size of an image, decoding no pixel.

    Raises the same ``InputError`` subclasses as ``decode_image`` for what the
    header alone reveals.
    """
    limits = limits or DecodeLimits()
    im = _open(data, limits)
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    w, h = im.size
    if _orientation(im) in _TRANSPOSING_ORIENTATIONS:
        w, h = h, w
    return ImageHeader(format=fmt, mime=_MIME[fmt], width=w, height=h)


def _orientation(im: Image.Image) -> int:
    """The EXIF Orientation tag (1 when absent or unreadable), read without decoding pixels.

    Pillow's ``getexif`` decodes a whole PNG to look for a late eXIf chunk, so
    it is consulted only where the header already carried EXIF (or, for
    TIFF, where the tags are the header)."""
    if im.format != "TIFF" and "exif" not in im.info:
        return 1
    try:
        value = im.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
        return 1  # malformed EXIF is not worth refusing the picture for
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


def decode_image(data: bytes, *, limits: DecodeLimits | None = None, min_side: int | None = None) -> DecodedImage:
    """Decode ``data`` into upright canonical RGB pixels (see the module docstring).

    ``min_side``: when given, the pixels may be reduced so that their short
    side is at least ``min_side`` (never below the source's own size).

    Raises ``NotAnImage``, ``UnsupportedFormat``, ``TooLarge``,
    ``TruncatedImage`` or ``CorruptImage``.
    """
    limits = limits or DecodeLimits()
    im = _open(data, limits)
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    orientation = _orientation(im)
    full_w, full_h = im.size
    if orientation in _TRANSPOSING_ORIENTATIONS:
        full_w, full_h = full_h, full_w
    try:
        if min_side and fmt == "JPEG" and im.mode in ("RGB", "L", "YCbCr"):
            scale = _reduction(min(im.size), min_side)
            if scale > 1:
                im.draft(im.mode, (max(1, im.size[0] // scale), max(1, im.size[1] // scale)))
        im.load()
        rgb, has_alpha = _to_rgb(im)
        if min_side:
            factor = _reduction(min(rgb.shape[:2]), min_side)
            if factor > 1:
                rgb = _box_reduce(rgb, factor)
    except Image.DecompressionBombError as exc:
        raise TooLarge(
            f"image declares more pixels than the limit of {limits.max_pixels:,} (a decompression bomb?)"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - the decoders' boundary (see _decoder_error)
        text = " ".join(str(exc).split())  # codecs' messages may span lines
        if "truncated" in text.lower() or isinstance(exc, EOFError) or "ended" in text.lower():
            raise TruncatedImage(f"truncated {fmt} image: the data ends before the picture does") from exc
        raise _decoder_error(exc, f"cannot decode {fmt} image") from exc
    rgb = _apply_orientation(rgb, orientation)
    return DecodedImage(
        pixels=np.ascontiguousarray(rgb),
        width=full_w,
        height=full_h,
        format=fmt,
        mime=_MIME[fmt],
        has_alpha=has_alpha,
    )


def _reduction(short_side: int, min_side: int) -> int:
    """The largest power of two (at most 8) that keeps ``short_side`` >= ``min_side``."""
    factor = 1
    while factor < 8 and short_side // (factor * 2) >= min_side:
        factor *= 2
    return factor


def _box_reduce(rgb: npt.NDArray[np.uint8], factor: int) -> npt.NDArray[np.uint8]:
    """Mean of each ``factor`` x ``factor`` block, rounded half up (Pillow's ``reduce``; edge rows
    and columns that do not fill a block are averaged over what they have)."""
    return np.asarray(Image.fromarray(rgb).reduce(factor), dtype=np.uint8)


def halve(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Exact 2 x 2 box average, ``(a + b + c + d + 2) >> 2``, of (h, w, 3) uint8 pixels (an odd last
    row or column is dropped). Integer arithmetic: the same on every machine and version."""
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    return _box_reduce(np.ascontiguousarray(rgb[:h, :w]), 2)


def _apply_orientation(rgb: npt.NDArray[np.uint8], orientation: int) -> npt.NDArray[np.uint8]:
    """Turn stored pixels upright as EXIF Orientation 1..8 says (TIFF 6.0 / Exif 2.32 semantics)."""
    turned: npt.NDArray[np.uint8] = rgb
    if orientation == 2:
        turned = rgb[:, ::-1]
    elif orientation == 3:
        turned = rgb[::-1, ::-1]
    elif orientation == 4:
        turned = rgb[::-1, :]
    elif orientation == 5:
        turned = rgb.transpose(1, 0, 2)
    elif orientation == 6:
        turned = np.rot90(rgb, k=-1)
    elif orientation == 7:
        turned = np.rot90(rgb, k=1)[:, ::-1]
    elif orientation == 8:
        turned = np.rot90(rgb, k=1)
    return turned


def _to_rgb(im: Image.Image) -> tuple[npt.NDArray[np.uint8], bool]:
    """8-bit RGB pixels of ``im`` under the alpha and mode policies above."""
    mode = im.mode
    if mode == "P" or mode == "PA":
        has_alpha = mode == "PA" or "transparency" in im.info
        im = im.convert("RGBA" if has_alpha else "RGB")
        mode = im.mode
    if mode in ("RGB", "L") and "transparency" in im.info:  # a PNG colour key (tRNS): that colour is clear
        im = im.convert("RGBA")
        mode = im.mode
    if mode in ("RGBa", "La"):
        im = im.convert("RGBA" if mode == "RGBa" else "LA")
        mode = im.mode
    if mode == "RGBA":
        return _flatten(np.asarray(im, dtype=np.uint8)), True
    if mode == "LA":
        la = np.asarray(im, dtype=np.uint8)
        rgba = np.concatenate([np.repeat(la[..., :1], 3, axis=2), la[..., 1:]], axis=2)
        return _flatten(rgba), True
    if mode == "RGB":
        return np.asarray(im, dtype=np.uint8), False
    if mode == "L":
        gray = np.asarray(im, dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), False
    if mode == "1":
        gray = np.asarray(im.convert("L"), dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), False
    if mode.startswith("I;16") or mode == "I":
        wide = np.asarray(im).astype(np.int64)
        gray = ((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), False
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(im, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2), False
    # CMYK, YCbCr, LAB, HSV and any other mode Pillow can turn into RGB
    return np.asarray(im.convert("RGB"), dtype=np.uint8), False


#: grey levels within which a composite counts as blank (see the alpha policy)
_BLANK_LEVELS = 2


def _flatten(rgba: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Composite straight (non-premultiplied) RGBA onto white, rounding to nearest; onto black
    when the picture on white is blank but the alpha is not (see the module docstring)."""
    rgb = rgba[..., :3].astype(np.uint32)
    alpha = rgba[..., 3:4].astype(np.uint32)
    out = (rgb * alpha + 255 * (255 - alpha) + 127) // 255
    if _spread(out) <= _BLANK_LEVELS and _spread(alpha) > _BLANK_LEVELS:
        out = (rgb * alpha + 127) // 255
    return out.astype(np.uint8)


def _spread(values: npt.NDArray[np.uint32]) -> int:
    """The largest range of any channel."""
    flat = values.reshape(-1, values.shape[-1])
    return int((flat.max(axis=0) - flat.min(axis=0)).max()) if flat.size else 0
