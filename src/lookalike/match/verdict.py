"""Verdicts: what a comparison concludes, from strongest to weakest."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DUPLICATE_VERDICTS", "Verdict"]


class Verdict(StrEnum):
    """The answer to "is this the same picture?". Values are stored and sent: never rename one."""

    IDENTICAL = "identical"  #: the same bytes
    SAME_PIXELS = "same_pixels"  #: different bytes, the same decoded pixels
    NEAR_DUPLICATE = "near_duplicate"  #: the same picture, edited
    SIMILAR = "similar"  #: worth a person's look
    DIFFERENT = "different"

    @property
    def is_duplicate(self) -> bool:
        """True for the verdicts that mean "you already have this picture"."""
        return self in DUPLICATE_VERDICTS


DUPLICATE_VERDICTS = frozenset({Verdict.IDENTICAL, Verdict.SAME_PIXELS, Verdict.NEAR_DUPLICATE})
