"""Cosine search: the exact scan and the HNSW graph find the same neighbours."""

from __future__ import annotations

import numpy as np

from lookalike.learned import EmbeddingIndex


def _unit(rng: np.random.Generator, n: int, d: int) -> np.ndarray:
    v = rng.normal(size=(n, d)).astype(np.float32)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)


def test_exact_search_returns_the_most_similar_rows_best_first() -> None:
    rng = np.random.default_rng(1)
    stored = _unit(rng, 20_000, 64)  # more rows than one scanned block
    queries = (stored[[5, 19_999]].astype(np.float32) + 0.05 * rng.normal(size=(2, 64))).astype(np.float16)
    found = EmbeddingIndex(stored, exact=True).search(queries, 5)
    brute = queries.astype(np.float32) @ stored.astype(np.float32).T
    assert found.ids[:, 0].tolist() == [5, 19_999]
    assert np.array_equal(found.ids, np.argsort(-brute, axis=1)[:, :5])
    assert np.all(np.diff(found.similarity, axis=1) <= 0)


def test_asking_for_more_neighbours_than_stored_pads_with_minus_one() -> None:
    stored = _unit(np.random.default_rng(2), 3, 8)
    found = EmbeddingIndex(stored).search(stored[0], 5)
    assert found.ids[0, 0] == 0 and found.ids[0, 3:].tolist() == [-1, -1]
    assert EmbeddingIndex(stored[:0]).search(stored[0], 2).ids.tolist() == [[-1, -1]]


def test_the_hnsw_index_finds_what_the_exact_scan_finds() -> None:
    rng = np.random.default_rng(3)
    stored = _unit(rng, 3000, 128)
    queries = (stored[:200].astype(np.float32) + 0.3 * rng.normal(size=(200, 128)) / np.sqrt(128)).astype(np.float16)
    ann = EmbeddingIndex(stored, ann_threshold=1000)
    assert not ann.exact
    exact = EmbeddingIndex(stored, exact=True).search(queries, 10)
    approx = ann.search(queries, 10)
    assert (approx.ids[:, 0] == np.arange(200)).mean() >= 0.98
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(approx.ids, exact.ids, strict=True)])
    assert overlap >= 0.9


def test_a_search_among_some_rows_finds_their_nearest_however_many_others_are_nearer() -> None:
    """One tenant's 40 pictures among 12,000 of others that all sit nearer the query: the filter is
    inside the search, so the tenant's own nearest come back, exact scan and HNSW alike, for a few
    rows (compared exactly) and for most of the rows (the ID selector, the in-place mask)."""
    rng = np.random.default_rng(4)
    d = 32
    query = _unit(rng, 1, d)[0].astype(np.float32)
    others = (query + 0.2 * rng.normal(size=(12_000, d))).astype(np.float32)
    mine = rng.normal(size=(40, d)).astype(np.float32)
    stored = np.concatenate([others, mine])
    stored = (stored / np.linalg.norm(stored, axis=1, keepdims=True)).astype(np.float16)
    few = np.arange(12_000, 12_040, dtype=np.int64)
    most = np.arange(1_000, 12_040, dtype=np.int64)
    for index in (EmbeddingIndex(stored, exact=True), EmbeddingIndex(stored, ann_threshold=1_000)):
        for rows in (few, most):
            brute = stored[rows].astype(np.float32) @ query
            want = rows[np.argsort(-brute)[:5]]
            found = index.search(query, 5, rows=rows)
            assert set(found.ids[0].tolist()) <= set(rows.tolist())
            assert found.ids[0, 0] == want[0] and len(set(found.ids[0]) & set(want)) >= 4
    assert EmbeddingIndex(stored, exact=True).search(query, 45, rows=few).ids[0, 40:].tolist() == [-1] * 5
