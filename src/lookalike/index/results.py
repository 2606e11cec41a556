"""What ``Index`` answers: a check's matches and verdict, and what adding did.

Value objects only, with their JSON forms (one shape for the command line's ``--json`` and the
service); ``Index`` (``index.collection``) makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TypedDict

from lookalike.fingerprints import Dihedral, Fingerprint
from lookalike.index.store.records import StoredFile, rendition_name
from lookalike.match import QueryVerdict, Verdict

__all__ = [
    "AddOutcome",
    "AddOutcomeDict",
    "AddResult",
    "CheckMatch",
    "CheckMatchDict",
    "CheckResult",
    "CheckResultDict",
    "LearnedEvidence",
    "Outcome",
    "turned_distance_bits",
]


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``Index.add`` did: the image id the file is stored under, and whether it was new."""

    image_id: str
    file_pk: int
    added: bool


class CheckMatchDict(TypedDict):
    """JSON form of ``CheckMatch``: one shape for ``lookalike check --json`` and ``/v1/check``."""

    id: str
    rendition: str
    score: float
    verdict: str
    evidence: str
    source: str
    #: the same as ``source``: the key ``check --json`` has always had, which scripts and the public
    #: benchmark's scorer read
    path: str
    #: true for a semantic neighbour: ``similar`` on the learned embedding alone, never a copy
    semantic: bool


class CheckResultDict(TypedDict):
    """JSON form of ``CheckResult`` (the command line adds the input's ``path``)."""

    verdict: str
    matches: list[CheckMatchDict]


@dataclass(frozen=True, slots=True)
class LearnedEvidence:
    """What the learned tier (``index.semantic``) saw of a match: the two embeddings' ``cosine``,
    the cascade's own score and verdict before fusion (None for a semantic neighbour the cascade
    did not report), whether the cascade and the embedding agreed on it so that it was
    ``promoted`` from ``similar`` to a duplicate, and whether it is ``semantic``: ``similar`` on
    the embedding alone, with no hash or local-feature agreement."""

    cosine: float
    cascade_score: float | None = None
    cascade_verdict: Verdict | None = None
    promoted: bool = False
    semantic: bool = False


@dataclass(frozen=True, slots=True)
class CheckMatch:
    """One stored image that matches a query. ``explanation`` is the evidence line (``evidence`` in JSON)."""

    image_id: str
    file: StoredFile
    score: float
    verdict: Verdict
    explanation: str
    by_local_features: bool = False
    """True when local-feature verification, not the hashes, gave the score (a crop, an overlay)."""
    learned: LearnedEvidence | None = None
    """What the learned tier saw (only when checking with it)."""

    def to_dict(self, *, source: str | None = None) -> CheckMatchDict:
        """JSON-ready form. ``source`` says where the stored file can be read: its path by default
        (the command line's index); the service passes the file's URL instead."""
        where = self.file.source if source is None else source
        return CheckMatchDict(
            id=self.image_id,
            rendition=rendition_name(self.file.rendition),
            score=round(self.score, 4),
            verdict=self.verdict.value,
            evidence=self.explanation,
            source=where,
            path=where,
            semantic=self.learned is not None and self.learned.semantic,
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer for one query: its overall verdict and the ranked matches (best first)."""

    fingerprint: Fingerprint
    matches: tuple[CheckMatch, ...]

    @property
    def verdict(self) -> QueryVerdict:
        """The best match's verdict, or ``unique`` when nothing is even similar."""
        return QueryVerdict.of(self.matches[0].verdict if self.matches else None)

    @property
    def is_duplicate(self) -> bool:
        """True when the best match says "you already have this picture" (``--exit-code`` answers 1)."""
        return bool(self.matches) and self.matches[0].verdict.is_duplicate

    def to_dict(self) -> CheckResultDict:
        """JSON-ready form: the overall verdict and every match, best first."""
        return CheckResultDict(verdict=self.verdict, matches=[m.to_dict() for m in self.matches])


def turned_distance_bits(phash: int, stored: Fingerprint) -> tuple[int, Dihedral]:
    """(fewest pHash bits between ``phash`` and ``stored`` under one of the eight flips and turns of
    the stored picture, which turn): ``phash_variants[k]`` is exactly the pHash of the stored picture
    turned by ``Dihedral(k)``."""
    k = min(range(len(stored.phash_variants)), key=lambda k: ((stored.phash_variants[k] ^ phash).bit_count(), k))
    return (stored.phash_variants[k] ^ phash).bit_count(), Dihedral(k)


class Outcome(StrEnum):
    """What ``Index.add_checked`` did with one picture."""

    ADDED = "added"  #: stored as a new image
    PRESENT = "present"  #: these exact bytes were stored already
    REJECTED = "rejected"  #: a copy of a stored image, left out (``OnDuplicate.REJECT``)
    RENDITION_TAKEN = "rendition_taken"  #: the image named holds a file of this rendition already
    REPLACED = "replaced"  #: stored in place of a stored copy's file (``OnDuplicate.REPLACE``)


class AddOutcomeDict(TypedDict):
    """JSON form of ``AddOutcome``: the check's answer (as ``lookalike check --json``) and what was done."""

    outcome: str
    id: str | None
    verdict: str
    matches: list[CheckMatchDict]
    review: int


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """What ``Index.add_checked`` did with one picture: the outcome; the image id it is stored under
    (a new one, or the existing image holding the same bytes, or the image whose rendition is taken;
    None when rejected); the check made before deciding (its best matches); the match that decided
    a ``present``, ``rejected`` or ``replaced`` outcome; how many pairs went to the review list; and
    the file a ``replaced`` outcome took the place of (its row is gone; its bytes are the caller's
    to delete)."""

    outcome: Outcome
    image_id: str | None
    check: CheckResult
    review: int = 0
    because: CheckMatch | None = None
    replaced: StoredFile | None = None

    def to_dict(self) -> AddOutcomeDict:
        """JSON-ready form."""
        d = self.check.to_dict()
        return AddOutcomeDict(
            outcome=self.outcome.value, id=self.image_id, verdict=d["verdict"], matches=d["matches"], review=self.review
        )
