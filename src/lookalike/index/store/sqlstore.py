"""The store, written once over a ``Dialect``: every statement and every row mapper of both
``SQLiteStore`` and ``PostgresStore``.

Statements use ``?`` placeholders and SQL that SQLite and PostgreSQL both speak
(``ON CONFLICT ... DO NOTHING`` upserts, ``substr``, ``COALESCE``); what they do
not share is the dialect's (``index.store.dialect``). Every write is one transaction;
the ones that append to the change log say so (``log=True``) so that the
dialect can make sequence numbers commit in order.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Any

from lookalike.errors import AlreadyExists, NotFound
from lookalike.fingerprints import FINGERPRINT_VERSION, Fingerprint, fingerprint_from_bytes, fingerprint_to_bytes
from lookalike.fingerprints.codec import VERSION_OFFSET
from lookalike.index.store.dialect import Dialect, Transaction
from lookalike.index.store.embedding_rows import EMBEDDING_PUT, EmbeddingTable
from lookalike.index.store.records import (
    ApiKey,
    CodeRow,
    Decision,
    ImageRecord,
    NewFile,
    ReviewPair,
    StoredFile,
    StoreStats,
    automatic_image_id,
    signed64,
    unsigned64,
)

__all__ = ["SQLStore"]

_FILE_SELECT = (
    "SELECT f.pk, f.image_pk, i.image_id, s.name, f.rendition, f.source, f.fingerprint, f.created_at"
    " FROM files f JOIN images i ON i.pk = f.image_pk JOIN scopes s ON s.pk = f.scope_pk"
)
_CODE_SELECT = "SELECT f.pk, f.scope_pk, f.phash, c.codes FROM files f LEFT JOIN local_codes c ON c.file_pk = f.pk"
_REVIEW_SELECT = (
    "SELECT r.pk, s.name, ia.image_id, ib.image_id, r.a_pk, r.b_pk, r.score, r.verdict, r.evidence, r.decision,"
    " r.created_at, r.decided_at,"
    " (SELECT source FROM files WHERE image_pk = r.a_pk ORDER BY pk LIMIT 1),"
    " (SELECT source FROM files WHERE image_pk = r.b_pk ORDER BY pk LIMIT 1)"
    " FROM review r JOIN scopes s ON s.pk = r.scope_pk"
    " JOIN images ia ON ia.pk = r.a_pk JOIN images ib ON ib.pk = r.b_pk"
)
_KEY_SELECT = (
    "SELECT k.key_id, s.name, k.name, k.created_at, k.revoked_at FROM api_keys k JOIN scopes s ON s.pk = k.scope_pk"
)
_IMAGE_PK = (
    "SELECT i.pk, i.created_at FROM images i JOIN scopes s ON s.pk = i.scope_pk WHERE s.name = ? AND i.image_id = ?"
)


class SQLStore(EmbeddingTable):
    """Scopes, images, files, fingerprints, embeddings, the change log, review pairs and API keys in one
    database (see ``index.store.schema``). Safe to share between threads; several processes may share
    one database."""

    def __init__(self, dialect: Dialect) -> None:
        self._db = dialect
        self._scope_pks: dict[str, int] = {}
        dialect.migrate()

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    # ---- scopes -------------------------------------------------------------------------------

    def scope_pk(self, name: str) -> int | None:
        """Row of scope ``name``, or None when it holds nothing yet."""
        # scopes are never deleted or renamed, so a row once found is remembered (a look-up asks
        # for it several times: one round trip fewer each, on PostgreSQL)
        pk = self._scope_pks.get(name)
        if pk is None:
            rows = self._db.read("SELECT pk FROM scopes WHERE name = ?", (name,))
            if not rows:
                return None
            pk = self._scope_pks[name] = int(rows[0][0])
        return pk

    def scope_names(self) -> dict[int, str]:
        """Every scope by row."""
        return {int(pk): str(name) for pk, name in self._db.read("SELECT pk, name FROM scopes")}

    def scope_lock(self, scope: str) -> AbstractContextManager[None]:
        """Held by one thread of one process at a time per scope: for check-then-store sequences."""
        return self._db.scope_lock(scope)

    @staticmethod
    def _ensure_scope(tx: Transaction, name: str) -> int:
        tx.execute("INSERT INTO scopes(name) VALUES (?) ON CONFLICT (name) DO NOTHING", (name,))
        return tx.pk("SELECT pk FROM scopes WHERE name = ?", (name,))

    # ---- files --------------------------------------------------------------------------------

    def add_files(self, items: Iterable[NewFile]) -> list[tuple[StoredFile, bool]]:
        """Add files in one transaction. For each: the stored file and whether it is new.

        Bytes already in the scope are not stored again: the existing file is returned.
        An ``image_id`` that exists in the scope gets the file as another rendition.
        """
        out: list[tuple[StoredFile, bool]] = []
        now = time.time()
        with self._db.transaction(log=True) as tx:
            for item in items:
                fp = item.fingerprint
                scope_pk = self._ensure_scope(tx, item.scope)
                row = tx.row(
                    f"{_FILE_SELECT} WHERE f.scope_pk = ? AND f.sha256 = ?", (scope_pk, fp.sha256), binary=True
                )
                if row is not None:
                    out.append((_file(row), False))
                    continue

                def taken(candidate: str, scope_pk: int = scope_pk) -> bool:
                    sql = "SELECT 1 FROM images WHERE scope_pk = ? AND image_id = ?"
                    return tx.row(sql, (scope_pk, candidate)) is not None

                image_id = item.image_id or automatic_image_id(fp.sha256, taken)
                tx.execute(
                    "INSERT INTO images(scope_pk, image_id, created_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (scope_pk, image_id) DO NOTHING",
                    (scope_pk, image_id, now),
                )
                image_pk = tx.pk("SELECT pk FROM images WHERE scope_pk = ? AND image_id = ?", (scope_pk, image_id))
                out.append((_insert_file(tx, item, image_pk, scope_pk, image_id, item.rendition, now), True))
        return out

    def replace_file(self, file_pk: int, item: NewFile) -> StoredFile:
        """Put ``item`` (its fingerprint, source, local features and embedding) in the place of the
        stored file ``file_pk``, in one transaction: the new row belongs to the old one's image, under
        its rendition, and the old row goes; the image keeps its id, other renditions and review
        pairs. Raises ``NotFound`` (no such row) or ``AlreadyExists`` (the scope has the bytes)."""
        with self._db.transaction(log=True) as tx:
            row = tx.row(f"{_FILE_SELECT} WHERE f.pk = ?", (file_pk,), binary=True)
            if row is None:
                raise NotFound(f"no stored file {file_pk}")
            old = _file(row)
            scope_pk = tx.pk("SELECT scope_pk FROM files WHERE pk = ?", (file_pk,))
            if tx.row("SELECT 1 FROM files WHERE scope_pk = ? AND sha256 = ?", (scope_pk, item.fingerprint.sha256)):
                raise AlreadyExists(f"these bytes are stored already in scope {old.scope!r}")
            self._delete_file_rows(tx, "= ?", [file_pk])
            return _insert_file(tx, item, old.image_pk, scope_pk, old.image_id, old.rendition, time.time())

    @staticmethod
    def _delete_file_rows(tx: Transaction, test: str, args: Sequence[object]) -> list[int]:
        """Delete the files whose row passes ``test`` (``= ?``, ``IN (SELECT ...)``) with their
        features, codes and embeddings, and log their removal; their rows."""
        pks = [int(r[0]) for r in tx.rows(f"SELECT pk FROM files WHERE pk {test}", args)]
        for table in ("local_features", "local_codes", "embeddings"):
            tx.execute(f"DELETE FROM {table} WHERE file_pk {test}", args)
        tx.execute(f"DELETE FROM files WHERE pk {test}", args)
        tx.executemany("INSERT INTO changes(file_pk, added) VALUES (?, ?)", [(p, False) for p in pks])
        return pks

    def _files(self, column: str, keys: Sequence[object], order: str = "") -> list[StoredFile]:
        """Files whose ``column`` is one of ``keys``; in binary, so that fingerprints arrive as bytes
        rather than (on PostgreSQL) hex text to decode."""
        found: list[StoredFile] = []
        for chunk in self._db.chunks(keys):
            test, args = self._db.member(chunk)
            found.extend(
                _file(r) for r in self._db.read(f"{_FILE_SELECT} WHERE {column} {test}{order}", args, binary=True)
            )
        return found

    def files(self, pks: Sequence[int]) -> list[StoredFile]:
        """The files with these rows (missing rows are skipped), in the order asked."""
        found = {f.pk: f for f in self._files("f.pk", pks)}
        return [found[p] for p in pks if p in found]

    def local_features(self, pks: Sequence[int]) -> dict[int, bytes]:
        """The stored local features of these files (those that have them)."""
        out: dict[int, bytes] = {}
        for chunk in self._db.chunks(pks):
            test, args = self._db.member(chunk)
            rows = self._db.read(f"SELECT file_pk, data FROM local_features WHERE file_pk {test}", args, binary=True)
            out.update((int(pk), bytes(data)) for pk, data in rows)
        return out

    def files_by_sha(self, scope: str, sha256: bytes) -> list[StoredFile]:
        """Files of ``scope`` with exactly these bytes."""
        rows = self._db.read(f"{_FILE_SELECT} WHERE s.name = ? AND f.sha256 = ?", (scope, sha256), binary=True)
        return [_file(r) for r in rows]

    def set_pixel_digest(self, file_pk: int, fp: Fingerprint) -> None:
        """Keep a pixel digest computed after the file was stored."""
        if fp.pixel_digest is None:
            return
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE files SET pixel_digest = ?, fingerprint = ? WHERE pk = ?",
                (fp.pixel_digest, fingerprint_to_bytes(fp), file_pk),
            )

    # ---- the change log -----------------------------------------------------------------------

    def codes(self, after_pk: int = 0, batch: int = 100_000) -> Iterator[list[CodeRow]]:
        """Every file's hashes, in row order, in batches: what an in-memory index is rebuilt from."""
        last = after_pk
        while True:
            rows = self._db.read(f"{_CODE_SELECT} WHERE f.pk > ? ORDER BY f.pk LIMIT ?", (last, batch), binary=True)
            if not rows:
                return
            yield [_code_row(r) for r in rows]
            last = int(rows[-1][0])

    def last_change(self) -> int:
        """Sequence number of the newest change."""
        return int(self._db.read("SELECT COALESCE(MAX(seq), 0) FROM changes")[0][0])

    def changes_since(self, seq: int) -> tuple[int, list[CodeRow], list[int]]:
        """(newest seq, files added since ``seq`` and still present, file rows removed since ``seq``)."""
        rows = self._db.read("SELECT seq, file_pk, added FROM changes WHERE seq > ? ORDER BY seq", (seq,))
        if not rows:
            return seq, [], []
        newest = int(rows[-1][0])
        added = sorted({int(f) for _, f, a in rows if a})
        removed = sorted({int(f) for _, f, a in rows if not a})
        present: list[CodeRow] = []
        for chunk in self._db.chunks(added):
            test, args = self._db.member(chunk)
            sql = f"{_CODE_SELECT} WHERE f.pk {test} ORDER BY f.pk"
            present.extend(_code_row(r) for r in self._db.read(sql, args, binary=True))
        return newest, present, removed

    # ---- images -------------------------------------------------------------------------------

    def image(self, scope: str, image_id: str) -> ImageRecord:
        """The image ``image_id`` of ``scope`` with its files. Raises ``NotFound``."""
        rows = self._db.read(_IMAGE_PK, (scope, image_id))
        if not rows:
            raise NotFound(f"no image {image_id!r} in scope {scope!r}")
        pk, created = int(rows[0][0]), float(rows[0][1])
        files = tuple(self._files("f.image_pk", [pk], " ORDER BY f.pk"))
        return ImageRecord(pk=pk, image_id=image_id, scope=scope, created_at=created, files=files)

    def images(self, scope: str, *, after: str = "", limit: int = 100) -> list[ImageRecord]:
        """Images of ``scope`` ordered by id (byte by byte), starting after ``after`` (for paging):
        one query for the images, one for their files."""
        by = f"i.image_id{self._db.bytewise}"
        rows = self._db.read(
            "SELECT i.pk, i.image_id, i.created_at FROM images i JOIN scopes s ON s.pk = i.scope_pk"
            f" WHERE s.name = ? AND {by} > ? ORDER BY {by} LIMIT ?",
            (scope, after, limit),
        )
        files: dict[int, list[StoredFile]] = {}
        for f in self._files("f.image_pk", [int(r[0]) for r in rows], " ORDER BY f.pk"):
            files.setdefault(f.image_pk, []).append(f)
        return [
            ImageRecord(pk=int(pk), image_id=str(i), scope=scope, created_at=float(c), files=tuple(files.get(pk, ())))
            for pk, i, c in rows
        ]

    def remove_image(self, scope: str, image_id: str) -> list[int]:
        """Delete an image, its files and its review pairs; returns the file rows removed. Raises ``NotFound``."""
        with self._db.transaction(log=True) as tx:
            row = tx.row(_IMAGE_PK, (scope, image_id))
            if row is None:
                raise NotFound(f"no image {image_id!r} in scope {scope!r}")
            file_pks = self._delete_file_rows(tx, "IN (SELECT pk FROM files WHERE image_pk = ?)", [int(row[0])])
            tx.execute("DELETE FROM images WHERE pk = ?", (int(row[0]),))  # review pairs cascade
        return file_pks

    # ---- review -------------------------------------------------------------------------------

    def add_review(self, scope: str, a_pk: int, b_pk: int, *, score: float, verdict: str, evidence: str) -> None:
        """Record a potential-duplicate pair (once; a pair already recorded keeps its decision)."""
        if a_pk == b_pk:
            return
        lo, hi = sorted((a_pk, b_pk))
        with self._db.transaction() as tx:
            scope_pk = self._ensure_scope(tx, scope)
            tx.execute(
                "INSERT INTO review(scope_pk, a_pk, b_pk, score, verdict, evidence, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (a_pk, b_pk) DO NOTHING",
                (scope_pk, lo, hi, score, verdict, evidence, time.time()),
            )

    def reviews(self, scope: str | None, decision: Decision | None = Decision.PENDING) -> list[ReviewPair]:
        """Review pairs of ``scope`` (all scopes if None) with ``decision`` (any if None), best score first."""
        where, args = [], []
        if scope is not None:
            where.append("s.name = ?")
            args.append(scope)
        if decision is not None:
            where.append("r.decision = ?")
            args.append(decision.value)
        sql = _REVIEW_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.score DESC, r.pk"
        return [_review(r) for r in self._db.read(sql, args)]

    def review_pair(self, pair_pk: int, scope: str | None = None) -> ReviewPair:
        """One review pair. Raises ``NotFound`` (also when it belongs to another scope)."""
        rows = self._db.read(_REVIEW_SELECT + " WHERE r.pk = ?", (pair_pk,))
        if not rows or (scope is not None and rows[0][1] != scope):
            raise NotFound(f"no review pair {pair_pk}")
        return _review(rows[0])

    def decide(self, pair_pk: int, decision: Decision, scope: str | None = None) -> ReviewPair:
        """Store a person's decision on a pair. Raises ``NotFound``."""
        self.review_pair(pair_pk, scope)
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE review SET decision = ?, decided_at = ? WHERE pk = ?", (decision.value, time.time(), pair_pk)
            )
        return self.review_pair(pair_pk, scope)

    def decide_images(self, scope: str, a_pk: int, b_pk: int, decision: Decision) -> None:
        """Record a decision on two images, adding the pair if it was not under review."""
        lo, hi = sorted((a_pk, b_pk))
        now = time.time()
        with self._db.transaction() as tx:
            scope_pk = self._ensure_scope(tx, scope)
            tx.execute(
                "INSERT INTO review(scope_pk, a_pk, b_pk, score, verdict, evidence, decision, created_at, decided_at)"
                " VALUES (?, ?, ?, 0, 'similar', '', ?, ?, ?) ON CONFLICT (a_pk, b_pk)"
                " DO UPDATE SET decision = excluded.decision, decided_at = excluded.decided_at",
                (scope_pk, lo, hi, decision.value, now, now),
            )

    def decisions(self, image_pks: Iterable[int]) -> dict[tuple[int, int], Decision]:
        """Decided pairs touching any of these images, keyed (smaller pk, larger pk)."""
        out: dict[tuple[int, int], Decision] = {}
        for chunk in self._db.chunks(sorted(set(image_pks))):
            test, args = self._db.member(chunk)
            rows = self._db.read(
                f"SELECT a_pk, b_pk, decision FROM review WHERE decision != 'pending' AND (a_pk {test} OR b_pk {test})",
                args + args,
            )
            out.update(((int(a), int(b)), Decision(d)) for a, b, d in rows)
        return out

    # ---- API keys -----------------------------------------------------------------------------

    def add_api_key(self, scope: str, key_id: str, key_hash: bytes, *, name: str = "") -> ApiKey:
        """Store a new key's id and hash for ``scope``. Raises ``AlreadyExists`` for a key with
        this id or hash."""
        now = time.time()
        try:
            with self._db.transaction() as tx:
                scope_pk = self._ensure_scope(tx, scope)
                tx.execute(
                    "INSERT INTO api_keys(key_id, scope_pk, key_hash, name, created_at) VALUES (?, ?, ?, ?, ?)",
                    (key_id, scope_pk, key_hash, name, now),
                )
        except AlreadyExists as exc:
            raise AlreadyExists(f"an API key with the id {key_id!r} or this hash exists already") from exc
        return ApiKey(key_id=key_id, scope=scope, name=name, created_at=now)

    def api_key_scope(self, key_hash: bytes) -> str | None:
        """The scope of the live key with this hash, or None."""
        rows = self._db.read(_KEY_SELECT + " WHERE k.key_hash = ? AND k.revoked_at IS NULL", (key_hash,))
        return str(rows[0][1]) if rows else None

    def api_keys(self, scope: str | None = None) -> list[ApiKey]:
        """Keys (live and revoked) of ``scope`` or of every scope, oldest first."""
        sql = _KEY_SELECT + (" WHERE s.name = ?" if scope is not None else "") + " ORDER BY k.created_at, k.key_id"
        return [_api_key(r) for r in self._db.read(sql, () if scope is None else (scope,))]

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key (it stays listed). Raises ``NotFound``."""
        with self._db.transaction() as tx:
            tx.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (time.time(), key_id)
            )
        rows = self._db.read(_KEY_SELECT + " WHERE k.key_id = ?", (key_id,))
        if not rows:
            raise NotFound(f"no API key {key_id!r}")
        return _api_key(rows[0])

    # ---- stats --------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Counts of what is stored."""
        (scopes, images, files, pending, decided, outdated) = self._db.read(
            "SELECT (SELECT COUNT(*) FROM scopes), (SELECT COUNT(*) FROM images), (SELECT COUNT(*) FROM files),"
            " (SELECT COUNT(*) FROM review WHERE decision = 'pending'),"
            " (SELECT COUNT(*) FROM review WHERE decision != 'pending'),"
            f" (SELECT COUNT(*) FROM files WHERE substr(fingerprint, {VERSION_OFFSET + 1}, 2) < ?)",
            (FINGERPRINT_VERSION.to_bytes(2, "big"),),
        )[0]
        return StoreStats(
            scopes=int(scopes), images=int(images), files=int(files),
            review_pending=int(pending), review_decided=int(decided), bytes_on_disk=self._db.bytes_on_disk(),
            outdated_fingerprints=int(outdated),
        )  # fmt: skip


