"""The cascade's steps past the hashes, as pure functions that ``Index``'s check
(``index.cascade``) and ``compare`` both run, so that one pair has one answer whichever asks.

4. ``same_pixels``: a close, same-size near duplicate is settled by the full-resolution pixel digest;
5. ``by_picture_within``: a candidate the hashes do not call a duplicate is scored by the hashes of
   the pictures found within the query (a picture inside a page, a collage's tile) when that scores
   higher; then ``by_local_features``: by its local-feature fit (ORB keypoints and RANSAC,
   ``match.local``) when that scores higher still.

Where the digests and features come from (a store, a file on disk, the pictures in hand) is the
caller's business; what they decide is written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from lookalike.config import Thresholds
from lookalike.fingerprints import Fingerprint
from lookalike.match.candidate import match_fingerprint
from lookalike.match.evidence import Basis, Evidence, render_evidence
from lookalike.match.local import LocalEvidence, PictureWithin, local_score
from lookalike.match.score import verdict_for, worth_pixel_digest
from lookalike.match.verdict import Verdict

__all__ = [
    "LocalRuling",
    "by_local_features",
    "by_picture_within",
    "by_pictures_within_then_local",
    "same_pixels",
    "same_pixels_evidence",
]


def same_pixels(
    verdict: Verdict,
    copy: Fingerprint,
    original: Fingerprint,
    *,
    copy_digest: Callable[[], bytes | None],
    original_digest: Callable[[], bytes | None],
) -> bool:
    """Step 4: whether ``copy``, a ``verdict`` match of ``original``, holds the same pixels. Only a
    near duplicate close enough and of the same size (``worth_pixel_digest``) is worth the
    full-resolution decode; ``original_digest`` and then ``copy_digest`` are asked for a side
    whose fingerprint has no digest (None: it cannot be read, and the pair stays as it is)."""
    if verdict is not Verdict.NEAR_DUPLICATE or not worth_pixel_digest(copy, original):
        return False
    theirs = original.pixel_digest or original_digest()
    if theirs is None:
        return False
    return (copy.pixel_digest or copy_digest()) == theirs


def same_pixels_evidence() -> str:
    """The evidence line of a pair that step 4 settled."""
    return render_evidence(Evidence(basis=Basis.SAME_PIXELS))


@dataclass(frozen=True, slots=True)
class LocalRuling:
    """A candidate's score, verdict and evidence line after step 5."""

    score: float
    verdict: Verdict
    explanation: str


def by_local_features(found: LocalEvidence, score: float, thresholds: Thresholds) -> LocalRuling | None:
    """Step 5 for one candidate: the local-feature fit ``found`` scored (``local_score``), with its
    verdict and evidence line, when it beats the hashes' ``score``; None when the hashes' stands."""
    local = local_score(found)
    if local <= score:
        return None
    verdict = verdict_for(local, thresholds)
    why = render_evidence(Evidence(basis=Basis.LOCAL_FEATURES, local=found, same_picture=verdict.is_duplicate))
    return LocalRuling(local, verdict, why)


def by_picture_within(
    parts: Sequence[PictureWithin], stored: Fingerprint, score: float, thresholds: Thresholds
) -> LocalRuling | None:
    """Step 5, first half, for one candidate: the best of the pictures within the query (``parts``)
    scored against ``stored`` by their hashes (``match_fingerprint``, as a whole query is), when it
    beats the whole query's ``score``; None when that stands. A picture inside a page keeps its
    hashes when it has no keypoints (a gradient, a blurred sky)."""
    best, share, why = score, 1.0, ""
    for part in parts:
        m = match_fingerprint(part.query, stored, thresholds)
        if m.score > best:
            best, share, why = m.score, part.share, m.explanation
    if best <= score:
        return None
    line = render_evidence(Evidence(basis=Basis.PICTURE_WITHIN, share=share, cascade=why))
    return LocalRuling(best, verdict_for(best, thresholds), line)


def by_pictures_within_then_local(
    parts: Sequence[PictureWithin], found: LocalEvidence, stored: Fingerprint, score: float, thresholds: Thresholds
) -> LocalRuling | None:
    """All of step 5 for one candidate whose hashes scored ``score``: ``by_picture_within``, then
    ``by_local_features`` when the fit ``found`` scores higher still; None when the hashes' stands."""
    within = by_picture_within(parts, stored, score, thresholds)
    return by_local_features(found, score if within is None else within.score, thresholds) or within
