"""A person's word on a pair overrides the score: the one rule, for every caller.

``Index``'s checks, the service's hash look-up and ``find``'s grouping all ask the
same question about a pair of stored images a person has decided on. The
person's word is ``duplicate``: True ("these are the same picture"), False ("they
are not"), None (not decided). The thresholds are the calibrated ones the caller
judges with, never a constant of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.config import Thresholds
from lookalike.match.evidence import Basis, Evidence, render_evidence
from lookalike.match.verdict import Verdict

__all__ = ["Ruling", "overrule"]


@dataclass(frozen=True, slots=True)
class Ruling:
    """A pair's score and verdict after a person's word. ``by_person`` says the word changed them;
    ``linked`` says whether the pair still links its two images (not ``different``)."""

    score: float
    verdict: Verdict
    by_person: bool

    @property
    def linked(self) -> bool:
        """True unless the pair is ``different`` (a person's "not a duplicate" makes it so)."""
        return self.verdict is not Verdict.DIFFERENT

    def explanation(self, other: str, otherwise: str) -> str:
        """The evidence line: what the person said about ``other`` when the word decided,
        ``otherwise`` when the score stands."""
        if not self.by_person:
            return otherwise
        return render_evidence(Evidence(basis=Basis.PERSON, duplicate=self.verdict.is_duplicate, other=other))


def overrule(score: float, verdict: Verdict, duplicate: bool | None, thresholds: Thresholds) -> Ruling:
    """The pair (``score``, ``verdict``) after a person's word ``duplicate``.

    "Not a duplicate" makes it ``different`` with its score kept below ``thresholds.similar``;
    "a duplicate" raises a pair the hashes did not call a duplicate to ``near_duplicate`` with at
    least ``thresholds.near_duplicate`` (a pair they did call one keeps its own verdict); no word
    leaves it as it is. A pair with no score of its own (decided on without being compared)
    is passed as ``0.0, Verdict.DIFFERENT``.
    """
    if duplicate is None:
        return Ruling(score, verdict, by_person=False)
    if not duplicate:
        return Ruling(min(score, thresholds.similar * 0.99), Verdict.DIFFERENT, by_person=True)
    if verdict.is_duplicate:
        return Ruling(score, verdict, by_person=False)
    return Ruling(max(score, thresholds.near_duplicate), Verdict.NEAR_DUPLICATE, by_person=True)
