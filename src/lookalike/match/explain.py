"""One line a person understands: what differs between two pictures."""

from __future__ import annotations

from lookalike.fingerprints import Dihedral, Fingerprint
from lookalike.match.pixels import PixelEvidence
from lookalike.match.verdict import Verdict

__all__ = ["describe_edits", "describe_turn", "explain", "is_grayscale"]

_TURNS = {
    Dihedral.FLIP_LR: "mirrored left to right",
    Dihedral.FLIP_UD: "flipped upside down",
    Dihedral.ROT180: "turned 180°",
    Dihedral.TRANSPOSE: "turned and mirrored",
    Dihedral.ROT90: "turned 90°",
    Dihedral.ROT270: "turned 90°",
    Dihedral.ANTITRANSPOSE: "turned and mirrored",
}

def describe_turn(which: Dihedral) -> str:
    """What ``which`` did to a picture, in words ("mirrored left to right", "turned 90°")."""
    return _TURNS.get(which, "as it is")


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
    """Phrases for what turns ``a`` into ``b``."""
    edits: list[str] = []
    if transform in _TURNS:
        edits.append(_TURNS[transform])
    ra = a.width * a.height
    rb = b.width * b.height
    if (a.width, a.height) != (b.width, b.height) and (b.width, b.height) != (a.height, a.width):
        ratio_a = a.width / a.height
        ratio_b = b.width / b.height
        if transform in (Dihedral.ROT90, Dihedral.ROT270, Dihedral.TRANSPOSE, Dihedral.ANTITRANSPOSE):
            ratio_a = 1.0 / ratio_a
        if abs(ratio_a - ratio_b) / ratio_a > 0.03:
            edits.append(f"reframed from {a.width}x{a.height} to {b.width}x{b.height}")
        else:
            edits.append(
                f"{'enlarged' if rb > ra else 'resized'} to {100 * (rb / ra) ** 0.5:.0f}% ({b.width}x{b.height})"
            )
    fa, fb = _FORMAT_NAMES.get(a.mime, a.mime), _FORMAT_NAMES.get(b.mime, b.mime)
    if fa != fb:
        edits.append(f"converted from {fa} to {fb}")
    elif pixels is not None and pixels.nrmse > 0.02 and b.byte_size * max(ra, 1) < 0.7 * a.byte_size * max(rb, 1):
        edits.append("re-encoded at lower quality")
    else:
        edits.append("re-encoded")
    if is_grayscale(b) and not is_grayscale(a):
        edits.append("converted to grayscale")
    elif is_grayscale(a) and not is_grayscale(b):
        edits.append("colourised")
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
) -> str:
    """The explanation line of a comparison."""
    if verdict is Verdict.IDENTICAL:
        return "the same file (identical bytes)"
    if verdict is Verdict.SAME_PIXELS:
        return "the same pixels in a different file (lossless re-encode or metadata change)"
    edits = ", ".join(describe_edits(a, b, transform=transform, pixels=pixels))
    if verdict is Verdict.NEAR_DUPLICATE:
        return f"same picture, {edits}"
    detail = f"pHash differs in {phash_bits} of 64 bits" if phash_bits is not None else "hashes differ"
    if verdict is Verdict.SIMILAR:
        return f"looks alike but may not be the same picture ({detail}); worth a look"
    return f"different pictures ({detail})"
