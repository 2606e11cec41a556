"""The learned tier inside ``Index``: every file's embedding kept in memory and searched by cosine,
and a check's matches fused with it.

``SemanticMirror`` holds the stored vectors of one model (``Embeddings.embedding_rows``) in an
``EmbeddingIndex`` (exact below ``ANN_THRESHOLD`` vectors, HNSW beyond), rebuilt on open and
followed from the store's change log like the other in-memory indexes (``index.search.memory``): files
added since the last build are searched exactly beside it (the "tail"), removed ones are skipped,
and the index is rebuilt once the tail or the removals reach an eighth of it, so that adding
files one by one never rebuilds an HNSW graph per file.

``LearnedTier.fuse`` is the one place where the cascade's matches meet the embedding, used by
``lookalike check --learned``, ``lookalike index --learned`` and ``lookalike eval --learned``
alike: the rules are ``lookalike.learned.fusion.fuse_matches`` (a lift, a promotion only when the
cascade and the embedding agree on the best picture) and ``semantic_score`` (neighbours only the
embedding found become ``similar`` matches that say so, never a duplicate).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from lookalike.config import Thresholds
from lookalike.index.results import CheckMatch, LearnedEvidence
from lookalike.index.search.memory import Mirror
from lookalike.index.store.interface import CandidateReader, Embeddings
from lookalike.index.store.records import ImageRecord, StoredFile
from lookalike.learned import Embedder, EmbeddingIndex
from lookalike.learned.fusion import FusedMatch, Fusion, fuse_matches, semantic_score
from lookalike.match import Verdict, verdict_for
from lookalike.match.evidence import Basis, Evidence, LearnedRole, render_evidence

__all__ = ["NEIGHBOURS", "LearnedTier", "SemanticMirror"]

#: nearest pictures by embedding each query looks at (for the fusion's margin and the semantic list)
NEIGHBOURS = 10
#: nearest stored vectors of the scope asked of the index per neighbour wanted: an image's other
#: files and the query's own image are skipped after the search (other scopes' files, inside it)
_OVERFETCH = 4
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


class LearnedTier:
    """An ``Embedder``, the ``SemanticMirror`` of its model (kept up to date with ``follow``, the
    ``Mirror`` of the other in-memory indexes) and the fusion's settings: what
    ``Index(embedder=...)`` adds to adding and checking (see the module docstring)."""

    def __init__(self, embedder: Embedder, store: Embeddings, thresholds: Thresholds, follow: Mirror) -> None:
        self.embedder = embedder
        self.mirror = SemanticMirror(store, embedder.name)
        follow.followers.append(self.mirror.follow)
        self.rules = Fusion(near_duplicate=thresholds.near_duplicate, similar=thresholds.similar)
        self._thresholds = thresholds

    def embed(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float16]:
        """The embedding of upright decoded pixels (those the fingerprint was computed from)."""
        vector: npt.NDArray[np.float16] = self.embedder.embed_pixels([pixels])[0]
        return vector

    def stored(self, vector: npt.NDArray[np.float16]) -> tuple[str, bytes]:
        """``NewFile.embedding`` for ``vector``."""
        return self.embedder.name, np.ascontiguousarray(vector, np.float16).tobytes()

    def fusion(
        self,
        query: npt.NDArray[np.float16],
        mirror: Mirror,
        files: CandidateReader,
        scope_pk: int,
        exclude_image: int | None,
    ) -> Callable[[list[CheckMatch]], list[CheckMatch]]:
        """``fuse`` for one query in one scope, over ``Index``'s in-memory indexes and store: what
        ``Cascade.check`` calls before a person's decisions."""

        def fused(matches: list[CheckMatch]) -> list[CheckMatch]:
            with mirror.lock:  # the mirror's lock covers this tier's in-memory index too
                return self.fuse(
                    query, matches, lambda pks: mirror.scope_mask(pks, scope_pk),
                    lambda pks: mirror.kept_files(pks, files.files), exclude_image=exclude_image,
                )  # fmt: skip

        return fused

    def with_neighbours(
        self, found: list[CheckMatch], record: ImageRecord, mirror: Mirror, files: CandidateReader, scope_pk: int,
        *, top: int,
    ) -> list[CheckMatch]:  # fmt: skip
        """The cascade's look-alikes of stored image ``record`` (``found``, best first), then apart its
        semantic neighbours by any of its files' vectors, best first, up to ``top`` of each: what a
        check of it would add as ``similar`` on the embedding alone (``Index.similar``, ``GET
        /v1/images/{id}/similar``). A look-alike the cascade called ``different`` that is such a
        neighbour is listed as the neighbour, not twice."""
        listed = {m.image_id for m in found if m.verdict is not Verdict.DIFFERENT}
        best: dict[str, CheckMatch] = {}
        for f in record.files:
            vector = self.mirror.vector(f.pk)
            if vector is not None:
                for m in self.fusion(vector, mirror, files, scope_pk, record.pk)([]):
                    if m.image_id not in listed and (m.image_id not in best or best[m.image_id].score < m.score):
                        best[m.image_id] = m
        semantic = sorted(best.values(), key=lambda m: (-m.score, m.image_id))[:top]
        return [m for m in found if m.image_id not in best][:top] + semantic

    def fuse(
        self,
        query: npt.NDArray[np.float16],
        matches: list[CheckMatch],
        in_scope: ScopeMask,
        files: Callable[[list[int]], list[StoredFile]],
        *,
        exclude_image: int | None = None,
    ) -> list[CheckMatch]:
        """``matches`` (the cascade's, every one) with the embedding fused in, and the semantic
        neighbours the cascade did not report added as ``similar``; best first. ``in_scope``: which
        of some stored files are in the query's scope; ``files``: the stored files of these rows."""
        q32 = query.astype(np.float32)
        # a neighbour below lift_from - margin changes nothing: it lifts nothing, is listed as nothing,
        # and as a runner-up leaves every liftable match its full margin; most queries have none
        # above it, and then no stored row is read
        floor = self.rules.lift_from - self.rules.margin
        with_vector = [(pk, c) for pk, c in self.mirror.nearest(query, _OVERFETCH * NEIGHBOURS, in_scope) if c >= floor]
        by_pk = {f.pk: f for f in files([pk for pk, _ in with_vector])}
        nearest: dict[str, tuple[float, StoredFile]] = {}  # the best file of each image, as matches are
        for pk, c in with_vector:
            f = by_pk.get(pk)
            if f is not None and f.image_pk != exclude_image and f.image_id not in nearest:
                nearest[f.image_id] = (c, f)
        neighbours = [(i, c) for i, (c, _) in list(nearest.items())[:NEIGHBOURS]]
        cosine: dict[str, float] = {}
        for m in matches:
            v = self.mirror.vector(m.file.pk)
            if v is not None:
                cosine[m.image_id] = float(v.astype(np.float32) @ q32)
        plain = [(m.image_id, m.score, m.verdict.is_duplicate) for m in matches]
        out = [
            self._fused(m, f, cosine.get(m.image_id))
            for m, f in zip(matches, fuse_matches(plain, cosine, neighbours, self.rules), strict=True)
        ]
        reported = {m.image_id for m in matches}
        for image_id, c in neighbours:
            if image_id not in reported and c >= self.rules.lift_from:
                f = nearest[image_id][1]
                score = semantic_score(c, self.rules)
                why = _learned_line(c, LearnedRole.SEMANTIC)
                seen = LearnedEvidence(c, semantic=True)
                out.append(CheckMatch(image_id, f, score, Verdict.SIMILAR, why, learned=seen))
        return sorted(out, key=lambda m: (-m.score, m.image_id))

    def _fused(self, m: CheckMatch, f: FusedMatch, cosine: float | None) -> CheckMatch:
        if cosine is None:
            return m
        evidence = LearnedEvidence(cosine, m.score, m.verdict, f.promoted, f.semantic)
        if f.promoted:
            why = _learned_line(cosine, LearnedRole.PROMOTED, m.explanation)
            return replace(m, score=f.score, verdict=Verdict.NEAR_DUPLICATE, explanation=why, learned=evidence)
        if f.semantic:
            why = _learned_line(cosine, LearnedRole.SEMANTIC, m.explanation)
            return replace(m, score=f.score, verdict=Verdict.SIMILAR, explanation=why, learned=evidence)
        if f.score <= m.score:
            return replace(m, learned=evidence)
        verdict = m.verdict if m.verdict.is_duplicate else verdict_for(f.score, self._thresholds)
        why = _learned_line(cosine, LearnedRole.RAISED, m.explanation)
        if m.verdict is Verdict.DIFFERENT and verdict is Verdict.SIMILAR:  # the embedding's word alone
            why = _learned_line(cosine, LearnedRole.SEMANTIC, m.explanation)
            evidence = replace(evidence, semantic=True)
        return replace(m, score=f.score, verdict=verdict, explanation=why, learned=evidence)


def _learned_line(cosine: float, role: LearnedRole, cascade: str | None = None) -> str:
    """The evidence line of what the embedding did (``role``) to the cascade's line ``cascade``."""
    return render_evidence(Evidence(basis=Basis.LEARNED, cosine=cosine, role=role, cascade=cascade))
