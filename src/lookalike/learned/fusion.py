"""How an embedding's cosine similarity joins the cascade's evidence: it may raise a score, it never
makes a duplicate on its own.

Three rules, applied per query to the cascade's matches (``fuse_matches``):

1. **Lift.** A match's score ``s`` rises with the cosine ``c`` of the two
   embeddings above ``lift_from``: ``s + (1 − s) · lift · (c − lift_from) / (1 − lift_from)``.
   Below ``lift_from`` nothing changes; scores never fall.
2. **Promotion needs agreement.** A match the cascade called ``similar`` becomes
   a duplicate only when the cascade ranked it first for the query, the
   embeddings rank the same picture first, the cosine is at least
   ``promote_at`` and the lifted score reaches the near-duplicate threshold.
   Otherwise a lifted score stays just under that threshold, so that a score
   and its verdict never disagree.
3. **Semantic neighbours** the cascade did not report at all form a separate
   ``similar`` list (``semantic_score``): scored in a band under the
   ``similar`` threshold, below every match the cascade itself reports, and
   never a duplicate.

The constants were set from the cosines measured on the public benchmark's
small build (/tmp/bench80, 85 originals): the true pair's cosine has a median
of 0.73 (screenshot) to 1.0 (lossless) per edit, while the best wrong
reference reaches at most 0.76, so 0.80 starts the lift above every wrong pair
seen and 0.90 leaves a margin of 0.14 before a promotion.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Fusion", "FusedMatch", "fuse_matches", "lifted_score", "semantic_score"]


@dataclass(frozen=True, slots=True)
class Fusion:
    """The fusion's settings (see the module docstring)."""

    lift_from: float = 0.80
    lift: float = 0.5
    promote_at: float = 0.90
    near_duplicate: float = 0.62  # the cascade's thresholds, passed in by the caller
    similar: float = 0.30


@dataclass(frozen=True, slots=True)
class FusedMatch:
    """One of the cascade's matches after fusion. ``promoted``: a ``similar`` match the embedding and
    the cascade agreed on, now a duplicate."""

    ref: str
    score: float
    duplicate: bool
    promoted: bool


def lifted_score(score: float, cosine: float, fusion: Fusion) -> float:
    """Rule 1: the score raised by a cosine above ``lift_from`` (never lowered)."""
    t = min(1.0, max(0.0, (cosine - fusion.lift_from) / (1.0 - fusion.lift_from)))
    return score + (1.0 - score) * fusion.lift * t


def semantic_score(cosine: float, fusion: Fusion) -> float:
    """Rule 3: where a neighbour found by the embedding alone ranks, in [0, similar)."""
    return max(0.0, cosine) * fusion.similar * 0.999


def fuse_matches(
    matches: list[tuple[str, float, bool]], cosine: dict[str, float], learned_top: str | None, fusion: Fusion
) -> list[FusedMatch]:
    """Rules 1 and 2 over one query's cascade ``matches`` (reference, score, duplicate verdict), best
    first; ``cosine`` by reference (missing: no embedding, nothing changes); ``learned_top``: the
    reference the embeddings rank first."""
    out: list[FusedMatch] = []
    cascade_top = max(matches, key=lambda m: m[1])[0] if matches else None
    for ref, score, duplicate in matches:
        c = cosine.get(ref)
        if c is None:
            out.append(FusedMatch(ref, score, duplicate, False))
            continue
        lifted = lifted_score(score, c, fusion)
        if duplicate:
            out.append(FusedMatch(ref, lifted, True, False))
            continue
        agree = ref == cascade_top == learned_top and c >= fusion.promote_at and score >= fusion.similar
        if agree and lifted >= fusion.near_duplicate:
            out.append(FusedMatch(ref, lifted, True, True))
        else:
            out.append(FusedMatch(ref, min(lifted, max(score, fusion.near_duplicate - 1e-4)), False, False))
    return out
