"""Verdicts, evidence and comparison of fingerprinted images."""

from lookalike.match.candidate import Match, match_fingerprint
from lookalike.match.compare import (
    Comparison,
    ComparisonDict,
    HashEvidence,
    compare,
    compare_analyses,
    compare_fingerprints,
)
from lookalike.match.pixels import PixelEvidence, pixel_evidence
from lookalike.match.query import Query
from lookalike.match.score import bit_score, hash_score, verdict_for, worth_pixel_digest
from lookalike.match.verdict import DUPLICATE_VERDICTS, QueryVerdict, Verdict

__all__ = [
    "DUPLICATE_VERDICTS",
    "Comparison",
    "ComparisonDict",
    "HashEvidence",
    "Match",
    "PixelEvidence",
    "Query",
    "QueryVerdict",
    "Verdict",
    "bit_score",
    "compare",
    "compare_analyses",
    "compare_fingerprints",
    "hash_score",
    "match_fingerprint",
    "pixel_evidence",
    "verdict_for",
    "worth_pixel_digest",
]
