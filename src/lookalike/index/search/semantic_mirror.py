"""``SemanticMirror``: the learned tier's search engine, every stored file's embedding under one
model kept in memory and searched by cosine.

It holds the stored vectors of one model (``Embeddings.embedding_rows``) in an ``EmbeddingIndex``
(exact below ``ANN_THRESHOLD`` vectors, HNSW beyond), rebuilt on open and followed from the
store's change log like the other in-memory indexes (``index.search.memory``): files added since
the last build are searched exactly beside it (the "tail"), removed ones are skipped, and the
index is rebuilt once the tail or the removals reach an eighth of it, so that adding files one by
one never rebuilds an HNSW graph per file. What a check makes of its neighbours is the
collection's (``index.semantic``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt

from lookalike.index.store.interface import Embeddings
from lookalike.learned import EmbeddingIndex

__all__ = ["ScopeMask", "SemanticMirror"]

#: which of some file rows belong to the query's scope (``Mirror.scope_mask`` for one scope)
ScopeMask = Callable[[npt.NDArray[np.int64]], npt.NDArray[np.bool_]]
_REBUILD_SHARE = 8  # rebuild once the tail or the removals reach 1/8 of the built index


class SemanticMirror:
    """The stored embeddings of one ``model``, searched by cosine (see the module docstring). Not
    thread-safe on its own: ``Index`` calls it holding its ``Mirror``'s lock."""

    def __init__(self, store: Embeddings, model: str) -> None:
        self._store = store
        self.model = model
        self._vectors: dict[int, npt.NDArray[np.float16]] = {}
        for rows in store.embedding_rows(model):
            self._keep(rows)
        self._built_pks = np.zeros(0, np.int64)
        self._index: EmbeddingIndex | None = None
        self._tail: list[int] = []
        self._removed = 0
        self._rebuild()

    def _keep(self, rows: Sequence[tuple[int, bytes]]) -> list[int]:
        new = [pk for pk, _ in rows if pk not in self._vectors]
        self._vectors.update((pk, np.frombuffer(v, np.float16)) for pk, v in rows)
        return new

    def _rebuild(self) -> None:
        pks = np.fromiter(sorted(self._vectors), np.int64, count=len(self._vectors))
        self._built_pks = pks
        self._index = EmbeddingIndex(np.stack([self._vectors[int(p)] for p in pks])) if len(pks) else None
        self._tail, self._removed = [], 0

    def follow(self, added: Sequence[int], removed: Sequence[int]) -> None:
        """Apply the change log's additions (their vectors read from the store) and removals."""
        fresh = [pk for pk in added if pk not in self._vectors]
        if fresh:
            self._tail.extend(self._keep(list(self._store.embeddings(self.model, fresh).items())))
        for pk in removed:
            if self._vectors.pop(pk, None) is not None:
                self._removed += 1
        if max(len(self._tail), self._removed) * _REBUILD_SHARE > max(len(self._built_pks), 64):
            self._rebuild()

    def __len__(self) -> int:
        return len(self._vectors)

    def vector(self, pk: int) -> npt.NDArray[np.float16] | None:
        """The stored vector of file ``pk``, or None when it has none."""
        return self._vectors.get(pk)

    def nearest(self, query: npt.NDArray[np.float16], k: int, in_scope: ScopeMask) -> list[tuple[int, float]]:
        """Up to ``k`` (file row, cosine) of the stored files of the query's scope, nearest first;
        ``in_scope`` says which of some file rows belong to it. The scope is filtered inside the
        search (``EmbeddingIndex.search(rows=...)``): other scopes' files never take a neighbour's
        place, however many of them are nearer."""
        q = query.astype(np.float32)
        found: dict[int, float] = {}
        if self._index is not None:
            rows = np.flatnonzero(in_scope(self._built_pks)).astype(np.int64)
            hits = self._index.search(q[None, :], k + self._removed, rows=rows)  # removed rows may still answer
            for i, c in zip(hits.ids[0], hits.similarity[0], strict=True):
                pk = int(self._built_pks[i]) if i >= 0 else -1
                if pk in self._vectors:
                    found[pk] = float(c)
        alive = np.fromiter((pk for pk in self._tail if pk in self._vectors), np.int64)
        tail = [int(pk) for pk in alive[in_scope(alive)]]
        if tail:
            sims = np.stack([self._vectors[pk] for pk in tail]).astype(np.float32) @ q
            found.update(zip(tail, (float(s) for s in sims), strict=True))
        return sorted(found.items(), key=lambda pc: (-pc[1], pc[0]))[:k]

    def nbytes(self) -> int:
        """Bytes of the stored vectors held (the exact index holds a float32 copy besides)."""
        return sum(v.nbytes for v in self._vectors.values()) * 3
