"""Verdicts, evidence and comparison of fingerprinted images."""

from lookalike.match.compare import Comparison, ComparisonDict, HashEvidence, compare, compare_analyses
from lookalike.match.pixels import PixelEvidence, pixel_evidence
from lookalike.match.verdict import DUPLICATE_VERDICTS, Verdict

__all__ = [
    "DUPLICATE_VERDICTS",
    "Comparison",
    "ComparisonDict",
    "HashEvidence",
    "PixelEvidence",
    "Verdict",
    "compare",
    "compare_analyses",
    "pixel_evidence",
]
