"""Pairwise comparison: two images in, a verdict with its score and evidence out.

``compare(a, b)`` scores ``b`` as a copy of ``a`` by the very steps ``Index.check`` takes for a
query ``b`` against a stored ``a``, so one pair has one score from ``compare``, ``check`` and
``find``. Order of evidence, cheapest first:
1. the bytes (SHA-256): ``identical``;
2. the perceptual hashes, with the flip/turn that best aligns the pictures (``match_fingerprint``);
3. the pixel digest, computed only when sizes match and the hashes agree
   closely (a full-resolution decode is the costly part, and reduced decodes
   of the same pixels stored in two formats can differ by a bit or two):
   ``same_pixels`` (``match.steps.same_pixels``, the cascade's step 4);
4. when the hashes do not make a duplicate: local features (ORB keypoints and a
   RANSAC fit, ``match.local``), which settle crops, borders, captions and a
   picture shown inside a larger one (``match.steps.by_local_features``, the cascade's step 5).

Pixel metrics on the aligned pictures (SSIM, NRMSE, MSE, histogram distance, blurred-image
correlation) come with the answer as evidence; they do not move the score, which a check, with
no stored pixels to measure, could not reproduce. (Until 2026-12-02 they did: ``compare`` gave a
mirrored cat 0.990 where ``check`` gave 0.984.)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from typing import TypedDict

import numpy as np

from lookalike.config import DecodeLimits, FetchLimits, Thresholds
from lookalike.fingerprints import (
    Analysis,
    Dihedral,
    Fingerprint,
    ImageSource,
    Signal,
    analyse_source,
    full_pixel_digest,
    transform_pixels,
)
from lookalike.fingerprints.local import local_features
from lookalike.match.candidate import match_fingerprint
from lookalike.match.explain import explain
from lookalike.match.local import LocalEvidence, query_features, verify_local
from lookalike.match.pixels import PixelEvidence, pixel_evidence
from lookalike.match.query import Query
from lookalike.match.steps import by_pictures_within_then_local, same_pixels
from lookalike.match.verdict import Verdict

__all__ = ["Comparison", "ComparisonDict", "HashEvidence", "compare", "compare_analyses", "compare_fingerprints"]


@dataclass(frozen=True, slots=True)
class HashEvidence:
    """One hash's Hamming distance between the (aligned) pictures."""

    signal: Signal
    distance_bits: int

    @property
    def bits(self) -> int:
        """Length of the hash."""
        return self.signal.bits

    @property
    def similarity(self) -> float:
        """1 - distance / bits."""
        return 1.0 - self.distance_bits / self.bits


class HashEvidenceDict(TypedDict):
    """JSON form of ``HashEvidence``."""

    distance_bits: int
    bits: int
    similarity: float


