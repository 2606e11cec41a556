"""Compute a ``Fingerprint`` from one decode."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits, FetchLimits
from lookalike.decode import DecodedImage, RowSink, decode_image, read_source
from lookalike.decode.memory import InMemory, is_in_memory, memory_bytes
from lookalike.errors import InputError
from lookalike.fingerprints.dct import phash_coefficients, phash_variants
from lookalike.fingerprints.digest import PixelDigester
from lookalike.fingerprints.grid import block_mean, colour_grid, luma_grid
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.fingerprints.model import Fingerprint, PerceptualSignals
from lookalike.fingerprints.pdq import pdq
from lookalike.fingerprints.simple import ahash, dhash, whash
from lookalike.fingerprints.thumbnail import colour_stats, luma_thumbnail

__all__ = [
    "PIXELS_MIME",
    "WORKING_SIDE",
    "Analysis",
    "ImageSource",
    "analyse",
    "analyse_source",
    "fingerprint",
    "fingerprint_bytes",
    "full_pixel_digest",
    "grid_signals",
    "perceptual_signals",
]

#: Short side (in pixels) the perceptual signals are computed at. JPEGs are
#: decoded at 1/2, 1/4 or 1/8 scale to get near it: decoding, not hashing,
#: dominates the cost of a fingerprint.
WORKING_SIDE = 256


@dataclass(frozen=True, slots=True)
class Analysis:
    """A fingerprint together with the bytes, the working-size pixels and the
    64 x 64 colour grid it was computed from."""

    fingerprint: Fingerprint
    image: DecodedImage
    data: bytes
    grid: npt.NDArray[np.float64]
    local: LocalFeatures | None = None


def analyse(
    data: bytes,
    *,
    name: str = "",
    limits: DecodeLimits | None = None,
    local: bool = False,
    with_pixel_digest: bool = False,
    full_rows: RowSink | None = None,
) -> Analysis:
    """Decode ``data`` once at working size and compute every signal (and, with ``local``, the
    picture's local features for storing; with ``with_pixel_digest``, the full-resolution pixel
    digest, streamed from the same decode; ``full_rows`` is handed the full-resolution rows too).

    Raises the ``InputError`` subclasses of ``decode_image``.
    """
    digester = PixelDigester() if with_pixel_digest else None
    sinks = [s for s in (digester, full_rows) if s is not None]
    try:
        image = decode_image(
            data,
            limits=limits,
            min_side=WORKING_SIDE,
            full_rows=_Rows(sinks) if len(sinks) > 1 else next(iter(sinks), None),
        )
    except InputError as err:
        if not name:
            raise
        raise type(err)(f"{name}: {err}") from err
    grid = colour_grid(image.pixels)
    fp = Fingerprint(
        sha256=hashlib.sha256(data).digest(),
        **grid_signals(grid).signal_fields(),
        width=image.width,
        height=image.height,
        byte_size=len(data),
        mime=image.mime,
        name=name,
        has_alpha=image.has_alpha,
    )
    if digester is not None:
        fp = fp.with_pixel_digest(digester.digest())
    features = local_features(image.pixels) if local else None
    return Analysis(fingerprint=fp, image=image, data=data, grid=grid, local=features)


class _Rows:
    """Several ``RowSink`` fed from one decode."""

    def __init__(self, sinks: list[RowSink]) -> None:
        self._sinks = sinks

    def start(self, width: int, height: int) -> None:
        for s in self._sinks:
            s.start(width, height)

    def write(self, rows: npt.NDArray[np.uint8]) -> None:
        for s in self._sinks:
            s.write(rows)


def perceptual_signals(pixels: npt.NDArray[np.uint8]) -> PerceptualSignals:
    """Every perceptual hash and statistic of (h, w, 3) uint8 pixels."""
    return grid_signals(colour_grid(pixels))


def grid_signals(colours: npt.NDArray[np.float64]) -> PerceptualSignals:
    """Every perceptual hash and statistic of a 64 x 64 x 3 colour grid.

    Area averaging commutes with flips and quarter turns, so the signals of a
    turned picture are those of its turned grid."""
    grid = luma_grid(colours)
    pdq_hash, quality = pdq(grid)
    return PerceptualSignals(
        phash_variants=phash_variants(phash_coefficients(block_mean(grid, 32))),
        dhash=dhash(grid),
        ahash=ahash(grid),
        whash=whash(grid),
        pdq=pdq_hash,
        pdq_quality=quality,
        thumbnail=luma_thumbnail(grid),
        colour=colour_stats(colours),
    )


def fingerprint_bytes(data: bytes, *, name: str = "", limits: DecodeLimits | None = None) -> Fingerprint:
    """The fingerprint of an image held in memory."""
    return analyse(data, name=name, limits=limits).fingerprint


#: what ``fingerprint``, ``analyse_source`` and ``compare`` accept: a path, an http(s) URL, bytes,
#: a Pillow image or a NumPy array ((h, w) grey, (h, w, 3) RGB or (h, w, 4) RGBA, uint8)
ImageSource = str | os.PathLike[str] | bytes | InMemory

#: the ``mime`` of a fingerprint made from pixels in memory, which have no file format
PIXELS_MIME = "image/x-pixels"


def analyse_source(
    src: ImageSource, *, limits: DecodeLimits | None = None, fetch: FetchLimits | None = None, local: bool = False
) -> Analysis:
    """``analyse`` an image from wherever it is (see ``ImageSource``).

    A Pillow image straight from ``Image.open`` is its file: the same fingerprint, SHA-256 and
    size included. Pixels with no file (a loaded or edited Pillow image, a NumPy array) get the
    same perceptual signals as a lossless file of those pixels; their ``sha256`` and
    ``pixel_digest`` are the digest of the pixels (two arrays with equal pixels are ``identical``,
    and a file with those pixels is ``same_pixels``), ``byte_size`` is 0 and ``mime`` is
    ``PIXELS_MIME``. (A JPEG file of 512 px or more on its short side is decoded at a reduced scale,
    so its own signals may differ from those of its fully decoded pixels by a bit or two.)

    Raises ``FetchError``, ``TooLarge`` and the decoder's ``InputError`` subclasses.
    """
    limits = limits or DecodeLimits()
    if is_in_memory(src):
        data, is_file = memory_bytes(src, max_bytes=limits.max_bytes)  # type: ignore[arg-type]
        name = str(getattr(src, "filename", "") or "") if is_file else "<pixels>"
        analysis = analyse(data, name=name, limits=limits, local=local)
        if is_file:
            return analysis
        digest = full_pixel_digest(data, limits=limits)
        fp = replace(analysis.fingerprint, sha256=digest, pixel_digest=digest, byte_size=0, mime=PIXELS_MIME)
        return replace(analysis, fingerprint=fp)
    if not isinstance(src, str | bytes | bytearray | memoryview | os.PathLike):
        raise TypeError(
            f"an image is a path, an http(s) URL, bytes, a Pillow image or a NumPy array, not {type(src).__name__}"
        )
    source = read_source(src, max_bytes=limits.max_bytes, fetch=fetch)
    return analyse(source.data, name=source.name, limits=limits, local=local)


def fingerprint(
    src: ImageSource,
    *,
    limits: DecodeLimits | None = None,
    fetch: FetchLimits | None = None,
) -> Fingerprint:
    """The fingerprint of an image at a path, an http(s) URL, in bytes, a Pillow image or a NumPy
    array (see ``analyse_source`` for what a picture without a file carries).

    Raises ``FetchError``, ``TooLarge`` and the decoder's ``InputError`` subclasses.
    """
    return analyse_source(src, limits=limits, fetch=fetch).fingerprint


def full_pixel_digest(data: bytes, *, limits: DecodeLimits | None = None) -> bytes:
    """The pixel digest of an image's bytes (a full-resolution decode, streamed: the picture is
    never held as one RGB array)."""
    digester = PixelDigester()
    decode_image(data, limits=limits, min_side=WORKING_SIDE, full_rows=digester)
    return digester.digest()
