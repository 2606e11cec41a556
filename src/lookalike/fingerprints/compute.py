"""Compute a ``Fingerprint`` from one decode."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import TypedDict

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits, FetchLimits
from lookalike.decode import DecodedImage, decode_image, read_source
from lookalike.errors import InputError
from lookalike.fingerprints.dct import phash_coefficients, phash_variants
from lookalike.fingerprints.digest import PixelDigester
from lookalike.fingerprints.grid import block_mean, colour_grid, luma_grid
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.fingerprints.model import Fingerprint
from lookalike.fingerprints.pdq import pdq
from lookalike.fingerprints.simple import ahash, dhash, whash
from lookalike.fingerprints.thumbnail import colour_stats, luma_thumbnail

__all__ = [
    "WORKING_SIDE",
    "Analysis",
    "analyse",
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
) -> Analysis:
    """Decode ``data`` once at working size and compute every signal (and, with ``local``, the
    picture's local features for storing; with ``with_pixel_digest``, the full-resolution pixel
    digest, streamed from the same decode).

    Raises the ``InputError`` subclasses of ``decode_image``.
    """
    digester = PixelDigester() if with_pixel_digest else None
    try:
        image = decode_image(data, limits=limits, min_side=WORKING_SIDE, full_rows=digester)
    except InputError as err:
        if not name:
            raise
        raise type(err)(f"{name}: {err}") from err
    grid = colour_grid(image.pixels)
    fp = Fingerprint(
        sha256=hashlib.sha256(data).digest(),
        **grid_signals(grid),
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


class PerceptualSignals(TypedDict):
    """The pixel-derived fields of a ``Fingerprint``."""

    phash_variants: tuple[int, ...]
    dhash: int
    ahash: int
    whash: int
    pdq: bytes
    pdq_quality: int
    thumbnail: bytes
    colour: tuple[float, ...]


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


def fingerprint(
    src: str | os.PathLike[str] | bytes,
    *,
    limits: DecodeLimits | None = None,
    fetch: FetchLimits | None = None,
) -> Fingerprint:
    """The fingerprint of an image at a path, an http(s) URL, or in bytes.

    Raises ``FetchError``, ``TooLarge`` and the decoder's ``InputError`` subclasses.
    """
    limits = limits or DecodeLimits()
    source = read_source(src, max_bytes=limits.max_bytes, fetch=fetch)
    return fingerprint_bytes(source.data, name=source.name, limits=limits)


def full_pixel_digest(data: bytes, *, limits: DecodeLimits | None = None) -> bytes:
    """The pixel digest of an image's bytes (a full-resolution decode, streamed: the picture is
    never held as one RGB array)."""
    digester = PixelDigester()
    decode_image(data, limits=limits, min_side=WORKING_SIDE, full_rows=digester)
    return digester.digest()
