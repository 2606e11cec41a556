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
  is blank (every pixel within ``pixels.BLANK_LEVELS`` of one colour) while its
  alpha varies, the picture is drawn in the alpha channel alone (a light
  pattern made for dark backgrounds, a white logo) and it is composited onto
  black instead, so that such pictures stay distinguishable from each other
  and from a blank page.
* **Modes**: palette, CMYK, YCbCr, 1-bit, grayscale, LA and 16/32-bit
  grayscale are normalised to 8-bit RGB; 16-bit samples are scaled, not
  clipped. Grayscale stays gray in all three channels.
* **Animation**: the first frame of GIF, APNG and animated WebP.

Safety: only formats on the allow-list are decoded; the byte limit is checked
before parsing, and the pixel limit against the size the header declares and
a JPEG's scans against ``max_scans`` (``decode.budget``), before any pixel is
decoded. Every failure is a typed ``InputError``.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
from PIL import Image, UnidentifiedImageError

from lookalike.config import DecodeLimits
from lookalike.decode.budget import check_jpeg_scans
from lookalike.decode.pixels import (
    TRANSPOSING_ORIENTATIONS,
    apply_orientation,
    band_rgb,
    box_reduce,
    has_alpha,
    onto_black,
)
from lookalike.errors import (
    CorruptImage,
    InputError,
    NotAnImage,
    TooLarge,
    TruncatedImage,
    UnsupportedFormat,
)

__all__ = ["DECODE_BYTES_PER_PIXEL", "DecodedImage", "ImageHeader", "RowSink", "decode_image", "read_header"]

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

#: Peak memory a decode needs, bytes per declared pixel, by format: measured as the growth of a
#: process's peak resident memory while ``analyse(..., local=True, with_pixel_digest=True)`` took a
#: 4000 x 3000 picture (what an upload costs), rounded up: JPEG 5.4, PNG 5.9 (RGB) / 7.0 (RGBA),
#: TIFF 7.3, GIF 5.0, BMP 5.9, HEIF 8.0 / 8.9, AVIF 10.1 / 12.6 and WebP 18.0 (Pillow's WebP
#: reader decodes through libwebp's animation decoder, which keeps two canvases besides the
#: picture). 10- and 12-bit AVIF/HEIF decode through 16-bit buffers: their entries carry a margin.
DECODE_BYTES_PER_PIXEL: dict[str, int] = {
    "JPEG": 6, "PNG": 8, "TIFF": 8, "GIF": 6, "BMP": 6, "HEIF": 12, "AVIF": 16, "WEBP": 19,
}  # fmt: skip

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
    im = _identify(data, limits)
    _check_declared(im, data, limits)
    return im


def _identify(data: bytes, limits: DecodeLimits) -> Image.Image:
    """Pillow's ``Image.open`` of ``data`` (its header only), its failures as typed errors."""
    try:
        # Pillow's own bomb check warns or raises at a process-wide limit;
        # ours is per call and comes right after, so its warning is noise. So are its
        # UserWarnings about damaged metadata (a TIFF's corrupt EXIF): the file is judged by
        # whether it decodes, and a typed error says so when it does not.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            warnings.simplefilter("ignore", UserWarning)
            return Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise TooLarge(
            f"image declares more pixels than the limit of {limits.max_pixels:,} (a decompression bomb?)"
        ) from exc
    except UnidentifiedImageError as exc:
        raise _unidentified(data) from exc
    except RuntimeError as exc:  # pillow-heif reports libheif's failures so, its security limits included
        raise _heif_failure(exc) from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise CorruptImage(f"cannot read the image's header: {_damage(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - the decoders' boundary: plugins raise what they like
        raise CorruptImage(f"cannot read the image's header: {_damage(exc)}") from exc


def _unidentified(data: bytes) -> InputError:
    """Why Pillow recognised no format: a damaged AVIF or HEIF header, HEIF without its extra, or no image."""
    if data[4:8] == b"ftyp" and data[8:12] in _AVIF_BRANDS:
        return CorruptImage("damaged or truncated AVIF image: cannot read its header")
    if data[4:8] == b"ftyp" and data[8:12] in _HEIF_BRANDS:
        if _heif_registered:
            return CorruptImage("damaged HEIC/HEIF image: cannot read its header")
        return UnsupportedFormat("HEIC/HEIF image: install lookalike[heif] (pillow-heif) to read it")
    return NotAnImage("not an image (no known image format recognised)")


def _check_declared(im: Image.Image, data: bytes, limits: DecodeLimits) -> None:
    """Refuse what the header declares beyond the limits: a format not allowed, an empty size, too
    many JPEG scans, too many pixels, or more memory to decode than allowed."""
    fmt = im.format or "unknown"
    if fmt == "MPO":  # multi-picture JPEG from cameras: its first image is a plain JPEG
        fmt = "JPEG"
    if fmt not in limits.formats:
        raise UnsupportedFormat(f"{fmt} images are not supported (allowed: {', '.join(sorted(limits.formats))})")
    w, h = im.size
    if w <= 0 or h <= 0:
        raise CorruptImage(f"image declares an empty size {w}x{h}")
    if fmt == "JPEG":
        check_jpeg_scans(data, max_scans=limits.max_scans)
    if w * h > limits.max_pixels:
        raise TooLarge(f"image is {w}x{h} = {w * h:,} pixels, over the limit of {limits.max_pixels:,}")
    need = w * h * DECODE_BYTES_PER_PIXEL[fmt]
    if limits.max_decode_bytes is not None and need > limits.max_decode_bytes:
        most = limits.max_decode_bytes // DECODE_BYTES_PER_PIXEL[fmt]
        raise TooLarge(
            f"{fmt} image of {w}x{h} = {w * h:,} pixels needs about {need // 2**20:,} MB to decode, over the "
            f"limit of {limits.max_decode_bytes // 2**20:,} MB ({most:,} pixels for {fmt})"
        )


def read_header(data: bytes, *, limits: DecodeLimits | None = None) -> ImageHeader:
    """Format, MIME type and upright size of an image, decoding no pixel.

    Raises the same ``InputError`` subclasses as ``decode_image`` for what the
    header alone reveals.
    """
    limits = limits or DecodeLimits()
    im = _open(data, limits)
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    w, h = im.size
    if _orientation(im) in TRANSPOSING_ORIENTATIONS:
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
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # Pillow's notes on damaged tags: see _open
            value = im.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError, TypeError, KeyError, IndexError, struct.error):
        return 1  # malformed EXIF is not worth refusing the picture for
    return int(value) if isinstance(value, int) and 1 <= value <= 8 else 1


