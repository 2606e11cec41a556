"""How an embedding's cosine similarity joins the cascade's evidence: it may raise a score, it never
makes a duplicate on its own.

Three rules, applied per query to the cascade's matches (``fuse_matches``):

1. **Lift.** A match's score ``s`` rises with the cosine ``c`` of the two
   embeddings above ``lift_from`` and with its margin over the query's best
   other stored picture ``c₂``: ``s + (1 − s) · lift · a · b`` where
   ``a = (c − lift_from) / (1 − lift_from)`` and ``b = (c − c₂) / margin``, each
   clipped to 0..1. Below ``lift_from``, or with no margin, nothing changes;
   scores never fall. The margin matters: featureless pictures (a flat or
   nearly transparent wallpaper) embed almost alike, so a high cosine shared
   by several stored pictures says nothing about which one was copied.
2. **Promotion needs agreement.** A match the cascade called ``similar`` becomes
   a duplicate only when the cascade ranked it first for the query, the
   embeddings rank the same picture first with the full margin, the cosine is
   at least ``promote_at`` and the lifted score reaches the near-duplicate
   threshold.
   Otherwise a lifted score stays just under that threshold, so that a score
   and its verdict never disagree.
3. **Semantic neighbours** the cascade did not report at all form a separate
   ``similar`` list (``semantic_score``): scored in a band under the
   ``similar`` threshold, below every match the cascade itself reports, and
   never a duplicate. A match the cascade reported as ``different`` (no hash or
   local-feature agreement) whose cosine reaches ``lift_from`` but whose lifted
   score stays under ``similar`` is such a neighbour too (``semantic``), scored
   the higher of the two: whether the cascade happened to score a picture
   (in a small collection, its few nearest pHashes always are) must not decide
   whether a burst shot is listed.

The constants were set from the cosines measured on the public benchmark's
small build (/tmp/bench80, 85 originals): the true pair's cosine has a median
of 0.73 (screenshot) to 1.0 (lossless) per edit, while the best wrong
reference reaches at most 0.76, so 0.80 starts the lift above every wrong pair
seen and 0.90 leaves a margin of 0.14 before a promotion. On the full public
benchmark (555 originals) some wrong pairs do reach 1.0, all between
featureless wallpapers, which is what the margin rule is for.
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
    margin: float = 0.10
    near_duplicate: float = 0.62  # the cascade's thresholds, passed in by the caller
    similar: float = 0.30


@dataclass(frozen=True, slots=True)
class FusedMatch:
    """One of the cascade's matches after fusion. ``promoted``: a ``similar`` match the embedding and
    the cascade agreed on, now a duplicate; ``semantic``: a ``different`` one that is a semantic
    neighbour (rule 3)."""

    ref: str
    score: float
    duplicate: bool
    promoted: bool
    semantic: bool = False


def _clip(x: float) -> float:
    return min(1.0, max(0.0, x))


def lifted_score(score: float, cosine: float, fusion: Fusion, *, runner_up: float = -1.0) -> float:
    """Rule 1: the score raised by a cosine above ``lift_from`` with a margin over ``runner_up``,
    the best cosine of any other stored picture (never lowered)."""
    a = _clip((cosine - fusion.lift_from) / (1.0 - fusion.lift_from))
    b = _clip((cosine - runner_up) / fusion.margin)
    return score + (1.0 - score) * fusion.lift * a * b


def semantic_score(cosine: float, fusion: Fusion) -> float:
    """Rule 3: where a neighbour found by the embedding alone ranks, in [0, similar)."""
    return max(0.0, cosine) * fusion.similar * 0.999


def fuse_matches(
    matches: list[tuple[str, float, bool]],
    cosine: dict[str, float],
    neighbours: list[tuple[str, float]],
    fusion: Fusion,
) -> list[FusedMatch]:
    """Rules 1 and 2 over one query's cascade ``matches`` (reference, score, duplicate verdict);
    ``cosine`` by reference (missing: no embedding, nothing changes); ``neighbours``: the query's
    nearest stored pictures by embedding, best first (at least two, for the margin)."""
    out: list[FusedMatch] = []
    cascade_top = max(matches, key=lambda m: m[1])[0] if matches else None
    learned_top = neighbours[0][0] if neighbours else None
    for ref, score, duplicate in matches:
        c = cosine.get(ref)
        if c is None:
            out.append(FusedMatch(ref, score, duplicate, False))
            continue
        runner_up = max((s for r, s in neighbours if r != ref), default=-1.0)
        lifted = lifted_score(score, c, fusion, runner_up=runner_up)
        if duplicate:
            out.append(FusedMatch(ref, lifted, True, False))
            continue
        agree = (
            ref == cascade_top == learned_top
            and c >= fusion.promote_at
            and c - runner_up >= fusion.margin
            and score >= fusion.similar
        )
        if agree and lifted >= fusion.near_duplicate:
            out.append(FusedMatch(ref, lifted, True, True))
        elif score < fusion.similar and lifted < fusion.similar and c >= fusion.lift_from:
            out.append(FusedMatch(ref, max(lifted, semantic_score(c, fusion)), False, False, semantic=True))
        else:
            out.append(FusedMatch(ref, min(lifted, max(score, fusion.near_duplicate - 1e-4)), False, False))
    return out
