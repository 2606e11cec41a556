"""What differs between two pictures (the edits seen), and the evidence line of two pictures judged
by their hashes (worded by ``match.evidence``)."""

from __future__ import annotations

from lookalike.fingerprints import Dihedral, Fingerprint
from lookalike.match.evidence import Basis, Evidence, describe_turn, render_evidence
from lookalike.match.pixels import PixelEvidence
from lookalike.match.verdict import Verdict

__all__ = ["describe_edits", "explain", "is_grayscale"]

#: the flips and turns that swap a picture's width and height
_QUARTER_TURNS = (Dihedral.ROT90, Dihedral.ROT270, Dihedral.TRANSPOSE, Dihedral.ANTITRANSPOSE)


_FORMAT_NAMES = {
    "image/jpeg": "JPEG",
    "image/png": "PNG",
    "image/webp": "WebP",
    "image/gif": "GIF",
    "image/bmp": "BMP",
    "image/tiff": "TIFF",
    "image/avif": "AVIF",
    "image/heic": "HEIC",
    "image/x-pixels": "pixels in memory",  # ``fingerprints.PIXELS_MIME``: a Pillow image or an array
}

#: chroma spread below which a picture counts as grayscale (Cb/Cr standard deviation, 0..255 scale)
_GRAY_CHROMA = 1.5


def is_grayscale(fp: Fingerprint) -> bool:
    """Whether the picture has (next to) no colour: its chroma barely varies."""
    return abs(fp.colour[1]) < _GRAY_CHROMA and abs(fp.colour[2]) < _GRAY_CHROMA and max(fp.colour[4:6]) < _GRAY_CHROMA


def describe_edits(a: Fingerprint, b: Fingerprint, *, transform: Dihedral, pixels: PixelEvidence | None) -> list[str]:
    """Phrases for what turns ``a`` into ``b``: the flip or turn, the size, the encoding, the colour."""
    edits = [] if transform is Dihedral.IDENTITY else [describe_turn(transform)]
    resized = _describe_size(a, b, transform)
    encoding = _describe_encoding(a, b, pixels)
    return edits + [e for e in (resized, encoding) if e] + _describe_colour(a, b)


def _describe_size(a: Fingerprint, b: Fingerprint, transform: Dihedral) -> str | None:
    """Reframed (the aspect ratio changed by over 3%), resized, enlarged or None (the same size)."""
    if (b.width, b.height) in ((a.width, a.height), (a.height, a.width)):
        return None
    ratio_a = a.width / a.height
    ratio_b = b.width / b.height
    if transform in _QUARTER_TURNS:
        ratio_a = 1.0 / ratio_a
    if abs(ratio_a - ratio_b) / ratio_a > 0.03:
        return f"reframed from {a.width}x{a.height} to {b.width}x{b.height}"
    ra, rb = a.width * a.height, b.width * b.height
    return f"{'enlarged' if rb > ra else 'resized'} to {100 * (rb / ra) ** 0.5:.0f}% ({b.width}x{b.height})"


def _describe_encoding(a: Fingerprint, b: Fingerprint, pixels: PixelEvidence | None) -> str | None:
    """Converted to another format, re-encoded at lower quality (visibly worse and fewer bytes per
    pixel), or re-encoded; None for a picture with no file of its own (one found within another,
    ``match.local.PictureWithin``)."""
    if not b.mime:
        return None
    fa, fb = _FORMAT_NAMES.get(a.mime, a.mime), _FORMAT_NAMES.get(b.mime, b.mime)
    if fa != fb:
        return f"converted from {fa} to {fb}"
    ra, rb = max(a.width * a.height, 1), max(b.width * b.height, 1)
    if pixels is not None and pixels.nrmse > 0.02 and b.byte_size * ra < 0.7 * a.byte_size * rb:
        return "re-encoded at lower quality"
    return "re-encoded"


def _describe_colour(a: Fingerprint, b: Fingerprint) -> list[str]:
    """Grayscale or colourised, brightened or darkened, contrast lowered or raised."""
    edits = []
    if is_grayscale(b) != is_grayscale(a):
        edits.append("converted to grayscale" if is_grayscale(b) else "colourised")
    dy = b.colour[0] - a.colour[0]
    if abs(dy) > 12:
        edits.append("brightened" if dy > 0 else "darkened")
    contrast = b.colour[3] / a.colour[3] if a.colour[3] > 1 else 1.0
    if contrast < 0.8 or contrast > 1.25:
        edits.append("contrast lowered" if contrast < 1 else "contrast raised")
    return edits


def explain(
    a: Fingerprint,
    b: Fingerprint,
    verdict: Verdict,
    *,
    transform: Dihedral = Dihedral.IDENTITY,
    pixels: PixelEvidence | None = None,
    phash_bits: int | None = None,
    too_thin: bool = False,
) -> str:
    """The evidence line of ``b`` as a copy of ``a`` judged by their hashes (``verdict``), with
    what differs between them for a near duplicate; ``too_thin``: a picture had no local features
    to look for a crop with (said of a pair that is not a duplicate)."""
    if verdict is Verdict.IDENTICAL:
        return render_evidence(Evidence(basis=Basis.SAME_BYTES))
    if verdict is Verdict.SAME_PIXELS:
        return render_evidence(Evidence(basis=Basis.SAME_PIXELS))
    edits = describe_edits(a, b, transform=transform, pixels=pixels) if verdict is Verdict.NEAR_DUPLICATE else []
    return render_evidence(
        Evidence(basis=Basis.HASHES, verdict=verdict, phash_bits=phash_bits, edits=tuple(edits), too_thin=too_thin)
    )