def _insert_file(
    tx: Transaction, item: NewFile, image_pk: int, scope_pk: int, image_id: str, rendition: str, now: float
) -> StoredFile:
    """Insert one file row of image ``image_pk`` (with its features, codes and embedding) and log it."""
    fp = item.fingerprint
    pk = tx.insert(
        "INSERT INTO files(image_pk, scope_pk, rendition, source, sha256, pixel_digest, phash, pdq,"
        " fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (image_pk, scope_pk, rendition, item.source, fp.sha256, fp.pixel_digest, signed64(fp.phash), fp.pdq,
         fingerprint_to_bytes(fp), now),
    )  # fmt: skip
    tx.execute("INSERT INTO changes(file_pk, added) VALUES (?, ?)", (pk, True))
    if item.local is not None:
        tx.execute("INSERT INTO local_features(file_pk, data) VALUES (?, ?)", (pk, item.local))
        tx.execute("INSERT INTO local_codes(file_pk, codes) VALUES (?, ?)", (pk, item.local_codes))
    if item.embedding is not None:
        tx.execute(EMBEDDING_PUT, (pk, *item.embedding))
    return StoredFile(pk=pk, image_pk=image_pk, image_id=image_id, scope=item.scope, rendition=rendition,
                      source=item.source, fingerprint=fp, created_at=now)  # fmt: skip


