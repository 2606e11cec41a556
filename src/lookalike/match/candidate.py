"""Scoring a stored fingerprint as a candidate match for a query."""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.config import Thresholds
from lookalike.fingerprints import Dihedral, Fingerprint, Signal
from lookalike.fingerprints.local import too_thin
from lookalike.match.evidence import Basis, Evidence, render_evidence
from lookalike.match.explain import explain
from lookalike.match.query import Query
from lookalike.match.score import bit_score, fingerprint_score, verdict_for
from lookalike.match.verdict import Verdict

__all__ = ["Match", "match_fingerprint", "match_phash"]


@dataclass(frozen=True, slots=True)
class Match:
    """How a stored picture matches a query: score, verdict, the turn that aligns them, hash distances."""

    score: float
    verdict: Verdict
    transform: Dihedral
    distances: dict[Signal, int]
    explanation: str


def match_fingerprint(query: Query, stored: Fingerprint, thresholds: Thresholds) -> Match:
    """Score ``stored`` against ``query`` from their fingerprints alone.

    Identical bytes score 1. Otherwise the query is turned to best match the
    stored pHash and scored by ``hash_score``. When the query has no grid to
    turn (a stored fingerprint), a turned match rests on pHash alone, picked
    as the closest of eight variants: it is discounted by scoring twice its
    distance, so that only close matches (a few bits) count.
    """
    q = query.fingerprint
    if q.sha256 == stored.sha256:
        return Match(
            1.0, Verdict.IDENTICAL, Dihedral.IDENTITY, {s: 0 for s in Signal}, explain(stored, q, Verdict.IDENTICAL)
        )
    transform = query.best_turn(stored)
    aligned = query.turned(transform)
    if aligned is None:
        d = q.dihedral_distance_bits(stored)[0]
        distances = {Signal.PHASH: d}
        score = bit_score(2 * d, 64)
    else:
        distances = {s: aligned.distance_bits(stored, s) for s in Signal}
        score = fingerprint_score(aligned, stored, distances)
    verdict = verdict_for(score, thresholds)
    # a crop or a picture within another cannot be looked for in a picture too thin for local features
    thin = too_thin(q.width, q.height) or too_thin(stored.width, stored.height)
    why = explain(stored, q, verdict, transform=transform, phash_bits=distances[Signal.PHASH], too_thin=thin)
    return Match(score, verdict, transform, distances, why)


def match_phash(distance_bits: int, turn: Dihedral, thresholds: Thresholds) -> Match:
    """Score a stored picture against a bare pHash (a client's hash check, no picture sent) that is
    ``distance_bits`` from the stored picture under its flip or turn ``turn``: by pHash alone."""
    score = bit_score(distance_bits, 64)
    why = render_evidence(Evidence(basis=Basis.PHASH_ONLY, phash_bits=distance_bits, turn=turn))
    return Match(score, verdict_for(score, thresholds), turn, {Signal.PHASH: distance_bits}, why)
