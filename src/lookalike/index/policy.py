"""Check, then store: what adding a picture does when the index holds a copy of it already.

One policy for every front end: ``lookalike index --on-duplicate`` and the service's
``on_duplicate`` upload field, both through ``Index.add_checked``. The picture is checked
first (the whole cascade, as ``lookalike check`` would), then:

* the same bytes are never stored twice (``present``), whatever the policy;
* a file for a named image whose rendition that image holds already is not stored
  (``rendition_taken``);
* a copy (``same_pixels`` or ``near_duplicate`` of a stored image other than the one
  named) is not stored under ``reject`` (the default, as over HTTP), stored under
  ``store``, and stored with each stored copy put on the review list under ``review``;
* under ``replace``, the picture takes the place of a stored file: of the rendition named
  (``image_id`` and ``rendition``) when that image holds it, else of the best copy's file when
  no image is named; the stored image keeps its id, its other renditions and its review pairs;
* anything else is stored; a ``similar`` match goes to the review list (as ``Index.add`` does).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from lookalike.index.results import CheckMatch, Outcome
from lookalike.index.store.records import OnDuplicate
from lookalike.match import Verdict

__all__ = ["Judgement", "judge"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the policy says to do with a checked picture: ``outcome`` (``ADDED`` means store it),
    the match that decided otherwise, and the pairs to put on the review list once it is stored."""

    outcome: Outcome
    because: CheckMatch | None
    review: tuple[CheckMatch, ...] = ()


def judge(
    matches: Sequence[CheckMatch],
    on_duplicate: OnDuplicate,
    *,
    image_id: str | None = None,
    renditions: Sequence[str] = (),
    rendition: str = "",
) -> Judgement:
    """The policy (module docstring) for a picture whose check found ``matches`` (all of them, best
    first), to be stored under ``image_id`` (None: a new image), which holds ``renditions`` already."""
    exact = next((m for m in matches if m.verdict is Verdict.IDENTICAL), None)
    if exact is not None:
        return Judgement(Outcome.PRESENT, exact)
    replace = on_duplicate is OnDuplicate.REPLACE
    if image_id is not None and rendition in renditions and not replace:
        return Judgement(Outcome.RENDITION_TAKEN, None)
    # another rendition of the image named is not a duplicate of it, nor a pair to review
    others = [m for m in matches if m.image_id != image_id]
    copies = [m for m in others if m.verdict.is_duplicate]
    if copies and on_duplicate is OnDuplicate.REJECT:
        return Judgement(Outcome.REJECTED, copies[0])
    review = [m for m in others if m.verdict is Verdict.SIMILAR]
    if replace and (rendition in renditions if image_id is not None else bool(copies)):
        return _replaced(image_id, copies, review)
    if on_duplicate is OnDuplicate.REVIEW:
        review += copies
    return Judgement(Outcome.ADDED, None, tuple(review))


def _replaced(image_id: str | None, copies: list[CheckMatch], review: list[CheckMatch]) -> Judgement:
    """``replace``: the rendition of ``image_id`` named, else (no image named) the best copy's file."""
    # the image replaced keeps its pairs; a pair with itself would mean nothing
    kept = image_id if image_id is not None else copies[0].image_id
    because = copies[0] if image_id is None else None
    return Judgement(Outcome.REPLACED, because, tuple(m for m in review if m.image_id != kept))
