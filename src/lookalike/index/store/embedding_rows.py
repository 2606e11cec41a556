"""The ``embeddings`` table's statements, written once for both dialects: the ``Embeddings`` role
of ``SQLStore`` (kept apart only so that ``sqlstore`` stays readable in one sitting)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from lookalike.index.store.dialect import Dialect

__all__ = ["EMBEDDING_PUT", "EmbeddingTable"]

#: a file's vector under one model, replacing an older one (a model's name carries its weights' hash)
EMBEDDING_PUT = (
    "INSERT INTO embeddings(file_pk, model, vector) VALUES (?, ?, ?)"
    " ON CONFLICT (file_pk, model) DO UPDATE SET vector = excluded.vector"
)
#: files without a vector under one model (what ``lookalike embed`` back-fills)
_UNEMBEDDED = "FROM files f WHERE NOT EXISTS (SELECT 1 FROM embeddings e WHERE e.file_pk = f.pk AND e.model = ?)"


class EmbeddingTable:
    """The learned tier's vectors per file and model (see ``index.store.interface.Embeddings``)."""

    _db: Dialect

    def put_embeddings(self, model: str, rows: Sequence[tuple[int, bytes]]) -> None:
        """Keep (file row, float16 vector bytes) embeddings under ``model``, replacing what a file
        had under it, in one transaction. Rows of files removed meanwhile are skipped."""
        with self._db.transaction() as tx:
            for chunk in self._db.chunks(list(rows)):
                test, args = self._db.member([pk for pk, _ in chunk])
                present = {int(r[0]) for r in tx.rows(f"SELECT pk FROM files WHERE pk {test}", args)}
                tx.executemany(EMBEDDING_PUT, [(pk, model, v) for pk, v in chunk if pk in present])

    def embeddings(self, model: str, pks: Sequence[int]) -> dict[int, bytes]:
        """The vectors under ``model`` of these files (those that have one)."""
        out: dict[int, bytes] = {}
        for chunk in self._db.chunks(pks):
            test, args = self._db.member(chunk)
            sql = f"SELECT file_pk, vector FROM embeddings WHERE model = ? AND file_pk {test}"
            out.update((int(pk), bytes(v)) for pk, v in self._db.read(sql, [model, *args], binary=True))
        return out

    def embedding_rows(self, model: str, batch: int = 50_000) -> Iterator[list[tuple[int, bytes]]]:
        """Every (file row, vector bytes) under ``model``, in row order, in batches: what the
        in-memory ``SemanticMirror`` is rebuilt from."""
        last = 0
        while True:
            rows = self._db.read(
                "SELECT file_pk, vector FROM embeddings WHERE model = ? AND file_pk > ? ORDER BY file_pk LIMIT ?",
                (model, last, batch),
                binary=True,
            )
            if not rows:
                return
            yield [(int(pk), bytes(v)) for pk, v in rows]
            last = int(rows[-1][0])

    def unembedded(self, model: str, *, after: int, limit: int) -> list[tuple[int, str]]:
        """Up to ``limit`` (file row, source) of the files past row ``after`` without a vector under
        ``model``, in row order: a back-fill's next batch (a re-run starts with what is still missing)."""
        sql = f"SELECT f.pk, f.source {_UNEMBEDDED} AND f.pk > ? ORDER BY f.pk LIMIT ?"
        return [(int(pk), str(src)) for pk, src in self._db.read(sql, (model, after, limit))]

    def count_unembedded(self, model: str) -> int:
        """How many files have no vector under ``model``."""
        return int(self._db.read(f"SELECT COUNT(*) {_UNEMBEDDED}", (model,))[0][0])
