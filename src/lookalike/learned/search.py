"""Nearest embeddings by cosine similarity: exact with NumPy for a small collection, HNSW beyond.

Embeddings are L2-normalised, so cosine similarity is a dot product. Below
``ANN_THRESHOLD`` stored vectors every query is compared with every stored
vector (exact, no build cost). From it on, a FAISS ``IndexHNSWFlat`` over inner
products answers (Malkov and Yashunin, "Efficient and robust approximate
nearest neighbor search using Hierarchical Navigable Small World graphs",
TPAMI 2020): approximate, but its query time grows with log n instead of n.
The threshold and the graph's settings come from ``benchmarks/learned_cost.py``
(see the constant's comment).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError
from lookalike.learned.model import import_extra

__all__ = ["ANN_THRESHOLD", "SELECTIVE_ROWS", "EmbeddingIndex", "Neighbours", "nearest_exact"]

#: stored vectors from which HNSW answers instead of the exact scan. benchmarks/learned_cost.py,
#: one core, 1,280-d vectors of rank 64 plus noise, single queries, CPU time (load ~15 on 2 cores):
#: exact 2.4 ms a query at 10k and 27.7 ms at 100k (linear: ~0.28 ms per 1,000 vectors); HNSW
#: 0.5-1.4 ms at either size but approximate, and 57 s of CPU to build at 100k. Below 20k the scan
#: stays under ~5 ms (5% of the 100 ms a check may take) and is exact, so it is kept there.
ANN_THRESHOLD = 20_000
_HNSW_LINKS = 16  # M, neighbours per node; with efConstruction 40 the 100k build stays under a minute of CPU
_HNSW_EF_BUILD = 40
#: a one-off sweep on the same 100k vectors: efSearch 64 found the planted source of 99.5% of the
#: queries (0.8 ms), 128 of 100% (1.4 ms; 256: 2.5 ms, 512: 4.4 ms); recall@10 of the exact top
#: ten 0.63, 0.75, 0.87, 0.95. Finding the copy is what counts here, so 128.
_HNSW_EF_SEARCH = 128
_CHUNK = 8192  # stored rows per exact product: bounds the scores of a batch of queries
#: a search among fewer rows than this (one scope of a large index) compares with them exactly, even
#: where HNSW answers: ~0.28 ms per 1,000 rows (see ANN_THRESHOLD), and exact
SELECTIVE_ROWS = 8_000


@dataclass(frozen=True, slots=True)
class Neighbours:
    """For each query, the ``k`` best stored rows: ``ids`` (-1 where fewer exist) and their cosine
    ``similarity`` (-1..1), best first."""

    ids: npt.NDArray[np.int64]
    similarity: npt.NDArray[np.float32]

    def padded(self, k: int) -> Neighbours:
        """The same with ``k`` columns, the missing ones -1."""
        more = k - self.ids.shape[1]
        if more <= 0:
            return self
        pad = ((0, 0), (0, more))
        return Neighbours(np.pad(self.ids, pad, constant_values=-1), np.pad(self.similarity, pad, constant_values=-1))


class EmbeddingIndex:
    """Stored embeddings (n, d) searched by cosine similarity; ``exact`` forces or forbids the scan
    (None: exact below ``ann_threshold`` vectors)."""

    def __init__(
        self, vectors: npt.NDArray[Any], *, exact: bool | None = None, ann_threshold: int = ANN_THRESHOLD
    ) -> None:
        if vectors.ndim != 2:
            raise ConfigError(f"embeddings must be (n, d), not {vectors.shape}")
        self._size = len(vectors)
        self.exact = len(vectors) < ann_threshold if exact is None else exact
        self._hnsw: Any = None
        # float32 for the scan: converting float16 blocks on every query cost more than the product
        self._vectors = np.ascontiguousarray(vectors, np.float32) if self.exact else None
        if not self.exact:
            faiss = import_extra("faiss")
            faiss.omp_set_num_threads(1)
            index = faiss.IndexHNSWFlat(vectors.shape[1], _HNSW_LINKS, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = _HNSW_EF_BUILD
            index.hnsw.efSearch = _HNSW_EF_SEARCH
            index.add(np.ascontiguousarray(vectors, np.float32))
            self._hnsw = index

    def __len__(self) -> int:
        return self._size

    def write(self, path: str) -> None:
        """Write the HNSW graph to ``path`` (FAISS's own format), for ``read`` in another process.
        Raises ``ConfigError`` for an exact index (it has no graph: its vectors are the index)."""
        if self._hnsw is None:
            raise ConfigError("an exact embedding index has no graph to write")
        import_extra("faiss").write_index(self._hnsw, path)

    @classmethod
    def read(cls, path: str) -> EmbeddingIndex:
        """The HNSW index ``write`` wrote: the same graph, so the same answers as the one written."""
        faiss = import_extra("faiss")
        faiss.omp_set_num_threads(1)
        index = cls.__new__(cls)
        index._hnsw = faiss.read_index(path)
        index._hnsw.hnsw.efSearch = _HNSW_EF_SEARCH
        index._size, index.exact, index._vectors = int(index._hnsw.ntotal), False, None
        return index

    def search(self, queries: npt.NDArray[Any], k: int, *, rows: npt.NDArray[np.int64] | None = None) -> Neighbours:
        """The ``k`` nearest stored vectors of each query row; with ``rows`` (ascending positions in
        the stored vectors), the nearest among those only, filtered inside the search: the exact
        scan compares with those rows alone; HNSW compares with them alone too while they are fewer
        than ``SELECTIVE_ROWS`` (a graph walk filtered that hard misses neighbours), and beyond
        walks the graph with a FAISS ID selector, so other rows never take a place in the answer."""
        q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
        n = self._size if rows is None else len(rows)
        if n == 0 or k <= 0:
            return Neighbours(np.full((len(q), max(k, 0)), -1, np.int64), np.full((len(q), max(k, 0)), -1, np.float32))
        if self._hnsw is not None and rows is not None and len(rows) < SELECTIVE_ROWS:
            return self._scan(q, k, self._hnsw.reconstruct_batch(rows), rows)
        if self._hnsw is not None:
            params = None
            if rows is not None:
                faiss = import_extra("faiss")
                selector = faiss.IDSelectorBatch(np.ascontiguousarray(rows, np.int64))
                params = faiss.SearchParametersHNSW(sel=selector, efSearch=_HNSW_EF_SEARCH)
            sims, ids = self._hnsw.search(q, k, params=params)
            return Neighbours(ids.astype(np.int64), np.where(ids >= 0, sims, -1).astype(np.float32))
        assert self._vectors is not None  # the exact scan keeps its vectors
        if rows is None or 2 * len(rows) < self._size:
            return self._scan(q, k, self._vectors if rows is None else self._vectors[rows], rows)
        # most rows wanted: scan them all in place (no copy) and give the others no chance
        allowed = np.zeros(self._size, np.bool_)
        allowed[rows] = True
        return self._scan(q, min(k, n), self._vectors, None, allowed=allowed).padded(k)

    @staticmethod
    def _scan(
        q: npt.NDArray[np.float32],
        k: int,
        vectors: npt.NDArray[np.float32],
        rows: npt.NDArray[np.int64] | None,
        *,
        allowed: npt.NDArray[np.bool_] | None = None,
    ) -> Neighbours:
        """The exact ``k`` nearest of ``vectors`` (the stored ``rows``, or all when None), among
        the ``allowed`` ones when given (at least ``k`` of them)."""
        n = len(vectors)
        kk = min(k, n)
        best_s = np.full((len(q), 0), -np.inf, np.float32)
        best_i = np.zeros((len(q), 0), np.int64)
        for start in range(0, n, _CHUNK):
            # float16 vectors (a memory-mapped file of them) are widened a block at a time
            s = q @ np.asarray(vectors[start : start + _CHUNK], np.float32).T
            if allowed is not None:
                s[:, ~allowed[start : start + _CHUNK]] = -np.inf
            s_all = np.concatenate([best_s, s], axis=1)
            i_all = np.concatenate([best_i, np.broadcast_to(np.arange(start, start + s.shape[1]), s.shape)], axis=1)
            top = np.argpartition(-s_all, kk - 1, axis=1)[:, :kk] if s_all.shape[1] > kk else np.argsort(-s_all, axis=1)
            best_s = np.take_along_axis(s_all, top, axis=1)
            best_i = np.take_along_axis(i_all, top, axis=1)
        order = np.argsort(-best_s, axis=1, kind="stable")
        ids = np.take_along_axis(best_i, order, axis=1)
        sims = np.take_along_axis(best_s, order, axis=1)
        if rows is not None:
            ids = rows[ids]
        if kk < k:
            ids = np.pad(ids, ((0, 0), (0, k - kk)), constant_values=-1)
            sims = np.pad(sims, ((0, 0), (0, k - kk)), constant_values=-1)
        return Neighbours(ids.astype(np.int64), sims.astype(np.float32))


def nearest_exact(
    queries: npt.NDArray[Any], vectors: npt.NDArray[Any], k: int, *, allowed: npt.NDArray[np.bool_] | None = None
) -> Neighbours:
    """The exact ``k`` nearest rows of ``vectors`` (n, d), L2-normalised, float16 or float32, e.g.
    memory-mapped: read ``_CHUNK`` rows at a time, never whole) to each query, among the
    ``allowed`` rows when given (fewer allowed than ``k``: the rest of the answer has similarity
    -inf). The scan ``EmbeddingIndex`` answers with below ``ANN_THRESHOLD``."""
    q = np.ascontiguousarray(np.atleast_2d(queries), np.float32)
    if len(vectors) == 0 or k <= 0:
        return Neighbours(np.full((len(q), max(k, 0)), -1, np.int64), np.full((len(q), max(k, 0)), -1, np.float32))
    return EmbeddingIndex._scan(q, k, vectors, None, allowed=allowed)
