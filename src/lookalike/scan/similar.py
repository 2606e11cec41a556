"""``find --similar``: pictures of one scene that are not copies (burst shots, the scene re-shot),
found by the learned tier's embeddings alone, listed apart from the groups and never acted on.

Each file of the run is embedded where it is decoded (``ingest``: the worker that fingerprints
it) and its vector stored with it (``NewFile.embedding``); files an earlier run read without
``--similar`` are embedded now, once, and their vectors kept. Every file's ``NEIGHBOURS``
nearest by cosine (``EmbeddingIndex``: exact, HNSW past ``ANN_THRESHOLD`` files) with a cosine
of at least the fusion's ``lift_from`` form a pair, unless the cascade already judged the two
(a duplicate or ``similar`` pair of the cache) or they share a group. The score is
``semantic_score``, the one the learned tier gives such a neighbour in a check: below the
``similar`` threshold, never a duplicate. Each pair goes to the review list (verdict
``similar``, its evidence saying it rests on the embedding alone).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.config import Thresholds
from lookalike.errors import InputError
from lookalike.index import Index
from lookalike.index.semantic import NEIGHBOURS
from lookalike.learned import Embedder, EmbeddingIndex
from lookalike.learned.fusion import Fusion, semantic_score
from lookalike.match import Verdict
from lookalike.match.evidence import Basis, Evidence, render_evidence
from lookalike.scan.cache import FindCache
from lookalike.scan.results import Group, SimilarPair

__all__ = ["embedder_for", "semantic_pairs", "similar_pair"]

_loaded: dict[str | None, Embedder] = {}


def embedder_for(model: str | None) -> Embedder:
    """The encoder of ``model`` (None: the built-in one), loaded once per process (``find``'s
    reading workers each load it on their first file). Raises ``ConfigError`` without the extra."""
    if model not in _loaded:
        from lookalike.learned import load_embedder  # onnxruntime: only with the learned tier

        _loaded[model] = load_embedder(model)
    return _loaded[model]


def semantic_pairs(
    index: Index,
    cache: FindCache,
    scope: str,
    paths_of: dict[int, list[str]],
    groups: Sequence[Group],
    embedder: Embedder,
    thresholds: Thresholds,
) -> tuple[SimilarPair, ...]:
    """The semantic neighbours among the rows ``paths_of`` (row -> its paths, sorted), best first,
    each put on the review list (see the module docstring)."""
    rules = Fusion(near_duplicate=thresholds.near_duplicate, similar=thresholds.similar)
    vectors = _vectors(index, paths_of, embedder)
    pks = sorted(vectors)
    if len(pks) < 2:
        return ()
    stacked = np.stack([vectors[p] for p in pks])
    found = EmbeddingIndex(stacked).search(stacked, NEIGHBOURS + 1)
    judged = {(p.a_pk, p.b_pk) for p in cache.pairs_among(pks)}
    group_of = {m.path: i for i, g in enumerate(groups) for m in g.members}
    best: dict[tuple[int, int], float] = {}
    for row, (ids, sims) in enumerate(zip(found.ids, found.similarity, strict=True)):
        for i, c in zip(ids, sims, strict=True):
            if i < 0 or i == row or float(c) < rules.lift_from:
                continue
            key = (min(pks[row], pks[i]), max(pks[row], pks[i]))
            a, b = paths_of[key[0]][0], paths_of[key[1]][0]
            if key in judged or (a in group_of and group_of.get(b) == group_of[a]):
                continue
            best[key] = max(best.get(key, -1.0), float(c))
    facts = cache.rows(pks)
    pairs = []
    for (x, y), c in sorted(best.items(), key=lambda kc: (-kc[1], kc[0])):
        pair = similar_pair(paths_of[x][0], paths_of[y][0], c, rules)
        pairs.append(pair)
        if x in facts and y in facts:
            index.add_review(
                scope, facts[x].image_pk, facts[y].image_pk, score=pair.score, verdict=Verdict.SIMILAR.value,
                evidence=pair.evidence,
            )  # fmt: skip
    return tuple(pairs)


def similar_pair(a: str, b: str, cosine: float, rules: Fusion) -> SimilarPair:
    """The review-list entry of two files tied by the embedding alone at ``cosine`` (also what a
    cluster's run lists, ``scale.embed_stage``)."""
    return SimilarPair(
        a, b, cosine, semantic_score(cosine, rules), render_evidence(Evidence(basis=Basis.LEARNED, cosine=cosine))
    )


def _vectors(index: Index, paths_of: dict[int, list[str]], embedder: Embedder) -> dict[int, Any]:
    """The stored vectors of these rows; rows without one (read by a run without ``--similar``) are
    embedded now from their first path and kept. Rows whose file cannot be read are left out."""
    have = {pk: np.frombuffer(v, np.float16) for pk, v in index.embeddings(embedder.name, list(paths_of)).items()}
    fresh: list[tuple[int, bytes]] = []
    for pk in (p for p in paths_of if p not in have):
        try:
            vector = embedder.embed_file(paths_of[pk][0], limits=index.limits)
        except InputError:
            continue
        have[pk] = vector
        fresh.append((pk, vector.tobytes()))
    if fresh:
        index.put_embeddings(embedder.name, fresh)
    return have
