"""Verdicts: what a comparison concludes, from strongest to weakest."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["DUPLICATE_VERDICTS", "QueryVerdict", "Verdict"]


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


class QueryVerdict(StrEnum):
    """The answer for a whole query (a ``check`` line, an upload): its best match's verdict, or
    ``unique`` when nothing stored is even similar. Values are sent: never rename one."""

    IDENTICAL = "identical"
    SAME_PIXELS = "same_pixels"
    NEAR_DUPLICATE = "near_duplicate"
    SIMILAR = "similar"
    UNIQUE = "unique"

    @classmethod
    def of(cls, best: Verdict | None) -> QueryVerdict:
        """The query's answer when its best match has the verdict ``best`` (None: no match)."""
        return cls.UNIQUE if best is None or best is Verdict.DIFFERENT else cls(best.value)

    @property
    def is_duplicate(self) -> bool:
        """True for the answers that mean "you already have this picture"."""
        return self is not QueryVerdict.UNIQUE and Verdict(self.value).is_duplicate