class RowSink(Protocol):
    """Receives the upright, canonical full-resolution pixels of a decode, a band of rows at a time,
    top to bottom (``decode_image(..., full_rows=sink)``), without the whole picture ever being held
    as one array: a pixel digest streams through one."""

    def start(self, width: int, height: int) -> None:
        """Called once, before the first band, with the upright size."""

    def write(self, rows: npt.NDArray[np.uint8]) -> None:
        """The next rows, (k, width, 3) uint8."""


def decode_image(
    data: bytes, *, limits: DecodeLimits | None = None, min_side: int | None = None, full_rows: RowSink | None = None
) -> DecodedImage:
    """Decode ``data`` into upright canonical RGB pixels (see the module docstring).

    ``min_side``: when given, the pixels may be reduced so that their short
    side is at least ``min_side`` (never below the source's own size).
    ``full_rows``: also hand the full-resolution upright pixels to this sink, band by band, from the
    same decode where the format allows (a JPEG reduced by its codec is decoded a second time, at
    full size, for the sink).

    Memory: the codec's own picture (Pillow keeps 1 to 4 bytes a pixel) and bands of about
    ``_BAND_PIXELS`` pixels; the full-size RGB array (3 bytes a pixel) only when no ``min_side``
    is given, since that is what the caller asked for.

    Raises ``NotAnImage``, ``UnsupportedFormat``, ``TooLarge``, ``TooManyScans``,
    ``TruncatedImage`` or ``CorruptImage``.
    """
    limits = limits or DecodeLimits()
    im = _open(data, limits)
    fmt = "JPEG" if im.format == "MPO" else str(im.format)
    orientation = _orientation(im)
    full_w, full_h = im.size
    if orientation in TRANSPOSING_ORIENTATIONS:
        full_w, full_h = full_h, full_w
    with _decoding(fmt, limits):
        drafted = False
        if min_side and fmt == "JPEG" and im.mode in ("RGB", "L", "YCbCr"):
            scale = _reduction(min(im.size), min_side)
            if scale > 1:
                im.draft(im.mode, (max(1, im.size[0] // scale), max(1, im.size[1] // scale)))
                drafted = True
        im.load()
        _check_decoded_size(im, limits)
        black = onto_black(im, band_pixels_max=_BAND_PIXELS)
        factor = _reduction(min(im.size), min_side) if min_side else 1
        sink = None if drafted else full_rows
        rgb = _source_pixels(im, black, factor, full_rows=sink if orientation == 1 else None)
        if sink is not None and orientation != 1:
            _upright_rows(im, orientation, black, sink)
        alpha = has_alpha(im)
        del im  # the codec's picture: free it before a second decode
        if full_rows is not None and drafted:
            full = _open(data, limits)
            full.load()
            _check_decoded_size(full, limits)
            _upright_rows(full, orientation, onto_black(full, band_pixels_max=_BAND_PIXELS), full_rows)
            del full
    rgb = apply_orientation(rgb, orientation)
    return DecodedImage(
        pixels=np.ascontiguousarray(rgb),
        width=full_w,
        height=full_h,
        format=fmt,
        mime=_MIME[fmt],
        has_alpha=alpha,
    )


@contextmanager
def _decoding(fmt: str, limits: DecodeLimits) -> Iterator[None]:
    """Every error a codec raises while it decodes pixels, as a typed ``InputError``."""
    try:
        yield
    except Image.DecompressionBombError as exc:
        raise TooLarge(
            f"image declares more pixels than the limit of {limits.max_pixels:,} (a decompression bomb?)"
        ) from exc
    except RuntimeError as exc:
        raise _heif_failure(exc) from exc
    except MemoryError as exc:
        raise TooLarge(f"not enough memory to decode this {fmt} image") from exc
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        text = " ".join(str(exc).split())  # codecs' messages may span lines
        if "truncated" in text.lower() or isinstance(exc, EOFError) or "ended" in text.lower():
            raise TruncatedImage(f"truncated {fmt} image: the data ends before the picture does") from exc
        raise CorruptImage(f"cannot decode {fmt} image: {_damage(exc)}") from exc
    except Exception as exc:  # noqa: BLE001 - the decoders' boundary: plugins raise what they like (struct.error, ...)
        raise CorruptImage(f"cannot decode {fmt} image: {_damage(exc)}") from exc


def _damage(exc: BaseException) -> str:
    """What is wrong with the data, in words of our own: the codec's message (kept as the error's
    cause) may name library internals, which a service must not pass on to its clients."""
    if isinstance(exc, SyntaxError | OSError) and "broken" in str(exc).lower():
        return "its compressed data is broken"
    return "the data is damaged or uses a feature the decoder does not support"


def _heif_failure(exc: RuntimeError) -> InputError:
    """The typed error for a ``RuntimeError`` out of a codec (pillow-heif raises libheif's errors so:
    a crafted size box, a security limit, a damaged stream)."""
    # The declared size has passed the pixel limit by now (``_open``), so a size the decoder's own
    # limits refuse means the file codes another size than it declares: damaged, or crafted.
    if "limit" in str(exc).lower():
        return CorruptImage("damaged image: its coded size does not match the size it declares")
    return CorruptImage("damaged image: the decoder cannot read it")


def _check_decoded_size(im: Image.Image, limits: DecodeLimits) -> None:
    """The size the codec produced, against the pixel limit (a container may declare less)."""
    w, h = im.size
    if w * h > limits.max_pixels:
        raise TooLarge(f"image decodes to {w}x{h} = {w * h:,} pixels, over the limit of {limits.max_pixels:,}")


#: pixels converted at a time: bands of about 1 M pixels keep a conversion's working arrays near
#: 10 MB whatever the picture's size (a 6000 x 6000 RGBA picture had needed 2 GB in uint32 at once)
_BAND_PIXELS = 1 << 20


def _source_pixels(
    im: Image.Image, onto_black: bool, factor: int, *, full_rows: RowSink | None
) -> npt.NDArray[np.uint8]:
    """The canonical RGB pixels of ``im`` as stored (not yet upright), box-reduced by ``factor``,
    converted a band of rows at a time; each full-resolution band also goes to ``full_rows``."""
    w, h = im.size
    step = max(factor, _BAND_PIXELS // max(1, w) // factor * factor)
    if full_rows is not None:
        full_rows.start(w, h)
    out: npt.NDArray[np.uint8] | None = None
    parts: list[npt.NDArray[np.uint8]] = []
    for top in range(0, h, step):
        band = band_rgb(im, (0, top, w, min(h, top + step)), onto_black)
        if full_rows is not None:
            full_rows.write(band)
        if factor > 1:
            parts.append(box_reduce(band, factor))
        else:
            if out is None:
                out = np.empty((h, w, 3), dtype=np.uint8)
            out[top : top + band.shape[0]] = band
    if factor > 1:
        return np.concatenate(parts, axis=0)
    return out if out is not None else np.empty((0, w, 3), dtype=np.uint8)


def _upright_rows(im: Image.Image, orientation: int, onto_black: bool, sink: RowSink) -> None:
    """Hand the upright full-resolution pixels of ``im`` to ``sink`` band by band: a band of
    upright rows is a band of stored rows or columns, turned."""
    w, h = im.size
    transposed = orientation in TRANSPOSING_ORIENTATIONS
    up_w, up_h = (h, w) if transposed else (w, h)
    sink.start(up_w, up_h)
    step = max(1, _BAND_PIXELS // max(1, up_w))
    for r0 in range(0, up_h, step):
        r1 = min(up_h, r0 + step)
        if orientation in (1, 2):
            box = (0, r0, w, r1)
        elif orientation in (3, 4):
            box = (0, h - r1, w, h - r0)
        elif orientation in (5, 6):
            box = (r0, 0, r1, h)
        else:
            box = (w - r1, 0, w - r0, h)
        sink.write(np.ascontiguousarray(apply_orientation(band_rgb(im, box, onto_black), orientation)))


def _reduction(short_side: int, min_side: int) -> int:
    """The largest power of two (at most 8) that keeps ``short_side`` >= ``min_side``."""
    factor = 1
    while factor < 8 and short_side // (factor * 2) >= min_side:
        factor *= 2
    return factor