class ComparisonDict(TypedDict):
    """JSON form of ``Comparison``."""

    a: str
    b: str
    verdict: str
    score: float
    evidence: str
    transform: str
    hashes: dict[str, HashEvidenceDict]
    pixels: dict[str, float] | None
    local: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Verdict, score in [0, 1] and the evidence behind them.

    ``transform`` is what, done to ``a``, best lines it up with ``b``. ``explanation`` is the
    evidence line (``evidence`` in JSON, as in every other JSON answer).
    """

    a: Fingerprint
    b: Fingerprint
    verdict: Verdict
    score: float
    explanation: str
    transform: Dihedral = Dihedral.IDENTITY
    hashes: tuple[HashEvidence, ...] = field(default=())
    pixels: PixelEvidence | None = None
    local: LocalEvidence | None = None

    def to_dict(self) -> ComparisonDict:
        """JSON-ready form."""
        return ComparisonDict(
            a=self.a.name,
            b=self.b.name,
            verdict=self.verdict.value,
            score=round(self.score, 4),
            evidence=self.explanation,
            transform=self.transform.name.lower(),
            hashes={
                h.signal.value: HashEvidenceDict(
                    distance_bits=h.distance_bits, bits=h.bits, similarity=round(h.similarity, 4)
                )
                for h in self.hashes
            },
            pixels=None
            if self.pixels is None
            else {
                "mse": round(self.pixels.mse, 3),
                "nrmse": round(self.pixels.nrmse, 4),
                "ssim": round(self.pixels.ssim, 4),
                "histogram_distance": round(self.pixels.histogram_distance, 4),
                "template_correlation": round(self.pixels.template_correlation, 4),
            },
            local=None
            if self.local is None
            else {
                "inliers": self.local.inliers,
                "matches": self.local.matches,
                "original_shown": round(self.local.stored_shown, 4),
                "copy_filled": round(self.local.query_filled, 4),
                "scale": round(self.local.scale, 4),
                "rotation_deg": round(self.local.rotation_deg, 2),
            },
        )


#: the inverse of each flip/turn: quarter turns swap, the others undo themselves
_INVERSE = {Dihedral.ROT90: Dihedral.ROT270, Dihedral.ROT270: Dihedral.ROT90}


def compare_analyses(
    a: Analysis, b: Analysis, *, limits: DecodeLimits | None = None, thresholds: Thresholds | None = None
) -> Comparison:
    """Compare two analysed images (see the module docstring).

    ``b`` is scored as a candidate copy of ``a`` by the steps ``Index.check`` takes for a query
    ``b`` against a stored ``a`` (``match_fingerprint``, then the pixel digest, then local
    features): one pair has one score whichever command computes it. The pixel metrics are
    evidence shown beside the score, not part of it (a check has no stored pixels to measure)."""
    thresholds = thresholds or Thresholds()
    fa, fb = a.fingerprint, b.fingerprint
    if fa.sha256 == fb.sha256:
        verdict = Verdict.IDENTICAL
        return Comparison(a=fa, b=fb, verdict=verdict, score=1.0, explanation=explain(fa, fb, verdict))
    query = Query.of(b)
    match = match_fingerprint(query, fa, thresholds)
    transform = _INVERSE.get(match.transform, match.transform)  # what, done to a, lines it up with b
    hashes = tuple(HashEvidence(s, match.distances[s]) for s in Signal if s in match.distances)

    # step 4 of a check, with the pictures in hand to digest
    a_digest, b_digest = (partial(full_pixel_digest, x.data, limits=limits) for x in (a, b))
    if same_pixels(match.verdict, fb, fa, copy_digest=b_digest, original_digest=a_digest):
        verdict = Verdict.SAME_PIXELS
        return Comparison(a=fa, b=fb, verdict=verdict, score=1.0, explanation=explain(fa, fb, verdict), hashes=hashes)

    a_pixels = np.ascontiguousarray(transform_pixels(a.image.pixels, transform))
    pixels = pixel_evidence(a_pixels, b.image.pixels)
    score, verdict, explanation = match.score, match.verdict, match.explanation
    local = None
    if not verdict.is_duplicate:  # step 5 of a check: b with a query's features, a with a stored set
        features = query_features(b.image.pixels)
        local = verify_local(features, a.local or local_features(a.image.pixels))
        ruling = by_pictures_within_then_local(features.parts, local, fa, score, thresholds)
        if ruling is not None:
            score, verdict, explanation = ruling.score, ruling.verdict, ruling.explanation
    return Comparison(
        a=fa, b=fb, verdict=verdict, score=score, transform=transform, hashes=hashes, pixels=pixels, local=local,
        explanation=explanation,
    )  # fmt: skip


def compare_fingerprints(a: Fingerprint, b: Fingerprint, *, thresholds: Thresholds | None = None) -> Comparison:
    """Compare two fingerprints (stored ones, or read back with ``fingerprint_from_text``): the hashes
    only, as ``Index.check`` scores a stored candidate, ``b`` as the copy. Without the pictures'
    grids, a flipped or turned match rests on pHash alone (see ``match_fingerprint``)."""
    thresholds = thresholds or Thresholds()
    if a.sha256 == b.sha256:
        return Comparison(a=a, b=b, verdict=Verdict.IDENTICAL, score=1.0, explanation=explain(a, b, Verdict.IDENTICAL))
    match = match_fingerprint(Query(b), a, thresholds)
    return Comparison(
        a=a, b=b, verdict=match.verdict, score=match.score, explanation=match.explanation,
        transform=_INVERSE.get(match.transform, match.transform),
        hashes=tuple(HashEvidence(s, match.distances[s]) for s in Signal if s in match.distances),
    )  # fmt: skip


def compare(
    a: ImageSource | Fingerprint,
    b: ImageSource | Fingerprint,
    *,
    limits: DecodeLimits | None = None,
    fetch: FetchLimits | None = None,
    thresholds: Thresholds | None = None,
) -> Comparison:
    """Compare two images, each a path, an http(s) URL, bytes, a Pillow image, a NumPy array or a
    ``Fingerprint`` (``b`` scored as a copy of ``a``: see ``compare_analyses``; with a fingerprint
    on either side, by the hashes alone: see ``compare_fingerprints``).

    Raises ``FetchError``, ``TooLarge`` and the decoder's ``InputError`` subclasses; ``TypeError``
    for anything else.
    """
    limits = limits or DecodeLimits()
    if isinstance(a, Fingerprint) or isinstance(b, Fingerprint):
        fa = a if isinstance(a, Fingerprint) else analyse_source(a, limits=limits, fetch=fetch).fingerprint
        fb = b if isinstance(b, Fingerprint) else analyse_source(b, limits=limits, fetch=fetch).fingerprint
        return compare_fingerprints(fa, fb, thresholds=thresholds)
    return compare_analyses(
        analyse_source(a, limits=limits, fetch=fetch),
        analyse_source(b, limits=limits, fetch=fetch),
        limits=limits,
        thresholds=thresholds,
    )
