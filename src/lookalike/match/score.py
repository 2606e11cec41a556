"""From hash distances to a score in [0, 1] and a verdict.

Each hash's distance d of n bits maps to max(0, 1 - 2d/n): equal hashes give
1, unrelated pictures (about half the bits differ) give 0. The hash score is
the mean of pHash's (best flip/turn) and PDQ's (on the same turn): pHash
tolerates global edits, PDQ's finer 16 x 16 DCT separates look-alike pictures.
"""

from __future__ import annotations

from collections.abc import Mapping

from lookalike.config import Thresholds
from lookalike.fingerprints import Signal
from lookalike.match.verdict import Verdict

__all__ = ["bit_score", "hash_score", "verdict_for"]


def bit_score(distance_bits: int, bits: int) -> float:
    """1 for equal hashes, 0 at half the bits differing or more."""
    return max(0.0, min(1.0, 1.0 - 2.0 * distance_bits / bits))


def hash_score(distances: Mapping[Signal, int]) -> float:
    """Score of the pHash and PDQ distances of two aligned pictures."""
    return 0.5 * (bit_score(distances[Signal.PHASH], 64) + bit_score(distances[Signal.PDQ], 256))


def verdict_for(score: float, thresholds: Thresholds) -> Verdict:
    """``near_duplicate``, ``similar`` or ``different`` by the thresholds."""
    if score >= thresholds.near_duplicate:
        return Verdict.NEAR_DUPLICATE
    if score >= thresholds.similar:
        return Verdict.SIMILAR
    return Verdict.DIFFERENT
