"""What a match rests on, as data, and the one sentence a person reads for it.

Every front end (``check``, ``compare``, ``find``, the HTTP service, a scale-out run) shows a
match's evidence as the line ``render_evidence`` writes from an ``Evidence``: what was compared
(the bytes, the pixels, the perceptual hashes, a pHash sent alone, local features, a person, the
learned embedding) and what was found (bits apart, the flip or turn, the edits seen, matching
keypoints and the region they cover, cosine). One wording per finding, written here only: the
model is ThreatExchange's one comparison result per signal, rendered once
(``python-threatexchange``, ``signal_type/signal_base.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lookalike.fingerprints import Dihedral
from lookalike.match.local import LocalEvidence, describe_local
from lookalike.match.verdict import Verdict

__all__ = ["TOO_THIN", "Basis", "Evidence", "LearnedRole", "describe_turn", "render_evidence"]


class Basis(StrEnum):
    """What was compared."""

    SAME_BYTES = "same_bytes"  #: the files' SHA-256: the same bytes
    SAME_PIXELS = "same_pixels"  #: the full-resolution pixel digests: the same pixels in another file
    HASHES = "hashes"  #: the two pictures' perceptual hashes (and what differs between them)
    PHASH_ONLY = "phash_only"  #: a pHash sent without its picture (the service's hash check)
    LOCAL_FEATURES = "local_features"  #: ORB keypoints and a RANSAC fit
    PICTURE_WITHIN = "picture_within"  #: the hashes of a picture found within the query (``match.regions``)
    PERSON = "person"  #: a person's decision on the pair
    LEARNED = "learned"  #: the learned tier's embeddings


class LearnedRole(StrEnum):
    """What the learned embedding did to the cascade's answer (``learned.fusion``)."""

    PROMOTED = "promoted"  #: it named the cascade's ``similar`` match first: a near duplicate
    RAISED = "raised"  #: it raised the cascade's score
    SEMANTIC = "semantic"  #: it alone ties the pair: a semantic neighbour, not a copy


#: why a picture had no local-feature verification (a strip or a sliver)
TOO_THIN = "too thin for local features: judged by bytes, pixels and hashes"

_TURNS = {
    Dihedral.FLIP_LR: "mirrored left to right",
    Dihedral.FLIP_UD: "flipped upside down",
    Dihedral.ROT180: "turned 180°",
    Dihedral.TRANSPOSE: "turned and mirrored",
    Dihedral.ROT90: "turned 90°",
    Dihedral.ROT270: "turned 90°",
    Dihedral.ANTITRANSPOSE: "turned and mirrored",
}

#: what local features said, by ``Evidence.same_picture``: a duplicate, a shared region, or (None)
#: said against a keeper a member is linked to only through another member
_LOCAL_PREFIX = {True: "same picture, ", False: "shares a region: ", None: "local features: "}


def describe_turn(which: Dihedral) -> str:
    """What ``which`` did to a picture, in words ("mirrored left to right", "turned 90°")."""
    return _TURNS.get(which, "as it is")


@dataclass(frozen=True, slots=True, kw_only=True)
class Evidence:
    """What was compared (``basis``) and what was found; ``render_evidence`` (or ``str()``) gives the line.

    By basis, the fields that count:

    - ``HASHES``: ``verdict`` (of the hashes), ``phash_bits`` (pHash distance of 64, None when not
      measured), ``edits`` (phrases for what turns one picture into the other, said of a near
      duplicate), ``too_thin`` (no local features could be looked for);
    - ``PHASH_ONLY``: ``phash_bits`` and ``turn`` (the flip or turn of the stored picture that matched);
    - ``LOCAL_FEATURES``: ``local`` (the fit) or ``local_words`` (its words, kept from an earlier
      run), and ``same_picture`` (a duplicate, a shared region, None: not said);
    - ``PICTURE_WITHIN``: ``share`` (of the query the picture within it fills) and ``cascade`` (the
      hashes' line for that picture);
    - ``PERSON``: ``duplicate`` (the person's word) and ``other`` (the image it was said of, None: the pair);
    - ``LEARNED``: ``cosine``, ``role`` and ``cascade`` (the cascade's line before the embedding spoke).
    """

    basis: Basis
    verdict: Verdict = Verdict.DIFFERENT
    phash_bits: int | None = None
    turn: Dihedral = Dihedral.IDENTITY
    edits: tuple[str, ...] = ()
    too_thin: bool = False
    local: LocalEvidence | None = None
    local_words: str | None = None
    same_picture: bool | None = None
    duplicate: bool = True
    other: str | None = None
    cosine: float = 0.0
    role: LearnedRole = LearnedRole.SEMANTIC
    cascade: str | None = None
    share: float = 1.0

    def __str__(self) -> str:
        return render_evidence(self)


