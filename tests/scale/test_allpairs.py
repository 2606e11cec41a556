"""The all-pairs Hamming self-join of ``benchmarks/allpairs.py`` (the engine ``find_scale.py``
measures) agrees exactly with brute force, on uniform and clustered codes."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from lookalike.errors import ConfigError

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from allpairs import hamming_pairs  # noqa: E402


def brute(codes: np.ndarray, radius: int) -> set[tuple[int, int, int]]:
    d = np.bitwise_count(codes[:, None] ^ codes[None, :]).astype(int)
    i, j = np.nonzero(np.triu(d <= radius, 1))
    return {(int(a), int(b), int(d[a, b])) for a, b in zip(i, j)}


def codes_with_copies(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 2**64 - 1, size=n, dtype=np.uint64, endpoint=True)
    copies = rng.integers(0, n, size=n // 4)
    for k, src in enumerate(copies):  # edited copies: a few bits flipped
        flips = rng.choice(64, size=int(rng.integers(0, 12)), replace=False)
        codes[(src + 1 + k) % n] = codes[src] ^ np.uint64(sum(1 << int(b) for b in flips))
    codes[: n // 10] = codes[0] ^ rng.integers(0, 256, size=n // 10, dtype=np.uint64)  # one dense cluster
    return codes


@pytest.mark.parametrize(("n", "radius"), [(2500, 0), (2500, 6), (2500, 10), (1500, 13)])
def test_matches_brute_force(n: int, radius: int) -> None:
    codes = codes_with_copies(n, seed=n + radius)
    a, b, d = hamming_pairs(codes, radius, jobs=2)
    got = set(zip(a.tolist(), b.tolist(), d.tolist()))
    assert len(got) == len(a)  # each pair once
    assert got == brute(codes, radius)
    assert np.all(a < b) and np.all(np.diff(a) >= 0)


def test_degenerate_inputs() -> None:
    none = hamming_pairs(np.zeros(1, np.uint64), 5)
    assert all(len(x) == 0 for x in none)
    a, b, d = hamming_pairs(np.zeros(4, np.uint64), 0)  # all the same code
    assert len(a) == 6 and set(d.tolist()) == {0}
    with pytest.raises(ConfigError):
        hamming_pairs(np.zeros(4, np.int64), 3)  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        hamming_pairs(np.zeros(4, np.uint64), -1)
