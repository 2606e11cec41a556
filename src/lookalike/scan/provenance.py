"""The facts the keeper choice (``scan.source``) reads of one picture, computed where it is
fingerprinted, once, by ``find`` on one machine and by the fingerprint stage of a scale-out run
alike, so that both choose the same keeper: the JPEG quality, the margins around the picture, its
colours (a palette of 256 or fewer) and the DC step of a JPEG it was decoded from."""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.config import DecodeLimits
from lookalike.decode.quality import jpeg_dc_step, jpeg_quality
from lookalike.fingerprints import Analysis, analyse
from lookalike.fingerprints.provenance import PixelFacts, pixel_facts
from lookalike.scan.margins import margins

__all__ = ["PictureFacts", "analyse_with_facts"]


@dataclass(frozen=True, slots=True)
class PictureFacts:
    """What the keeper choice reads of one picture (see ``scan.source.SourceFacts``)."""

    jpeg_quality: float | None
    padding: float
    content_aspect: float
    #: distinct colours (``fingerprints.provenance``; at full resolution but for a JPEG)
    colours: int
    #: a JPEG's luminance DC step, or the one a lossless file's pixels show (0: none)
    grid_step: int


def analyse_with_facts(
    data: bytes, *, name: str = "", limits: DecodeLimits | None = None, local: bool = False
) -> tuple[Analysis, PictureFacts]:
    """``fingerprints.analyse`` and the picture's ``PictureFacts`` from the same decode: a file
    other than a JPEG hands its full-resolution rows to a ``PixelFacts`` as it is decoded (a
    JPEG's grid is its table, and its colours are counted on the working-size pixels: a lossy
    file is never a palette). Raises what ``analyse`` raises."""
    jpeg = data.startswith(b"\xff\xd8")
    sink = None if jpeg else PixelFacts()
    a = analyse(data, name=name, limits=limits, local=local, full_rows=sink)
    counted = sink if sink is not None and sink.started else pixel_facts(a.image.pixels, grid=not jpeg)
    padding, aspect = margins(a.image.pixels)
    step = jpeg_dc_step(data) if jpeg else counted.grid_step
    return a, PictureFacts(jpeg_quality(data), padding, aspect, counted.colours, step)
