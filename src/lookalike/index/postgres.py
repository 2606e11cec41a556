"""The server store: the same tables and behaviour as ``SQLiteStore``, in PostgreSQL (psycopg 3).

Schema changes are numbered migrations recorded in ``schema_migrations``;
opening a store applies the missing ones under an advisory lock, so several
processes starting at once migrate once. A database migrated by a newer
lookalike is refused.

Two advisory locks (two-key form, class ids below) keep the semantics of the
single-writer SQLite file:

* every write that appends to the change log holds the *log* lock until it
  commits, so change sequence numbers commit in order and a process reading
  ``changes_since`` never skips a change that commits late;
* ``scope_lock(scope)`` holds a per-scope lock on its own connection (never one
  from the pool, so waiting for it cannot starve the pool that its holder needs).

Hash codes are unsigned 64-bit; ``bigint`` is signed, so they are stored as
``signed64`` like in SQLite.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from lookalike.errors import NotFound, StoreError
from lookalike.fingerprints import FINGERPRINT_VERSION, Fingerprint, fingerprint_from_bytes, fingerprint_to_bytes
from lookalike.fingerprints.codec import VERSION_OFFSET
from lookalike.index.records import (
    ApiKey,
    Decision,
    ImageRecord,
    ReviewPair,
    StoredFile,
    StoreStats,
    automatic_image_id,
)
from lookalike.index.sqlite import CodeRow, NewFile, signed64, unsigned64

__all__ = ["MIGRATIONS", "PostgresStore"]

#: advisory lock classes (first key of the two-key form)
_LOCK_MIGRATE = 7_401
_LOCK_LOG = 7_402
_LOCK_SCOPE = 7_403

#: (version, statements): append only; never edit a released migration
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE scopes (
    pk BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE images (
    pk BIGSERIAL PRIMARY KEY,
    scope_pk BIGINT NOT NULL REFERENCES scopes(pk),
    image_id TEXT NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (scope_pk, image_id)
);
CREATE TABLE files (
    pk BIGSERIAL PRIMARY KEY,
    image_pk BIGINT NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    scope_pk BIGINT NOT NULL REFERENCES scopes(pk),
    rendition TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    sha256 BYTEA NOT NULL,
    pixel_digest BYTEA,
    phash BIGINT NOT NULL,
    pdq BYTEA NOT NULL,
    fingerprint BYTEA NOT NULL,
    created_at DOUBLE PRECISION NOT NULL,
    UNIQUE (scope_pk, sha256)
);
CREATE INDEX files_image ON files(image_pk);
CREATE INDEX files_pixel ON files(scope_pk, pixel_digest) WHERE pixel_digest IS NOT NULL;
CREATE TABLE changes (
    seq BIGSERIAL PRIMARY KEY,
    file_pk BIGINT NOT NULL,
    added BOOLEAN NOT NULL
);
CREATE TABLE review (
    pk BIGSERIAL PRIMARY KEY,
    scope_pk BIGINT NOT NULL REFERENCES scopes(pk),
    a_pk BIGINT NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    b_pk BIGINT NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    score DOUBLE PRECISION NOT NULL,
    verdict TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL DEFAULT 'pending',
    created_at DOUBLE PRECISION NOT NULL,
    decided_at DOUBLE PRECISION,
    UNIQUE (a_pk, b_pk),
    CHECK (a_pk < b_pk)
);
CREATE INDEX review_scope ON review(scope_pk, decision);
CREATE INDEX review_b ON review(b_pk);
CREATE TABLE local_features (
    file_pk BIGINT PRIMARY KEY REFERENCES files(pk) ON DELETE CASCADE,
    data BYTEA NOT NULL
);
CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    scope_pk BIGINT NOT NULL REFERENCES scopes(pk),
    key_hash BYTEA NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    created_at DOUBLE PRECISION NOT NULL,
    revoked_at DOUBLE PRECISION
);
""",
    ),
    (
        2,
        """
CREATE TABLE local_codes (
    file_pk BIGINT PRIMARY KEY REFERENCES files(pk) ON DELETE CASCADE,
    codes BYTEA NOT NULL
);
INSERT INTO local_codes(file_pk, codes)
    SELECT file_pk, substring(data FROM 13 + 4 * ((length(data) - 12) / 36)
                                   FOR 32 * least(64, (length(data) - 12) / 36))
    FROM local_features;
""",
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]

