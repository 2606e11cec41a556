"""``scale.nearest.NearestCodes`` answers as a scan of every stored code does."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import ConfigError
from lookalike.scale.nearest import NearestCodes


def _codes(n: int, seed: int) -> np.ndarray:
    """Random codes, a third of them near copies (a few bits moved), and a run of equal ones."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, n, dtype=np.uint64)
    near = rng.integers(0, n, n // 3)
    for _ in range(rng.integers(1, 8)):
        codes[near] ^= np.uint64(1) << rng.integers(0, 64, len(near)).astype(np.uint64)
    codes[n // 2 : n // 2 + 40] = codes[0]
    return codes


def _scan(stored: np.ndarray, q: np.uint64, r: int) -> tuple[np.ndarray, np.ndarray]:
    d = np.bitwise_count(stored ^ q).astype(np.int64)
    rows = np.flatnonzero(d <= r)
    order = np.lexsort((rows, d[rows]))
    return rows[order], d[rows][order]


@pytest.mark.parametrize("r", [0, 3, 8, 12, 15])
@pytest.mark.parametrize("k", [1, 5])
def test_nearest_is_a_scans_first_k_within_r(r: int, k: int) -> None:
    stored = _codes(3000, r)
    rng = np.random.default_rng(100 + r)
    queries = np.concatenate([stored[rng.integers(0, len(stored), 300)], stored[:3] ^ np.uint64(0b1011)])
    queries = np.concatenate([queries, rng.integers(0, 2**63, 50, dtype=np.uint64)])
    rows, dist = NearestCodes.build(stored).nearest(queries, r, k)
    assert rows.shape == dist.shape == (len(queries), k)
    for q, got_rows, got_d in zip(queries, rows, dist):
        want_rows, want_d = _scan(stored, q, r)
        held = min(k, len(want_rows))
        assert got_rows[:held].tolist() == want_rows[:k].tolist()
        assert got_d[:held].tolist() == want_d[:k].tolist()
        assert (got_rows[held:] == -1).all() and (got_d[held:] == r + 1).all()


def test_a_cluster_larger_than_the_store_is_scanned() -> None:
    """Every code equal: a query's buckets hold each code four times over, so it scans instead."""
    stored = np.full(500, 0xDEAD_BEEF_0123_4567, np.uint64)
    stored[1::50] ^= np.uint64(1 << 40)
    codes = NearestCodes.build(stored)
    rows, dist = codes.nearest(stored[:2], 12, 5)
    assert rows[0].tolist() == [0, 2, 3, 4, 5] and dist[0].tolist() == [0] * 5
    assert rows[1].tolist() == [1, 51, 101, 151, 201] and dist[1].tolist() == [0] * 5


def test_empty_store_and_bad_radius() -> None:
    codes = NearestCodes.build(np.zeros(0, np.uint64))
    rows, dist = codes.nearest(np.array([5], np.uint64), 12, 5)
    assert rows.tolist() == [[-1] * 5] and dist.tolist() == [[13] * 5]
    for r, k in ((-1, 5), (16, 5), (8, 0)):
        with pytest.raises(ConfigError):
            codes.nearest(np.array([5], np.uint64), r, k)
