"""Arithmetic whose every rounding is ours, so a fingerprint has the same bits on every CPU.

A hash bit is decided by comparing two numbers, and two numbers that are equal in exact arithmetic
(the cells of a plain margin, a coefficient at the median) are decided by their last rounding.
BLAS matrix products (``@``) pick a kernel per CPU (AVX-512 on one machine, AVX2 or NEON on
another), and each kernel sums in its own order and may fuse multiply-adds; NumPy's own ``cos``
and reductions are SIMD-dispatched too. Any of them flips such bits from one machine to the next
(seen: the golden dHash of a stamp with white margins differed between an Intel and an AMD EPYC).

So nothing here goes through BLAS or a dispatched transcendental:

* ``area_sums``: exact area averaging in integers (a compiled kernel; integer sums do not depend
  on their order);
* ``ordered_sum`` / ``ordered_matmul``: float sums in one fixed order (a pairwise tree), of
  additions and multiplications each of which IEEE 754 rounds correctly and the same way on
  every CPU (compiled without fast-math, so never reassociated or fused into multiply-adds);
* ``cos_pi``: cosines computed in decimal arithmetic and rounded once to float64, so the DCT
  matrices are the same bits everywhere.
"""

from __future__ import annotations

from decimal import Decimal, localcontext
from functools import lru_cache

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.kernels import jit

__all__ = ["area_sums", "cos_pi", "ordered_matmul", "ordered_moments", "ordered_sum"]

Float = npt.NDArray[np.float64]

#: pi to 60 digits (more than the 40 the series below carries)
_PI = Decimal("3.14159265358979323846264338327950288419716939937510582097494")


def ordered_sum(values: Float, axis: int = 0) -> Float:
    """Sum along ``axis`` by a fixed pairwise tree of additions (the same bits on every machine,
    unlike ``np.sum``, whose order its SIMD loops choose): the first half of the terms plus the
    second, term by term, an odd last term carried over, until one is left (``_tree_sum``)."""
    x = np.asarray(values, dtype=np.float64)
    if axis != 0:
        x = np.moveaxis(x, axis, 0)
    if x.shape[0] == 0:
        raise ValueError("ordered_sum of no terms")
    rest = x.shape[1:]
    out: Float = _column_sums(np.ascontiguousarray(x.reshape(x.shape[0], -1))).reshape(rest)
    return out


def ordered_matmul(a: Float, b: Float) -> Float:
    """``a @ b`` for 2-D float arrays, each product rounded alone and the products of a cell summed
    by ``ordered_sum``'s tree. Meant for the small products of a fingerprint."""
    return _matmul(np.ascontiguousarray(a, dtype=np.float64), np.ascontiguousarray(b, dtype=np.float64))


def ordered_moments(x: Float) -> tuple[Float, Float]:
    """(mean, standard deviation) of each column of a 2-D float array: ``ordered_sum(x) / n``,
    then the square root of ``ordered_sum(d * d) / n`` with ``d = x - mean``, term by term."""
    moments = _column_moments(np.ascontiguousarray(x, dtype=np.float64))
    return moments[0], moments[1]


# The kernels below are compiled (numba) only to spare NumPy's per-call set-up, which took most of
# a fingerprint's hashing time on 64 x 64 grids (the products of one PDQ DCT were a 512 KB array):
# they do the same IEEE operations in the same order as the element-wise NumPy they replace, with
# numba's default strict floating point (no fast-math, so no reassociation and no fused
# multiply-add), and so give the same bits; ``tests/fingerprints/test_arithmetic.py`` holds them
# to a NumPy transcription of the order.


@jit
def _tree_sum(terms: Float, n: int) -> float:
    # in place: pass by pass, terms[t] += terms[half + t]; an odd last term moves to terms[half]
    while n > 1:
        half = n // 2
        for t in range(half):
            terms[t] = terms[t] + terms[half + t]
        if n % 2:
            terms[half] = terms[2 * half]
            n = half + 1
        else:
            n = half
    return float(terms[0])


@jit
def _column_sums(x: Float) -> Float:
    k, m = x.shape
    out = np.empty(m, np.float64)
    terms = np.empty(k, np.float64)
    for j in range(m):
        for i in range(k):
            terms[i] = x[i, j]
        out[j] = _tree_sum(terms, k)
    return out


@jit
def _column_moments(x: Float) -> Float:
    k, m = x.shape
    out = np.empty((2, m), np.float64)
    terms = np.empty(k, np.float64)
    for j in range(m):
        for i in range(k):
            terms[i] = x[i, j]
        mean = _tree_sum(terms, k) / k
        for i in range(k):
            d = x[i, j] - mean
            terms[i] = d * d
        out[0, j] = mean
        out[1, j] = np.sqrt(_tree_sum(terms, k) / k)
    return out


