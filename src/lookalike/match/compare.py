"""Pairwise comparison: two images in, a verdict with its score and evidence out.

Order of evidence, cheapest first:
1. the bytes (SHA-256): ``identical``;
2. the perceptual hashes, with the flip/turn that best aligns the pictures;
3. the pixel digest, computed only when sizes match and the hashes agree
   closely (a full-resolution decode is the costly part, and reduced decodes
   of the same pixels stored in two formats can differ by a bit or two):
   ``same_pixels``;
4. pixel metrics on the aligned pictures (SSIM, NRMSE, MSE, histogram
   distance, blurred-image correlation), which settle mild edits that move
   hash bits;
5. when those do not make a duplicate: local features (ORB keypoints and a
   RANSAC fit, ``match.local``), which settle crops, borders, captions and a
   picture shown inside a larger one.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import TypedDict

import numpy as np

from lookalike.config import DecodeLimits, FetchLimits, Thresholds
from lookalike.decode import read_source
from lookalike.fingerprints import Analysis, Dihedral, Fingerprint, Signal, analyse, full_pixel_digest, transform_pixels
from lookalike.fingerprints.local import local_features
from lookalike.match.explain import explain
from lookalike.match.local import QUERY_FEATURES, LocalEvidence, describe_local, local_score, verify_local
from lookalike.match.pixels import PixelEvidence, pixel_evidence
from lookalike.match.query import Query
from lookalike.match.score import fingerprint_score, verdict_for, worth_pixel_digest
from lookalike.match.verdict import Verdict

__all__ = ["Comparison", "ComparisonDict", "HashEvidence", "compare", "compare_analyses", "pixel_score"]


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
    explanation: str
    transform: str
    hashes: dict[str, HashEvidenceDict]
    pixels: dict[str, float] | None
    local: dict[str, float] | None


@dataclass(frozen=True, slots=True)
class Comparison:
    """Verdict, score in [0, 1] and the evidence behind them.

    ``transform`` is what, done to ``a``, best lines it up with ``b``.
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
            explanation=self.explanation,
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


def pixel_score(pixels: PixelEvidence) -> float:
    """Score of pixel evidence: geometric mean of the blurred correlation (0 at 0.5 or less) and SSIM."""
    corr = max(0.0, min(1.0, (pixels.template_correlation - 0.5) / 0.5))
    return float(np.sqrt(corr * max(0.0, min(1.0, pixels.ssim))))


def compare_analyses(
    a: Analysis, b: Analysis, *, limits: DecodeLimits | None = None, thresholds: Thresholds | None = None
) -> Comparison:
    """Compare two analysed images (see the module docstring)."""
    thresholds = thresholds or Thresholds()
    fa, fb = a.fingerprint, b.fingerprint
    if fa.sha256 == fb.sha256:
        verdict = Verdict.IDENTICAL
        return Comparison(a=fa, b=fb, verdict=verdict, score=1.0, explanation=explain(fa, fb, verdict))
    query = Query.of(a)
    transform = query.best_turn(fb)
    aligned = query.turned(transform)
    assert aligned is not None  # a query made from an Analysis has its pixels
    hashes = tuple(HashEvidence(s, aligned.distance_bits(fb, s)) for s in Signal)
    by = {h.signal: h.distance_bits for h in hashes}

    if transform is Dihedral.IDENTITY and worth_pixel_digest(fa, fb):
        fa = fa if fa.pixel_digest else fa.with_pixel_digest(full_pixel_digest(a.data, limits=limits))
        fb = fb if fb.pixel_digest else fb.with_pixel_digest(full_pixel_digest(b.data, limits=limits))
        if fa.pixel_digest == fb.pixel_digest:
            verdict = Verdict.SAME_PIXELS
            explanation = explain(fa, fb, verdict)
            return Comparison(a=fa, b=fb, verdict=verdict, score=1.0, explanation=explanation, hashes=hashes)

    a_pixels = np.ascontiguousarray(transform_pixels(a.image.pixels, transform))
    pixels = pixel_evidence(a_pixels, b.image.pixels)
    score = max(fingerprint_score(aligned, fb, by), pixel_score(pixels))
    verdict = verdict_for(score, thresholds)
    explanation = explain(fa, fb, verdict, transform=transform, pixels=pixels, phash_bits=by[Signal.PHASH])
    local = None
    if not verdict.is_duplicate:
        # b is taken as the copy and a as the original, so the evidence reads "b is a's picture cropped to…"
        local = verify_local(
            local_features(b.image.pixels, max_features=QUERY_FEATURES), a.local or local_features(a.image.pixels)
        )
        if local_score(local) > score:
            score = local_score(local)
            verdict = verdict_for(score, thresholds)
            explanation = ("same picture, " if verdict.is_duplicate else "shares a region: ") + describe_local(local)
    return Comparison(
        a=fa, b=fb, verdict=verdict, score=score, transform=transform, hashes=hashes, pixels=pixels, local=local,
        explanation=explanation,
    )  # fmt: skip


def compare(
    a: str | os.PathLike[str] | bytes,
    b: str | os.PathLike[str] | bytes,
    *,
    limits: DecodeLimits | None = None,
    fetch: FetchLimits | None = None,
    thresholds: Thresholds | None = None,
) -> Comparison:
    """Compare two images given as paths, http(s) URLs or bytes.

    Raises ``FetchError``, ``TooLarge`` and the decoder's ``InputError`` subclasses.
    """
    limits = limits or DecodeLimits()
    sa = read_source(a, max_bytes=limits.max_bytes, fetch=fetch)
    sb = read_source(b, max_bytes=limits.max_bytes, fetch=fetch)
    return compare_analyses(
        analyse(sa.data, name=sa.name, limits=limits),
        analyse(sb.data, name=sb.name, limits=limits),
        limits=limits,
        thresholds=thresholds,
    )
