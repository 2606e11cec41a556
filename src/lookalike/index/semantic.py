"""The learned tier inside ``Index``: a check's matches fused with the embedding.

The stored embeddings are searched by the search wing's ``SemanticMirror``
(``index.search.semantic_mirror``), which ``LearnedTier`` keeps in step with the other in-memory
indexes.

``LearnedTier.fuse`` is the one place where the cascade's matches meet the embedding, used by
``lookalike check --learned``, ``lookalike index --learned`` and ``lookalike eval --learned``
alike: the rules are ``lookalike.learned.fusion.fuse_matches`` (a lift, a promotion only when the
cascade and the embedding agree on the best picture) and ``semantic_score`` (neighbours only the
embedding found become ``similar`` matches that say so, never a duplicate).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from lookalike.config import Thresholds
from lookalike.index.results import CheckMatch, LearnedEvidence
from lookalike.index.search.memory import Mirror
from lookalike.index.search.semantic_mirror import ScopeMask, SemanticMirror
from lookalike.index.store.interface import CandidateReader, Embeddings
from lookalike.index.store.records import ImageRecord, StoredFile
from lookalike.learned import Embedder
from lookalike.learned.fusion import FusedMatch, Fusion, fuse_matches, semantic_score
from lookalike.match import Verdict, verdict_for
from lookalike.match.evidence import Basis, Evidence, LearnedRole, render_evidence

__all__ = ["NEIGHBOURS", "LearnedTier"]

#: nearest pictures by embedding each query looks at (for the fusion's margin and the semantic list)
NEIGHBOURS = 10
#: nearest stored vectors of the scope asked of the index per neighbour wanted: an image's other
#: files and the query's own image are skipped after the search (other scopes' files, inside it)
_OVERFETCH = 4


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