def render_evidence(evidence: Evidence) -> str:
    """The sentence a person reads for ``evidence``: the one wording of each finding."""
    return _RENDERERS[evidence.basis](evidence)


def _same_bytes(_: Evidence) -> str:
    return "the same file (identical bytes)"


def _same_pixels(_: Evidence) -> str:
    return "the same pixels in a different file (lossless re-encode or metadata change)"


def _hashes(e: Evidence) -> str:
    if e.verdict is Verdict.IDENTICAL:
        return _same_bytes(e)
    if e.verdict is Verdict.SAME_PIXELS:
        return _same_pixels(e)
    if e.verdict is Verdict.NEAR_DUPLICATE:
        return "same picture, " + ", ".join(e.edits)
    detail = f"pHash differs in {e.phash_bits} of 64 bits" if e.phash_bits is not None else "hashes differ"
    if e.verdict is Verdict.SIMILAR:
        line = f"looks alike but may not be the same picture ({detail}); worth a look"
    else:
        line = f"different pictures ({detail})"
    # a crop or a picture within another could not be looked for by local features
    return f"{line} ({TOO_THIN})" if e.too_thin else line


def _phash_only(e: Evidence) -> str:
    turned = "" if e.turn is Dihedral.IDENTITY else f", {describe_turn(e.turn)}"
    return f"pHash {e.phash_bits}/64 bits apart{turned} (hashes only)"


def _local(e: Evidence) -> str:
    words = e.local_words if e.local is None else describe_local(e.local)
    return _LOCAL_PREFIX[e.same_picture] + (words or "")


def _picture_within(e: Evidence) -> str:
    return f"the picture shown inside it ({100 * e.share:.0f}% of it): {e.cascade}"


def _person(e: Evidence) -> str:
    if e.other is None:
        return f"a person marked these as {'duplicates' if e.duplicate else 'not duplicates'}"
    return f"a person marked this as {'a duplicate' if e.duplicate else 'not a duplicate'} of {e.other}"


def _learned(e: Evidence) -> str:
    cosine = f"learned embedding cosine {e.cosine:.2f}"
    if e.role is LearnedRole.PROMOTED:
        return f"{e.cascade}; {cosine} names the same picture first: near-duplicate"
    if e.role is LearnedRole.RAISED:
        return f"{e.cascade}; {cosine} raised the score"
    alone = (
        f"{cosine}, no hash or local-feature agreement: a semantic neighbour (a burst shot, the same scene re-shot),"
        " not a copy"
    )
    return alone if e.cascade is None else f"{alone} (the cascade: {e.cascade})"


_RENDERERS: dict[Basis, Callable[[Evidence], str]] = {
    Basis.SAME_BYTES: _same_bytes,
    Basis.SAME_PIXELS: _same_pixels,
    Basis.HASHES: _hashes,
    Basis.PHASH_ONLY: _phash_only,
    Basis.LOCAL_FEATURES: _local,
    Basis.PICTURE_WITHIN: _picture_within,
    Basis.PERSON: _person,
    Basis.LEARNED: _learned,
}
