"""From hash distances to a score in [0, 1] and a verdict.

Each hash's distance d of n bits maps to max(0, 1 - 2d/n): equal hashes give
1, unrelated pictures (about half the bits differ) give 0. The hash score is
the mean of pHash's (best flip/turn) and PDQ's (on the same turn): pHash
tolerates global edits, PDQ's finer 16 x 16 DCT separates look-alike pictures.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from lookalike.config import Thresholds
from lookalike.fingerprints import Fingerprint, Signal
from lookalike.match.verdict import Verdict

__all__ = [
    "FEATURELESS_QUALITY",
    "bit_score",
    "featureless_score",
    "fingerprint_score",
    "hash_score",
    "verdict_for",
    "worth_pixel_digest",
]

#: PDQ quality below which a picture's hash bits are mostly rounding noise
#: (Meta advises not to trust PDQ matches below 50): flat colours, gentle
#: gradients, near-blank screenshots.
FEATURELESS_QUALITY = 50

#: grey levels of difference (mean over the thumbnail, or in a mean colour
#: channel) at which two featureless pictures score 0
_LEVELS = 24.0


def bit_score(distance_bits: int, bits: int) -> float:
    """1 for equal hashes, 0 at half the bits differing or more."""
    return max(0.0, min(1.0, 1.0 - 2.0 * distance_bits / bits))


def hash_score(distances: Mapping[Signal, int]) -> float:
    """Score of the pHash and PDQ distances of two aligned pictures."""
    return 0.5 * (bit_score(distances[Signal.PHASH], 64) + bit_score(distances[Signal.PDQ], 256))


def featureless_score(a: Fingerprint, b: Fingerprint) -> float:
    """Score of two featureless pictures from their levels rather than their hash bits: the mean
    difference of their 16 x 16 luminance thumbnails and of their mean Y, Cb and Cr, whichever is
    larger, mapped to 1 (equal) .. 0 (``_LEVELS`` apart)."""
    ta = np.frombuffer(a.thumbnail, dtype=np.uint8).astype(np.float64)
    tb = np.frombuffer(b.thumbnail, dtype=np.uint8).astype(np.float64)
    thumb = float(np.mean(np.abs(ta - tb)))
    colour = max(abs(x - y) for x, y in zip(a.colour[:3], b.colour[:3]))
    return max(0.0, 1.0 - max(thumb, colour) / _LEVELS)


def fingerprint_score(aligned: Fingerprint, other: Fingerprint, distances: Mapping[Signal, int]) -> float:
    """Score of two aligned pictures by their hash distances. When both are featureless, hash bits
    may agree by chance (two flat colours collide), so their levels must agree too: the score is
    the lower of the two."""
    score = hash_score(distances)
    if aligned.pdq_quality < FEATURELESS_QUALITY and other.pdq_quality < FEATURELESS_QUALITY:
        score = min(score, featureless_score(aligned, other))
    return score


def verdict_for(score: float, thresholds: Thresholds) -> Verdict:
    """``near_duplicate``, ``similar`` or ``different`` by the thresholds."""
    if score >= thresholds.near_duplicate:
        return Verdict.NEAR_DUPLICATE
    if score >= thresholds.similar:
        return Verdict.SIMILAR
    return Verdict.DIFFERENT


def worth_pixel_digest(a: Fingerprint, b: Fingerprint) -> bool:
    """Whether two unturned pictures may have the same pixels, so that a full-resolution decode
    for the pixel digest is worth its cost: the same size, hashes that agree closely and
    luminance thumbnails within one grey level in every cell. Reduced decodes of the same pixels
    stored in two formats can differ by a hash bit or two and a level of rounding; a re-encode
    with any loss almost always moves some cell further (measured on the benchmark: the bound
    halves the full decodes and keeps every same-pixels pair)."""
    if (a.width, a.height) != (b.width, b.height):
        return False
    ta = np.frombuffer(a.thumbnail, dtype=np.uint8).astype(np.int16)
    tb = np.frombuffer(b.thumbnail, dtype=np.uint8).astype(np.int16)
    return (
        len(ta) == len(tb)
        and int(np.abs(ta - tb).max(initial=0)) <= 1
        and a.distance_bits(b, Signal.PHASH) <= 4
        and a.distance_bits(b, Signal.PDQ) <= 16
    )
