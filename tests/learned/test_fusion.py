"""The embedding as one more piece of evidence: it lifts, it never decides alone."""

from __future__ import annotations

from lookalike.learned.fusion import Fusion, fuse_matches, lifted_score, semantic_score

F = Fusion(near_duplicate=0.62, similar=0.30)


def test_a_similar_match_is_promoted_only_when_cascade_and_embedding_agree() -> None:
    matches = [("a", 0.55, False), ("b", 0.40, False)]
    agreed = fuse_matches(matches, {"a": 0.97, "b": 0.5}, [("a", 0.97), ("b", 0.5)], F)
    assert agreed[0].duplicate and agreed[0].promoted and agreed[0].score >= F.near_duplicate
    # the embedding prefers another picture: no promotion, and the score stays under the cut
    disagreed = fuse_matches(matches, {"a": 0.97, "b": 0.5}, [("c", 0.98), ("a", 0.97)], F)
    assert not disagreed[0].duplicate and disagreed[0].score < F.near_duplicate
    # a high cosine for the cascade's second choice does not promote it
    second = fuse_matches(matches, {"a": 0.5, "b": 0.99}, [("b", 0.99), ("a", 0.5)], F)
    assert not any(m.duplicate for m in second)


def test_a_cosine_many_stored_pictures_share_is_no_evidence() -> None:
    # featureless pictures embed alike: 0.99 for the match and 0.99 for another stored picture
    matches = [("flat-a", 0.45, False)]
    fused = fuse_matches(matches, {"flat-a": 0.99}, [("flat-a", 0.99), ("flat-b", 0.99)], F)
    assert fused[0].score == 0.45 and not fused[0].duplicate


def test_scores_never_fall_and_low_cosines_change_nothing() -> None:
    for score in (0.0, 0.3, 0.61, 0.9, 1.0):
        for cosine in (-1.0, 0.0, 0.5, 0.8, 0.9, 1.0):
            assert score <= lifted_score(score, cosine, F) <= 1.0
        assert lifted_score(score, F.lift_from, F) == score
    kept = fuse_matches([("a", 0.9, True)], {}, [], F)
    assert kept[0].score == 0.9 and kept[0].duplicate


def test_semantic_neighbours_rank_below_every_similar_match() -> None:
    assert 0.0 <= semantic_score(1.0, F) < F.similar
    assert semantic_score(0.95, F) > semantic_score(0.85, F)
