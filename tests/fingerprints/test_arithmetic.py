"""The compiled sums of ``arithmetic`` round exactly as the element-wise NumPy they stand for, so
fingerprints keep their bits: a sum in another order, or a fused multiply-add, flips the last bit
of some of these random sums, and a hash bit decided by such a last bit flips with it."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.decode import halve
from lookalike.fingerprints.arithmetic import area_sums, ordered_matmul, ordered_moments, ordered_sum


def _numpy_ordered_sum(x: np.ndarray) -> np.ndarray:
    """The fixed pairwise order, in element-wise NumPy additions (each rounded alone)."""
    while x.shape[0] > 1:
        half = x.shape[0] // 2
        head = x[:half] + x[half : 2 * half]
        x = np.concatenate([head, x[2 * half :]]) if x.shape[0] % 2 else head
    return x[0]


@pytest.mark.parametrize("terms", [1, 2, 3, 7, 64, 65, 4096])
def test_ordered_sum_rounds_as_pairwise_numpy_additions(terms: int) -> None:
    rng = np.random.default_rng(terms)
    x = rng.standard_normal((terms, 5, 3)) * 10.0 ** rng.integers(-8, 9, (terms, 5, 3))
    assert ordered_sum(x).tobytes() == _numpy_ordered_sum(x).tobytes()
    assert ordered_sum(x, axis=1).tobytes() == _numpy_ordered_sum(np.moveaxis(x, 1, 0)).tobytes()


@pytest.mark.parametrize(("m", "k", "n"), [(8, 32, 32), (16, 64, 64), (64, 16, 16), (8, 64, 9), (3, 5, 1)])
def test_ordered_matmul_rounds_each_product_then_sums_in_order(m: int, k: int, n: int) -> None:
    rng = np.random.default_rng(m * k * n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n)) * 255.0
    expected = _numpy_ordered_sum(a.T[:, :, None] * b[:, None, :])
    assert ordered_matmul(a, b).tobytes() == expected.tobytes()
    assert ordered_matmul(np.asfortranarray(a), b.T.copy().T).tobytes() == expected.tobytes()  # any layout


@pytest.mark.parametrize("terms", [1, 3, 4096, 4097])
def test_ordered_moments_round_as_numpy_mean_and_deviation_in_that_order(terms: int) -> None:
    rng = np.random.default_rng(terms)
    x = rng.standard_normal((terms, 3)) * rng.uniform(0.0, 300.0, (terms, 3))
    mean = _numpy_ordered_sum(x) / np.float64(terms)
    centred = x - mean
    std = np.sqrt(_numpy_ordered_sum(centred * centred) / np.float64(terms))
    got_mean, got_std = ordered_moments(x)
    assert (got_mean.tobytes(), got_std.tobytes()) == (mean.tobytes(), std.tobytes())


@pytest.mark.parametrize(("h", "w"), [(256, 256), (257, 511), (378, 504), (300, 4000), (9, 7)])
def test_halving_inside_the_area_sums_equals_halving_first(h: int, w: int) -> None:
    rng = np.random.default_rng(h + w)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    sums, denominator = area_sums(rgb, 64, halved=True)
    expected, expected_denominator = area_sums(halve(rgb), 64)
    assert denominator == expected_denominator
    np.testing.assert_array_equal(sums, expected)
