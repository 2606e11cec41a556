"""Check, then store: what adding a picture does when the index holds a copy of it already.

One policy for every front end: ``lookalike index --on-duplicate`` and the service's
``on_duplicate`` upload field. The picture is checked first (the whole cascade, as
``lookalike check`` would), then:

* the same bytes are never stored twice (``present``), whatever the policy;
* a copy (``same_pixels`` or ``near_duplicate`` of a stored image) is not stored under
  ``reject`` (the default, as over HTTP), stored under ``store``, and stored with each
  stored copy put on the review list under ``review``;
* anything else is stored; a ``similar`` match goes to the review list (as ``Index.add`` does).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from typing import TypedDict

from lookalike.fingerprints import Analysis
from lookalike.index.collection import CheckMatchDict, CheckResult, Index
from lookalike.index.records import DEFAULT_SCOPE, OnDuplicate
from lookalike.match import Verdict

__all__ = ["AddOutcome", "AddOutcomeDict", "OnDuplicate", "Outcome", "add_checked"]


class Outcome(StrEnum):
    """What happened to one picture."""

    ADDED = "added"  #: stored as a new image
    PRESENT = "present"  #: these exact bytes were stored already
    REJECTED = "rejected"  #: a copy of a stored image, left out (``OnDuplicate.REJECT``)


class AddOutcomeDict(TypedDict):
    """JSON form of ``AddOutcome``: the check's answer (as ``lookalike check --json``) and what was done."""

    outcome: str
    id: str | None
    verdict: str
    matches: list[CheckMatchDict]
    review: int


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """What ``add_checked`` did with one picture: the outcome, the image id it is stored under (a new
    one, or the existing image holding the same bytes; None when rejected), the check made before
    deciding, and how many pairs went to the review list."""

    outcome: Outcome
    image_id: str | None
    check: CheckResult
    review: int = 0

    def to_dict(self) -> AddOutcomeDict:
        """JSON-ready form."""
        d = self.check.to_dict()
        return AddOutcomeDict(
            outcome=self.outcome.value, id=self.image_id, verdict=d["verdict"], matches=d["matches"], review=self.review
        )


def add_checked(
    index: Index,
    analysis: Analysis,
    source: str,
    *,
    scope: str = DEFAULT_SCOPE,
    on_duplicate: OnDuplicate = OnDuplicate.REJECT,
    top: int = 10,
) -> AddOutcome:
    """Check ``analysis`` against ``scope``, then store it (under ``source``) as the policy says (see the
    module docstring). Two processes adding copies of one picture at once may both store it:
    the service holds ``Store.scope_lock`` around this call."""
    # checked with a query's features, not the (larger) set kept for storing: the answer is then
    # the one ``lookalike check`` gives for the same file
    check = index.check_analysis(replace(analysis, local=None), scope=scope, top=top)
    exact = next((m for m in check.matches if m.verdict is Verdict.IDENTICAL), None)
    if exact is not None:
        return AddOutcome(Outcome.PRESENT, exact.image_id, check)
    copies = [m for m in check.matches if m.verdict.is_duplicate]
    if copies and on_duplicate is OnDuplicate.REJECT:
        return AddOutcome(Outcome.REJECTED, None, check)
    (added,) = index.add_analyses([(analysis, source)], scope=scope)
    if not added.added:  # the same bytes arrived between the check and the write
        return AddOutcome(Outcome.PRESENT, added.image_id, check)
    review = sum(1 for m in check.matches if m.verdict is Verdict.SIMILAR)
    if on_duplicate is OnDuplicate.REVIEW:
        record = index.store.image(scope, added.image_id)
        for m in copies:
            index.store.add_review(
                scope, m.file.image_pk, record.pk, score=m.score, verdict=m.verdict.value, evidence=m.explanation
            )
            review += 1
    return AddOutcome(Outcome.ADDED, added.image_id, check, review)
