"""Compiled kernels over binary descriptors (numba), shared by matching and the indexes.

Codes are handled as uint64 words: a 256-bit ORB descriptor is four words,
and the distance of two codes is the POPCNT of their XOR, word by word.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

import numba
import numpy as np
import numpy.typing as npt
from llvmlite import ir
from numba.core import cgutils, types
from numba.extending import intrinsic

__all__ = ["jit", "popcount", "prefetch", "two_nearest", "uncompiled"]

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]
_F = TypeVar("_F", bound=Callable[..., Any])


#: every kernel made by ``jit``, for ``uncompiled``
_KERNELS: list[Any] = []


def jit(fn: _F) -> _F:
    """Compile ``fn`` with numba (nopython, GIL released), cached on disk where one is writable."""
    try:
        kernel = numba.njit(cache=True, nogil=True)(fn)
    except RuntimeError:  # numba found no writable cache directory: compile in each process
        kernel = numba.njit(nogil=True)(fn)
    _KERNELS.append(kernel)
    return cast(_F, kernel)


def uncompiled(modules: tuple[str, ...]) -> list[str]:
    """Those of ``modules`` (loaded module names) none of whose kernels has a compiled copy in
    numba's disk cache yet: a run that uses them compiles them first, which takes seconds (a module
    with some kernels compiled has been run before; kernels only other kernels call never get a
    cache entry of their own). Reads numba's cache index paths, a private attribute, defensively."""
    cached: dict[str, bool] = {}
    for kernel in _KERNELS:
        module = kernel.py_func.__module__
        if module not in modules:
            continue
        try:
            index_path = kernel._cache._cache_file._index_path
        except AttributeError:  # no disk cache (or another numba): nothing to tell
            return []
        cached[module] = cached.get(module, False) or os.path.exists(index_path)
    return [m for m, any_cached in cached.items() if not any_cached]


_M1, _M2 = np.uint64(0x5555_5555_5555_5555), np.uint64(0x3333_3333_3333_3333)
_M4, _H01 = np.uint64(0x0F0F_0F0F_0F0F_0F0F), np.uint64(0x0101_0101_0101_0101)


@jit
def popcount(x: np.uint64) -> np.int64:
    """Set bits of x: the SWAR idiom, which LLVM compiles to one POPCNT instruction."""
    x = x - ((x >> np.uint64(1)) & _M1)
    x = (x & _M2) + ((x >> np.uint64(2)) & _M2)
    x = (x + (x >> np.uint64(4))) & _M4
    return np.int64((x * _H01) >> np.uint64(56))


@intrinsic
def _prefetch(typingctx: Any, array: Any, row: Any) -> Any:
    """Within a kernel, ``prefetch(a, i)`` asks the processor to bring the cache line where row ``i``
    of array ``a`` starts into its caches, and goes on without waiting: a hint (LLVM's
    ``llvm.prefetch``, x86's PREFETCHT0), which reads nothing, faults on no page and changes no
    answer. A kernel that knows which rows it reads next asks for them a few steps ahead, so that
    their misses of the caches overlap instead of each waiting in turn."""
    if not (isinstance(array, types.Array) and isinstance(row, types.Integer)):
        return None

    def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
        array_type = signature.args[0]
        a = context.make_array(array_type)(context, builder, args[0])
        at = [context.cast(builder, args[1], signature.args[1], types.intp)]
        at += [context.get_constant(types.intp, 0)] * (array_type.ndim - 1)
        shape = cgutils.unpack_tuple(builder, a.shape)  # type: ignore[no-untyped-call]
        strides = cgutils.unpack_tuple(builder, a.strides)  # type: ignore[no-untyped-call]
        where = cgutils.get_item_pointer2(  # type: ignore[no-untyped-call]
            context, builder, data=a.data, shape=shape, strides=strides, layout=array_type.layout, inds=at
        )
        byte_ptr, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
        hint = cgutils.get_or_insert_function(  # type: ignore[no-untyped-call]
            builder.module, ir.FunctionType(ir.VoidType(), [byte_ptr, i32, i32, i32]), "llvm.prefetch.p0"
        )
        builder.call(hint, [builder.bitcast(where, byte_ptr), i32(0), i32(3), i32(1)])  # read, keep in all caches, data
        return context.get_dummy_value()

    return types.none(array, row), codegen


#: ``_prefetch`` as kernels call it
prefetch = cast(Callable[[npt.NDArray[Any], int], None], _prefetch)


_FAR = 1 << 30  # the distance reported when there is no nearest or second nearest code


@jit
def _two_nearest(q: U64, by_word: U64) -> tuple[I64, I64, I64]:
    """``two_nearest`` over words: ``q`` (n, words), ``by_word`` the stored codes' words (words, m).

    Distances to all stored codes are summed word by word into one row, then its least, the first
    code at it and the least of the others are read off: loops without branches that LLVM turns
    into SIMD (VPOPCNTQ where the CPU has it), 2-3x faster than keeping the best two while comparing."""
    n, words, m = q.shape[0], q.shape[1], by_word.shape[1]
    nearest = np.full(n, -1, np.int64)
    first = np.full(n, _FAR, np.int64)
    second = np.full(n, _FAR, np.int64)
    if m == 0:
        return nearest, first, second
    dist = np.empty(m, np.int32)
    far = np.int32(_FAR)
    for i in range(n):
        dist[:] = 0
        for w in range(words):
            qw, row = q[i, w], by_word[w]
            for j in range(m):
                dist[j] += np.int32(popcount(qw ^ row[j]))
        b1 = far
        for j in range(m):
            b1 = min(b1, dist[j])
        i1 = 0
        while dist[i1] != b1:  # the first code at the least distance, as a scan keeping the best would
            i1 += 1
        b2 = far
        for j in range(m):
            b2 = min(b2, dist[j] if j != i1 else far)
        nearest[i], first[i], second[i] = i1, b1, b2
    return nearest, first, second


def two_nearest(query: npt.NDArray[np.uint8], stored: npt.NDArray[np.uint8]) -> tuple[I64, I64, I64]:
    """For each query code (rows of uint8, a multiple of 8 bytes wide): the row of its nearest
    stored code (the first of equals), its distance in bits, and the distance of the second nearest
    (2**30 when there is none; equal to the first when two codes are as near). Brute force: meant
    for the few hundred codes of two pictures."""
    words = query.shape[1] // 8
    q = np.ascontiguousarray(query).view(np.uint64).reshape(-1, words)
    by_word = np.ascontiguousarray(np.ascontiguousarray(stored).view(np.uint64).reshape(-1, words).T)
    return _two_nearest(q, by_word)