@jit
def _matmul(a: Float, b: Float) -> Float:
    m, k = a.shape
    n = b.shape[1]
    out = np.empty((m, n), np.float64)
    terms = np.empty(k, np.float64)
    for i in range(m):
        for j in range(n):
            for t in range(k):
                terms[t] = a[i, t] * b[t, j]
            out[i, j] = _tree_sum(terms, k)
    return out


@lru_cache(maxsize=4096)
def _cos_first_quadrant(num: int, den: int) -> Decimal:
    """cos(pi * num / den) for 0 <= num / den <= 1/2, by its Taylor series at 40 digits."""
    with localcontext() as ctx:
        ctx.prec = 40
        x = _PI * num / den
        x2 = x * x
        term, total, k = Decimal(1), Decimal(1), 0
        while True:
            k += 2
            term = -term * x2 / (k * (k - 1))
            if abs(term) < Decimal("1e-45"):
                return +total
            total += term


def cos_pi(num: int, den: int, scale: Decimal = Decimal(1)) -> float:
    """``scale * cos(pi * num / den)``, computed in decimal and rounded once to a float64.

    The argument is reduced exactly (integers) to the first quadrant, so every call with the same
    integers gives the same bits on every machine."""
    m = num % (2 * den)
    if m > den:  # cos is even and 2*pi periodic
        m = 2 * den - m
    sign = 1
    if 2 * m > den:  # cos(pi - x) = -cos(x)
        m, sign = den - m, -1
    with localcontext() as ctx:
        ctx.prec = 40
        return float(sign * scale * _cos_first_quadrant(m, den))


@jit
def _area_sums(rgb: npt.NDArray[np.uint8], side: int, halved: bool) -> npt.NDArray[np.int64]:
    # Distances are in units of 1/side of a pixel: input pixel y covers [y * side, (y + 1) * side),
    # output cell c covers [c * h, (c + 1) * h). Their overlap is an exact integer weight.
    # ``halved``: the input is the 2 x 2 box average of ``rgb`` (``halve``), made row by row here.
    full_h, full_w, channels = rgb.shape
    h, w = (full_h // 2, full_w // 2) if halved else (full_h, full_w)
    width = w * channels
    line = np.empty(width, np.int64)
    rows = np.zeros((side, width), np.int64)  # rows pass: each at most 255 * h
    for y in range(h):
        if halved:
            for x in range(w):
                for k in range(channels):
                    total = np.int64(rgb[2 * y, 2 * x, k]) + np.int64(rgb[2 * y, 2 * x + 1, k])
                    total += np.int64(rgb[2 * y + 1, 2 * x, k]) + np.int64(rgb[2 * y + 1, 2 * x + 1, k])
                    line[x * channels + k] = (total + 2) >> 2
        else:
            for x in range(w):
                for k in range(channels):
                    line[x * channels + k] = rgb[y, x, k]
        lo, hi = y * side, (y + 1) * side
        c = lo // h
        while c < side and c * h < hi:
            weight = min(hi, (c + 1) * h) - max(lo, c * h)
            row = rows[c]
            for i in range(width):
                row[i] += weight * line[i]
            c += 1
    out = np.zeros((side, side, channels), np.int64)
    for c in range(side):
        row = rows[c]
        for x in range(w):
            lo, hi = x * side, (x + 1) * side
            d = lo // w
            while d < side and d * w < hi:
                weight = min(hi, (d + 1) * w) - max(lo, d * w)
                for k in range(channels):
                    out[c, d, k] += weight * row[x * channels + k]
                d += 1
    return out


def area_sums(rgb: npt.NDArray[np.uint8], side: int, *, halved: bool = False) -> tuple[npt.NDArray[np.int64], int]:
    """Exact area averaging of (h, w, channels) uint8 pixels onto a ``side`` x ``side`` grid, in
    integers: (sums, denominator), each cell's mean being ``sums / denominator``.

    Each cell's sum weighs every pixel by the area of it that the cell covers (in units of
    1 / side**2 of a pixel); the weights of one cell add up to h * w of those units.
    ``halved``: average the 2 x 2 box average of ``rgb`` instead, ``(a + b + c + d + 2) >> 2``
    with an odd last row or column dropped (``lookalike.decode.halve``), made on the way rather
    than as a picture of its own."""
    h, w = rgb.shape[:2]
    if halved:
        h, w = h // 2, w // 2
    return _area_sums(np.ascontiguousarray(rgb), side, halved), h * w