def _code_row(row: Sequence[Any]) -> CodeRow:
    p, s, h, c = row
    return CodeRow(int(p), int(s), unsigned64(int(h)), bytes(c) if c is not None else b"")


def _file(row: Sequence[Any]) -> StoredFile:
    pk, image_pk, image_id, scope, rendition, source, blob, created = row
    return StoredFile(
        pk=int(pk), image_pk=int(image_pk), image_id=str(image_id), scope=str(scope),
        rendition=str(rendition), source=str(source), fingerprint=fingerprint_from_bytes(bytes(blob)),
        created_at=float(created),
    )  # fmt: skip


def _review(row: Sequence[Any]) -> ReviewPair:
    pk, scope, a_id, b_id, a_pk, b_pk, score, verdict, evidence, decision, created, decided, a_src, b_src = row
    return ReviewPair(
        pk=int(pk), scope=str(scope), a_id=str(a_id), b_id=str(b_id), a_pk=int(a_pk), b_pk=int(b_pk),
        score=float(score), verdict=str(verdict), evidence=str(evidence), decision=Decision(decision),
        created_at=float(created), decided_at=None if decided is None else float(decided),
        a_source=a_src or "", b_source=b_src or "",
    )  # fmt: skip


def _api_key(row: Sequence[Any]) -> ApiKey:
    key_id, scope, name, created, revoked = row
    return ApiKey(
        key_id=str(key_id), scope=str(scope), name=str(name), created_at=float(created),
        revoked_at=None if revoked is None else float(revoked),
    )  # fmt: skip