_POOL_SIZE = 8


class _Pool:
    """A few autocommit connections shared by threads; a connection that failed is replaced."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self._idle: queue.LifoQueue[psycopg.Connection[Any]] = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._closed = False

    def connect(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {_one_line(exc)}") from exc

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise StoreError("the store is closed")
        with self._slots:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = self.connect()
            try:
                yield conn
            except psycopg.OperationalError:
                conn.close()  # the server went away or the link broke: never reuse it
                raise
            except BaseException:
                if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                    conn.close()
                    raise
                self._idle.put(conn)
                raise
            else:
                self._idle.put(conn)

    def close(self) -> None:
        self._closed = True
        while True:
            try:
                self._idle.get_nowait().close()
            except queue.Empty:
                return


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class PostgresStore:
    """``SQLiteStore``'s interface over a PostgreSQL database (a ``postgresql://`` URL). Thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = _Pool(url, _POOL_SIZE)
        self._scope_pks: dict[str, int] = {}
        self._migrate()

    def close(self) -> None:
        """Close every connection."""
        self._pool.close()

    # ---- plumbing ----------------------------------------------------------------------------

    def _migrate(self) -> None:
        with self._write() as db:
            db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_MIGRATE,))
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {int(r[0]) for r in db.execute("SELECT version FROM schema_migrations").fetchall()}
            newest = max(done, default=0)
            if newest > SCHEMA_VERSION:
                raise StoreError(
                    f"database made by a newer lookalike (schema {newest}, this one reads {SCHEMA_VERSION})"
                )
            for version, sql in MIGRATIONS:
                if version not in done:
                    db.execute(sql)
                    db.execute("INSERT INTO schema_migrations(version) VALUES (%s)", (version,))

    @contextmanager
    def _write(self, *, log: bool = False) -> Iterator[psycopg.Connection[Any]]:
        """One transaction; with ``log``, holding the change-log lock until it commits."""
        try:
            with self._pool.connection() as db, db.transaction():
                if log:
                    db.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_LOG,))
                yield db
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {_one_line(exc)}") from exc

    def _read(self, sql: str, args: Sequence[object] = (), *, binary: bool = False) -> list[Any]:
        """Rows of one query; ``binary`` for rows of large ``bytea`` values, which then arrive as
        they are instead of as hex text (half the bytes, no decoding)."""
        try:
            with self._pool.connection() as db:
                return db.execute(sql, args, binary=binary).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {_one_line(exc)}") from exc

    def _files(self, where: str, args: Sequence[object]) -> list[StoredFile]:
        """Files selected by ``where`` (a WHERE clause over ``files f``, ``images i``, ``scopes
        s``); in binary, so that fingerprints arrive as bytes rather than hex text to decode."""
        return [_file(r) for r in self._read(f"{_FILE_SELECT} {where}", args, binary=True)]

    # ---- scopes -------------------------------------------------------------------------------

    def scope_pk(self, name: str) -> int | None:
        """Row of scope ``name``, or None when it holds nothing yet."""
        # scopes are never deleted or renamed, so a row once found is remembered (a look-up asks
        # for it several times: one round trip fewer each, on PostgreSQL)
        pk = self._scope_pks.get(name)
        if pk is None:
            rows = self._read("SELECT pk FROM scopes WHERE name = %s", (name,))
            if not rows:
                return None
            pk = self._scope_pks[name] = int(rows[0][0])
        return pk

    def scope_names(self) -> dict[int, str]:
        """Every scope by row."""
        return {int(pk): str(name) for pk, name in self._read("SELECT pk, name FROM scopes")}

    @contextmanager
    def scope_lock(self, scope: str) -> Iterator[None]:
        """Held by one thread of one process at a time per scope: a transaction-level advisory lock
        on a connection of its own."""
        conn = self._pool.connect()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_SCOPE, scope))
                yield
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {_one_line(exc)}") from exc
        finally:
            conn.close()

    @staticmethod
    def _ensure_scope(db: psycopg.Connection[Any], name: str) -> int:
        db.execute("INSERT INTO scopes(name) VALUES (%s) ON CONFLICT (name) DO NOTHING", (name,))
        row = db.execute("SELECT pk FROM scopes WHERE name = %s", (name,)).fetchone()
        assert row is not None  # inserted above or already there
        return int(row[0])

    # ---- files --------------------------------------------------------------------------------

    def add_files(self, items: Iterable[NewFile]) -> list[tuple[StoredFile, bool]]:
        """Add files in one transaction. For each: the stored file and whether it is new.

        Bytes already in the scope are not stored again: the existing file is returned.
        An ``image_id`` that exists in the scope gets the file as another rendition.
        """
        out: list[tuple[StoredFile, bool]] = []
        now = time.time()
        with self._write(log=True) as db:
            for item in items:
                fp = item.fingerprint
                scope_pk = self._ensure_scope(db, item.scope)
                row = db.execute(
                    f"{_FILE_SELECT} WHERE f.scope_pk = %s AND f.sha256 = %s", (scope_pk, fp.sha256), binary=True
                ).fetchone()
                if row is not None:
                    out.append((_file(row), False))
                    continue

                def taken(candidate: str, scope_pk: int = scope_pk) -> bool:
                    sql = "SELECT 1 FROM images WHERE scope_pk = %s AND image_id = %s"
                    return db.execute(sql, (scope_pk, candidate)).fetchone() is not None

                image_id = item.image_id or automatic_image_id(fp.sha256, taken)
                db.execute(
                    "INSERT INTO images(scope_pk, image_id, created_at) VALUES (%s, %s, %s)"
                    " ON CONFLICT (scope_pk, image_id) DO NOTHING",
                    (scope_pk, image_id, now),
                )
                found = db.execute(
                    "SELECT pk FROM images WHERE scope_pk = %s AND image_id = %s", (scope_pk, image_id)
                ).fetchone()
                assert found is not None
                image_pk = int(found[0])
                inserted = db.execute(
                    "INSERT INTO files(image_pk, scope_pk, rendition, source, sha256, pixel_digest, phash, pdq,"
                    " fingerprint, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING pk",
                    (
                        image_pk, scope_pk, item.rendition, item.source, fp.sha256, fp.pixel_digest,
                        signed64(fp.phash), fp.pdq, fingerprint_to_bytes(fp), now,
                    ),
                ).fetchone()  # fmt: skip
                assert inserted is not None
                pk = int(inserted[0])
                db.execute("INSERT INTO changes(file_pk, added) VALUES (%s, true)", (pk,))
                if item.local is not None:
                    db.execute("INSERT INTO local_features(file_pk, data) VALUES (%s, %s)", (pk, item.local))
                    db.execute("INSERT INTO local_codes(file_pk, codes) VALUES (%s, %s)", (pk, item.local_codes))
                stored = StoredFile(
                    pk=pk, image_pk=image_pk, image_id=image_id, scope=item.scope, rendition=item.rendition,
                    source=item.source, fingerprint=fp, created_at=now,
                )  # fmt: skip
                out.append((stored, True))
        return out

    def files(self, pks: Sequence[int]) -> list[StoredFile]:
        """The files with these rows (missing rows are skipped), in the order asked."""
        if not pks:
            return []
        found = {f.pk: f for f in self._files("WHERE f.pk = ANY(%s)", (list(pks),))}
        return [found[p] for p in pks if p in found]

    def local_features(self, pks: Sequence[int]) -> dict[int, bytes]:
        """The stored local features of these files (those that have them)."""
        if not pks:
            return {}
        rows = self._read("SELECT file_pk, data FROM local_features WHERE file_pk = ANY(%s)", (list(pks),), binary=True)
        return {int(pk): bytes(data) for pk, data in rows}

    def files_by_sha(self, scope: str, sha256: bytes) -> list[StoredFile]:
        """Files of ``scope`` with exactly these bytes."""
        return self._files("WHERE s.name = %s AND f.sha256 = %s", (scope, sha256))

    def files_by_pixel_digest(self, scope: str, digest: bytes) -> list[StoredFile]:
        """Files of ``scope`` whose pixel digest is known and equal to ``digest``."""
        return self._files("WHERE s.name = %s AND f.pixel_digest = %s", (scope, digest))

    def set_pixel_digest(self, file_pk: int, fp: Fingerprint) -> None:
        """Keep a pixel digest computed after the file was stored."""
        if fp.pixel_digest is None:
            return
        with self._write() as db:
            db.execute(
                "UPDATE files SET pixel_digest = %s, fingerprint = %s WHERE pk = %s",
                (fp.pixel_digest, fingerprint_to_bytes(fp), file_pk),
            )

    def codes(self, after_pk: int = 0, batch: int = 100_000) -> Iterator[list[CodeRow]]:
        """Every file's hashes, in row order, in batches: what an in-memory index is rebuilt from."""
        last = after_pk
        while True:
            rows = self._read(f"{_CODE_SELECT} WHERE f.pk > %s ORDER BY f.pk LIMIT %s", (last, batch), binary=True)
            if not rows:
                return
            yield [_code_row(r) for r in rows]
            last = int(rows[-1][0])

    def last_change(self) -> int:
        """Sequence number of the newest change."""
        return int(self._read("SELECT COALESCE(MAX(seq), 0) FROM changes")[0][0])

    def changes_since(self, seq: int) -> tuple[int, list[CodeRow], list[int]]:
        """(newest seq, files added since ``seq`` and still present, file rows removed since ``seq``)."""
        rows = self._read("SELECT seq, file_pk, added FROM changes WHERE seq > %s ORDER BY seq", (seq,))
        if not rows:
            return seq, [], []
        newest = int(rows[-1][0])
        added = sorted({int(f) for _, f, a in rows if a})
        removed = sorted({int(f) for _, f, a in rows if not a})
        present = [_code_row(r) for r in self._read(f"{_CODE_SELECT} WHERE f.pk = ANY(%s) ORDER BY f.pk", (added,))]
        return newest, present, removed

    # ---- images -------------------------------------------------------------------------------

    def image(self, scope: str, image_id: str) -> ImageRecord:
        """The image ``image_id`` of ``scope`` with its files. Raises ``NotFound``."""
        rows = self._read(
            "SELECT i.pk, i.created_at FROM images i JOIN scopes s ON s.pk = i.scope_pk"
            " WHERE s.name = %s AND i.image_id = %s",
            (scope, image_id),
        )
        if not rows:
            raise NotFound(f"no image {image_id!r} in scope {scope!r}")
        pk, created = int(rows[0][0]), float(rows[0][1])
        files = tuple(self._files("WHERE f.image_pk = %s ORDER BY f.pk", (pk,)))
        return ImageRecord(pk=pk, image_id=image_id, scope=scope, created_at=created, files=files)

    def images(self, scope: str, *, after: str = "", limit: int = 100) -> list[ImageRecord]:
        """Images of ``scope`` ordered by id, starting after ``after`` (for paging)."""
        rows = self._read(
            "SELECT i.pk, i.image_id, i.created_at FROM images i JOIN scopes s ON s.pk = i.scope_pk"
            ' WHERE s.name = %s AND i.image_id COLLATE "C" > %s ORDER BY i.image_id COLLATE "C" LIMIT %s',
            (scope, after, limit),
        )
        if not rows:
            return []
        files: dict[int, list[StoredFile]] = {}
        for f in self._files("WHERE f.image_pk = ANY(%s) ORDER BY f.pk", ([int(r[0]) for r in rows],)):
            files.setdefault(f.image_pk, []).append(f)
        return [
            ImageRecord(pk=int(pk), image_id=str(i), scope=scope, created_at=float(c), files=tuple(files.get(pk, ())))
            for pk, i, c in rows
        ]

    def remove_image(self, scope: str, image_id: str) -> list[int]:
        """Delete an image, its files and its review pairs; returns the file rows removed. Raises ``NotFound``."""
        with self._write(log=True) as db:
            row = db.execute(
                "SELECT i.pk FROM images i JOIN scopes s ON s.pk = i.scope_pk WHERE s.name = %s AND i.image_id = %s",
                (scope, image_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"no image {image_id!r} in scope {scope!r}")
            file_pks = [int(r[0]) for r in db.execute("SELECT pk FROM files WHERE image_pk = %s", (row[0],))]
            db.execute("DELETE FROM images WHERE pk = %s", (row[0],))  # files, features, review pairs cascade
            with db.cursor() as cur:
                cur.executemany("INSERT INTO changes(file_pk, added) VALUES (%s, false)", [(p,) for p in file_pks])
        return file_pks

    # ---- review -------------------------------------------------------------------------------

    def add_review(self, scope: str, a_pk: int, b_pk: int, *, score: float, verdict: str, evidence: str) -> None:
        """Record a potential-duplicate pair (once; a pair already recorded keeps its decision)."""
        if a_pk == b_pk:
            return
        lo, hi = sorted((a_pk, b_pk))
        with self._write() as db:
            scope_pk = self._ensure_scope(db, scope)
            db.execute(
                "INSERT INTO review(scope_pk, a_pk, b_pk, score, verdict, evidence, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (a_pk, b_pk) DO NOTHING",
                (scope_pk, lo, hi, score, verdict, evidence, time.time()),
            )

    def reviews(self, scope: str | None, decision: Decision | None = Decision.PENDING) -> list[ReviewPair]:
        """Review pairs of ``scope`` (all scopes if None) with ``decision`` (any if None), best score first."""
        where, args = [], []
        if scope is not None:
            where.append("s.name = %s")
            args.append(scope)
        if decision is not None:
            where.append("r.decision = %s")
            args.append(decision.value)
        sql = _REVIEW_SELECT + (" WHERE " + " AND ".join(where) if where else "") + " ORDER BY r.score DESC, r.pk"
        return [_review(r) for r in self._read(sql, args)]

    def review_pair(self, pair_pk: int, scope: str | None = None) -> ReviewPair:
        """One review pair. Raises ``NotFound`` (also when it belongs to another scope)."""
        rows = self._read(_REVIEW_SELECT + " WHERE r.pk = %s", (pair_pk,))
        if not rows or (scope is not None and rows[0][1] != scope):
            raise NotFound(f"no review pair {pair_pk}")
        return _review(rows[0])

    def decide(self, pair_pk: int, decision: Decision, scope: str | None = None) -> ReviewPair:
        """Store a person's decision on a pair. Raises ``NotFound``."""
        self.review_pair(pair_pk, scope)
        with self._write() as db:
            db.execute(
                "UPDATE review SET decision = %s, decided_at = %s WHERE pk = %s",
                (decision.value, time.time(), pair_pk),
            )
        return self.review_pair(pair_pk, scope)

    def decide_images(self, scope: str, a_pk: int, b_pk: int, decision: Decision) -> None:
        """Record a decision on two images, adding the pair if it was not under review."""
        lo, hi = sorted((a_pk, b_pk))
        now = time.time()
        with self._write() as db:
            scope_pk = self._ensure_scope(db, scope)
            db.execute(
                "INSERT INTO review(scope_pk, a_pk, b_pk, score, verdict, evidence, decision, created_at, decided_at)"
                " VALUES (%s, %s, %s, 0, 'similar', '', %s, %s, %s)"
                " ON CONFLICT (a_pk, b_pk)"
                " DO UPDATE SET decision = excluded.decision, decided_at = excluded.decided_at",
                (scope_pk, lo, hi, decision.value, now, now),
            )

    def decisions(self, image_pks: Iterable[int]) -> dict[tuple[int, int], Decision]:
        """Decided pairs touching any of these images, keyed (smaller pk, larger pk)."""
        pks = sorted(set(image_pks))
        if not pks:
            return {}
        rows = self._read(
            "SELECT a_pk, b_pk, decision FROM review WHERE decision != 'pending'"
            " AND (a_pk = ANY(%s) OR b_pk = ANY(%s))",
            (pks, pks),
        )
        return {(int(a), int(b)): Decision(d) for a, b, d in rows}

    # ---- API keys -----------------------------------------------------------------------------

    def add_api_key(self, scope: str, key_id: str, key_hash: bytes, *, name: str = "") -> ApiKey:
        """Store a new key's id and hash for ``scope``."""
        now = time.time()
        with self._write() as db:
            scope_pk = self._ensure_scope(db, scope)
            db.execute(
                "INSERT INTO api_keys(key_id, scope_pk, key_hash, name, created_at) VALUES (%s, %s, %s, %s, %s)",
                (key_id, scope_pk, key_hash, name, now),
            )
        return ApiKey(key_id=key_id, scope=scope, name=name, created_at=now)

    def api_key_scope(self, key_hash: bytes) -> str | None:
        """The scope of the live key with this hash, or None."""
        rows = self._read(
            "SELECT s.name FROM api_keys k JOIN scopes s ON s.pk = k.scope_pk"
            " WHERE k.key_hash = %s AND k.revoked_at IS NULL",
            (key_hash,),
        )
        return str(rows[0][0]) if rows else None

    def api_keys(self, scope: str | None = None) -> list[ApiKey]:
        """Keys (live and revoked) of ``scope`` or of every scope, oldest first."""
        sql = _KEY_SELECT + (" WHERE s.name = %s" if scope is not None else "") + " ORDER BY k.created_at, k.key_id"
        return [_api_key(r) for r in self._read(sql, () if scope is None else (scope,))]

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key (it stays listed). Raises ``NotFound``."""
        with self._write() as db:
            db.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL", (time.time(), key_id)
            )
        rows = self._read(_KEY_SELECT + " WHERE k.key_id = %s", (key_id,))
        if not rows:
            raise NotFound(f"no API key {key_id!r}")
        return _api_key(rows[0])

    # ---- stats --------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Counts of what is stored."""
        (scopes, images, files, pending, decided, size, outdated) = self._read(
            "SELECT (SELECT COUNT(*) FROM scopes), (SELECT COUNT(*) FROM images), (SELECT COUNT(*) FROM files),"
            " (SELECT COUNT(*) FROM review WHERE decision = 'pending'),"
            " (SELECT COUNT(*) FROM review WHERE decision != 'pending'),"
            " pg_database_size(current_database()),"
            f" (SELECT COUNT(*) FROM files WHERE substring(fingerprint from {VERSION_OFFSET + 1} for 2) < %s)",
            (FINGERPRINT_VERSION.to_bytes(2, "big"),),
        )[0]
        return StoreStats(
            scopes=int(scopes), images=int(images), files=int(files),
            review_pending=int(pending), review_decided=int(decided), bytes_on_disk=int(size),
            outdated_fingerprints=int(outdated),
        )  # fmt: skip


_FILE_SELECT = (
    "SELECT f.pk, f.image_pk, i.image_id, s.name, f.rendition, f.source, f.fingerprint, f.created_at"
    " FROM files f JOIN images i ON i.pk = f.image_pk JOIN scopes s ON s.pk = f.scope_pk"
)

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


_CODE_SELECT = (
    "SELECT f.pk, f.scope_pk, f.phash, f.pdq, c.codes FROM files f LEFT JOIN local_codes c ON c.file_pk = f.pk"
)


def _code_row(row: Sequence[Any]) -> CodeRow:
    p, s, h, q, c = row
    return CodeRow(int(p), int(s), unsigned64(int(h)), bytes(q), bytes(c) if c is not None else b"")


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
