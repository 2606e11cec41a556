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
