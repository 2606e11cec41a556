"""The embedded store: one SQLite file in WAL mode, every change in one transaction.

Tables (schema version in ``PRAGMA user_version``):

* ``scopes``   a user or collection; every image belongs to exactly one.
* ``images``   an image id within a scope (given by the caller or assigned).
* ``files``    the files (renditions) of an image, each with its serialised
               fingerprint and, for indexed look-ups, its SHA-256, pixel
               digest, pHash and PDQ. ``UNIQUE(scope_pk, sha256)`` makes adding
               the same bytes twice to a scope a no-op, also across processes.
* ``changes``  an append-only log of added and removed files, so that every
               process holding in-memory Hamming indexes catches up with the
               others by reading only what changed since it last looked.
* ``review``   potential-duplicate pairs and a person's decision on each.
* ``local_features``  each file's ORB keypoints (about 18 KB), for verifying
               crops and overlays; kept out of ``files`` so scans stay small.
* ``local_codes``  the strongest ``LOCAL_CODES`` of those descriptors (2 KB), which
               the in-memory ``DescriptorIndex`` is rebuilt from.
* ``api_keys`` the service's API keys: a public id, the scope (tenant) and the
               SHA-256 of the key; the key itself is never stored.

Migrations: every statement of the schema is idempotent (IF NOT EXISTS), so
an older file is brought up to date by running it and raising the version.

Writes take SQLite's write lock at the start (``BEGIN IMMEDIATE``), so two
processes adding the same picture serialise and the second finds the first's row.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.errors import NotFound, StoreError
from lookalike.fingerprints import FINGERPRINT_VERSION, Fingerprint, fingerprint_from_bytes, fingerprint_to_bytes
from lookalike.fingerprints.codec import VERSION_OFFSET
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index.records import (
    ApiKey,
    Decision,
    ImageRecord,
    ReviewPair,
    StoredFile,
    StoreStats,
    automatic_image_id,
)

__all__ = ["LOCAL_CODES", "CodeRow", "NewFile", "SQLiteStore", "signed64", "unsigned64"]

#: descriptors per file kept for retrieval (``local_codes``)
LOCAL_CODES = 64

SCHEMA_VERSION = 4  # 2: local_features, 3: api_keys, 4: local_codes

_SCHEMA = """
CREATE TABLE IF NOT EXISTS scopes (
    pk INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS images (
    pk INTEGER PRIMARY KEY,
    scope_pk INTEGER NOT NULL REFERENCES scopes(pk),
    image_id TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (scope_pk, image_id)
);
CREATE TABLE IF NOT EXISTS files (
    pk INTEGER PRIMARY KEY AUTOINCREMENT,
    image_pk INTEGER NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    scope_pk INTEGER NOT NULL REFERENCES scopes(pk),
    rendition TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    sha256 BLOB NOT NULL,
    pixel_digest BLOB,
    phash INTEGER NOT NULL,
    pdq BLOB NOT NULL,
    fingerprint BLOB NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (scope_pk, sha256)
);
CREATE INDEX IF NOT EXISTS files_image ON files(image_pk);
CREATE INDEX IF NOT EXISTS files_pixel ON files(scope_pk, pixel_digest) WHERE pixel_digest IS NOT NULL;
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    file_pk INTEGER NOT NULL,
    added INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS review (
    pk INTEGER PRIMARY KEY,
    scope_pk INTEGER NOT NULL REFERENCES scopes(pk),
    a_pk INTEGER NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    b_pk INTEGER NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    score REAL NOT NULL,
    verdict TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL DEFAULT 'pending',
    created_at REAL NOT NULL,
    decided_at REAL,
    UNIQUE (a_pk, b_pk),
    CHECK (a_pk < b_pk)
);
CREATE INDEX IF NOT EXISTS review_scope ON review(scope_pk, decision);
CREATE TABLE IF NOT EXISTS local_features (
    file_pk INTEGER PRIMARY KEY REFERENCES files(pk) ON DELETE CASCADE,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS review_b ON review(b_pk);
CREATE TABLE IF NOT EXISTS local_codes (
    file_pk INTEGER PRIMARY KEY REFERENCES files(pk) ON DELETE CASCADE,
    codes BLOB NOT NULL
);
INSERT OR IGNORE INTO local_codes(file_pk, codes)
    SELECT file_pk, substr(data, 13 + 4 * ((length(data) - 12) / 36), 32 * min(64, (length(data) - 12) / 36))
    FROM local_features;
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    scope_pk INTEGER NOT NULL REFERENCES scopes(pk),
    key_hash BLOB NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    created_at REAL NOT NULL,
    revoked_at REAL
);
"""


def signed64(value: int) -> int:
    """An unsigned 64-bit hash as SQLite's signed INTEGER."""
    value = int(value)  # a ``Hash64`` subtracts as a Hamming distance: plain integer arithmetic here
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int) -> int:
    """Back from ``signed64``."""
    return value + (1 << 64) if value < 0 else value


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file to add: its fingerprint, where it came from, and which image it belongs to."""

    fingerprint: Fingerprint
    scope: str
    source: str = ""
    image_id: str | None = None
    rendition: str = ""
    local: bytes | None = None

    @property
    def local_codes(self) -> bytes:
        """The strongest ``LOCAL_CODES`` descriptors of ``local`` (empty without local features)."""
        if self.local is None:
            return b""
        return LocalFeatures.from_bytes(self.local).descriptors[:LOCAL_CODES].tobytes()


@dataclass(frozen=True, slots=True)
class CodeRow:
    """What the in-memory indexes keep of a file."""

    pk: int
    scope_pk: int
    phash: int
    pdq: bytes
    local_codes: bytes = b""


class SQLiteStore:
    """Images, files, fingerprints and review pairs in one SQLite file. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        self._scope_pks: dict[str, int] = {}
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a database file")
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            version = self._db.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: made by a newer lookalike (schema {version}, this one reads {SCHEMA_VERSION})"
                )
            if version < SCHEMA_VERSION:
                with self._write():
                    for statement in _SCHEMA.split(";"):
                        if statement.strip():
                            self._db.execute(statement)
                    self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable lookalike database ({exc})") from exc

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, holding SQLite's write lock from its start."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path}: database is busy or locked ({exc})") from exc
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            else:
                self._db.execute("COMMIT")

    def _read(self, sql: str, args: Sequence[object] = ()) -> list[Any]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    # ---- scopes -------------------------------------------------------------------------------

    def scope_pk(self, name: str) -> int | None:
        """Row of scope ``name``, or None when it holds nothing yet."""
        # scopes are never deleted or renamed, so a row once found is remembered (a look-up asks
        # for it several times: one round trip fewer each, on PostgreSQL)
        pk = self._scope_pks.get(name)
        if pk is None:
            rows = self._read("SELECT pk FROM scopes WHERE name = ?", (name,))
            if not rows:
                return None
            pk = self._scope_pks[name] = int(rows[0][0])
        return pk

    def scope_names(self) -> dict[int, str]:
        """Every scope by row."""
        return {int(pk): str(name) for pk, name in self._read("SELECT pk, name FROM scopes")}

    @contextmanager
    def scope_lock(self, scope: str) -> Iterator[None]:
        """Held by one thread of one process at a time per scope (an exclusive ``flock`` on a file
        beside the database, opened afresh each time so threads exclude each other too)."""
        folder = self.path.with_name(self.path.name + ".locks")
        folder.mkdir(exist_ok=True)
        try:
            import fcntl  # POSIX only: lookalike refuses Windows (see the README), the import says why here
        except ImportError as exc:
            raise StoreError("per-scope locks need POSIX file locks (fcntl): Windows is not supported") from exc
        fd = os.open(folder / hashlib.sha256(scope.encode()).hexdigest()[:32], os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @staticmethod
    def _ensure_scope(db: sqlite3.Connection, name: str) -> int:
        db.execute("INSERT OR IGNORE INTO scopes(name) VALUES (?)", (name,))
        return int(db.execute("SELECT pk FROM scopes WHERE name = ?", (name,)).fetchone()[0])

    # ---- files --------------------------------------------------------------------------------

    def add_files(self, items: Iterable[NewFile]) -> list[tuple[StoredFile, bool]]:
        """Add files in one transaction. For each: the stored file and whether it is new.

        Bytes already in the scope are not stored again: the existing file is returned.
        An ``image_id`` that exists in the scope gets the file as another rendition.
        """
        out: list[tuple[StoredFile, bool]] = []
        now = time.time()
        with self._write() as db:
            for item in items:
                fp = item.fingerprint
                scope_pk = self._ensure_scope(db, item.scope)
                row = db.execute(
                    f"{_FILE_SELECT} WHERE f.scope_pk = ? AND f.sha256 = ?", (scope_pk, fp.sha256)
                ).fetchone()
                if row is not None:
                    out.append((_file(row), False))
                    continue

                def taken(candidate: str, scope_pk: int = scope_pk) -> bool:
                    sql = "SELECT 1 FROM images WHERE scope_pk = ? AND image_id = ?"
                    return db.execute(sql, (scope_pk, candidate)).fetchone() is not None

                image_id = item.image_id or automatic_image_id(fp.sha256, taken)
                db.execute(
                    "INSERT OR IGNORE INTO images(scope_pk, image_id, created_at) VALUES (?, ?, ?)",
                    (scope_pk, image_id, now),
                )
                image_pk = int(
                    db.execute(
                        "SELECT pk FROM images WHERE scope_pk = ? AND image_id = ?", (scope_pk, image_id)
                    ).fetchone()[0]
                )
                cur = db.execute(
                    "INSERT INTO files(image_pk, scope_pk, rendition, source, sha256, pixel_digest, phash, pdq,"
                    " fingerprint, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        image_pk, scope_pk, item.rendition, item.source, fp.sha256, fp.pixel_digest,
                        signed64(fp.phash), fp.pdq, fingerprint_to_bytes(fp), now,
                    ),
                )  # fmt: skip
                pk = int(cur.lastrowid or 0)
                db.execute("INSERT INTO changes(file_pk, added) VALUES (?, 1)", (pk,))
                if item.local is not None:
                    db.execute("INSERT INTO local_features(file_pk, data) VALUES (?, ?)", (pk, item.local))
                    db.execute("INSERT INTO local_codes(file_pk, codes) VALUES (?, ?)", (pk, item.local_codes))
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
        found: dict[int, StoredFile] = {}
        for start in range(0, len(pks), 500):
            chunk = list(pks[start : start + 500])
            marks = ",".join("?" * len(chunk))
            for row in self._read(f"{_FILE_SELECT} WHERE f.pk IN ({marks})", chunk):
                f = _file(row)
                found[f.pk] = f
        return [found[p] for p in pks if p in found]

    def local_features(self, pks: Sequence[int]) -> dict[int, bytes]:
        """The stored local features of these files (those that have them)."""
        if not pks:
            return {}
        marks = ",".join("?" * len(pks))
        rows = self._read(f"SELECT file_pk, data FROM local_features WHERE file_pk IN ({marks})", list(pks))
        return {int(pk): bytes(data) for pk, data in rows}

    def files_by_sha(self, scope: str, sha256: bytes) -> list[StoredFile]:
        """Files of ``scope`` with exactly these bytes."""
        return [_file(r) for r in self._read(f"{_FILE_SELECT} WHERE s.name = ? AND f.sha256 = ?", (scope, sha256))]

    def files_by_pixel_digest(self, scope: str, digest: bytes) -> list[StoredFile]:
        """Files of ``scope`` whose pixel digest is known and equal to ``digest``."""
        return [
            _file(r) for r in self._read(f"{_FILE_SELECT} WHERE s.name = ? AND f.pixel_digest = ?", (scope, digest))
        ]

    def set_pixel_digest(self, file_pk: int, fp: Fingerprint) -> None:
        """Keep a pixel digest computed after the file was stored."""
        if fp.pixel_digest is None:
            return
        with self._write() as db:
            db.execute(
                "UPDATE files SET pixel_digest = ?, fingerprint = ? WHERE pk = ?",
                (fp.pixel_digest, fingerprint_to_bytes(fp), file_pk),
            )

    def codes(self, after_pk: int = 0, batch: int = 100_000) -> Iterator[list[CodeRow]]:
        """Every file's hashes, in row order, in batches: what an in-memory index is rebuilt from."""
        last = after_pk
        while True:
            rows = self._read(f"{_CODE_SELECT} WHERE f.pk > ? ORDER BY f.pk LIMIT ?", (last, batch))
            if not rows:
                return
            yield [_code_row(r) for r in rows]
            last = int(rows[-1][0])

    def last_change(self) -> int:
        """Sequence number of the newest change."""
        return int(str(self._read("SELECT COALESCE(MAX(seq), 0) FROM changes")[0][0]))

    def changes_since(self, seq: int) -> tuple[int, list[CodeRow], list[int]]:
        """(newest seq, files added since ``seq`` and still present, file rows removed since ``seq``)."""
        rows = self._read("SELECT seq, file_pk, added FROM changes WHERE seq > ? ORDER BY seq", (seq,))
        if not rows:
            return seq, [], []
        newest = int(rows[-1][0])
        added = sorted({int(f) for _, f, a in rows if a})
        removed = sorted({int(f) for _, f, a in rows if not a})
        present: list[CodeRow] = []
        for start in range(0, len(added), 500):
            chunk = added[start : start + 500]
            marks = ",".join("?" * len(chunk))
            present.extend(_code_row(r) for r in self._read(f"{_CODE_SELECT} WHERE f.pk IN ({marks})", chunk))
        return newest, present, removed

    # ---- images -------------------------------------------------------------------------------

    def image(self, scope: str, image_id: str) -> ImageRecord:
        """The image ``image_id`` of ``scope`` with its files. Raises ``NotFound``."""
        rows = self._read(
            "SELECT i.pk, i.created_at FROM images i JOIN scopes s ON s.pk = i.scope_pk"
            " WHERE s.name = ? AND i.image_id = ?",
            (scope, image_id),
        )
        if not rows:
            raise NotFound(f"no image {image_id!r} in scope {scope!r}")
        pk, created = int(rows[0][0]), float(rows[0][1])
        files = tuple(_file(r) for r in self._read(f"{_FILE_SELECT} WHERE f.image_pk = ? ORDER BY f.pk", (pk,)))
        return ImageRecord(pk=pk, image_id=image_id, scope=scope, created_at=created, files=files)

    def images(self, scope: str, *, after: str = "", limit: int = 100) -> list[ImageRecord]:
        """Images of ``scope`` ordered by id, starting after ``after`` (for paging)."""
        rows = self._read(
            "SELECT i.image_id FROM images i JOIN scopes s ON s.pk = i.scope_pk"
            " WHERE s.name = ? AND i.image_id > ? ORDER BY i.image_id LIMIT ?",
            (scope, after, limit),
        )
        return [self.image(scope, str(r[0])) for r in rows]

    def remove_image(self, scope: str, image_id: str) -> list[int]:
        """Delete an image, its files and its review pairs; returns the file rows removed. Raises ``NotFound``."""
        with self._write() as db:
            row = db.execute(
                "SELECT i.pk FROM images i JOIN scopes s ON s.pk = i.scope_pk WHERE s.name = ? AND i.image_id = ?",
                (scope, image_id),
            ).fetchone()
            if row is None:
                raise NotFound(f"no image {image_id!r} in scope {scope!r}")
            file_pks = [int(r[0]) for r in db.execute("SELECT pk FROM files WHERE image_pk = ?", (row[0],))]
            for table in ("local_features", "local_codes"):
                db.execute(f"DELETE FROM {table} WHERE file_pk IN (SELECT pk FROM files WHERE image_pk = ?)", (row[0],))
            db.execute("DELETE FROM files WHERE image_pk = ?", (row[0],))
            db.execute("DELETE FROM images WHERE pk = ?", (row[0],))
            db.executemany("INSERT INTO changes(file_pk, added) VALUES (?, 0)", [(p,) for p in file_pks])
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
                "INSERT OR IGNORE INTO review(scope_pk, a_pk, b_pk, score, verdict, evidence, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
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
        return [_review(r) for r in self._read(sql, args)]

    def review_pair(self, pair_pk: int, scope: str | None = None) -> ReviewPair:
        """One review pair. Raises ``NotFound`` (also when it belongs to another scope)."""
        rows = self._read(_REVIEW_SELECT + " WHERE r.pk = ?", (pair_pk,))
        if not rows or (scope is not None and rows[0][1] != scope):
            raise NotFound(f"no review pair {pair_pk}")
        return _review(rows[0])

    def decide(self, pair_pk: int, decision: Decision, scope: str | None = None) -> ReviewPair:
        """Store a person's decision on a pair. Raises ``NotFound``."""
        self.review_pair(pair_pk, scope)
        with self._write() as db:
            db.execute(
                "UPDATE review SET decision = ?, decided_at = ? WHERE pk = ?", (decision.value, time.time(), pair_pk)
            )
        return self.review_pair(pair_pk, scope)

    def decide_images(self, scope: str, a_pk: int, b_pk: int, decision: Decision) -> None:
        """Record a decision on two images, adding the pair if it was not under review."""
        lo, hi = sorted((a_pk, b_pk))
        with self._write() as db:
            scope_pk = self._ensure_scope(db, scope)
            db.execute(
                "INSERT INTO review(scope_pk, a_pk, b_pk, score, verdict, evidence, decision, created_at, decided_at)"
                " VALUES (?, ?, ?, 0, 'similar', '', ?, ?, ?)"
                " ON CONFLICT(a_pk, b_pk) DO UPDATE SET decision = excluded.decision, decided_at = excluded.decided_at",
                (scope_pk, lo, hi, decision.value, time.time(), time.time()),
            )

    def decisions(self, image_pks: Iterable[int]) -> dict[tuple[int, int], Decision]:
        """Decided pairs touching any of these images, keyed (smaller pk, larger pk)."""
        pks = sorted(set(image_pks))
        out: dict[tuple[int, int], Decision] = {}
        for start in range(0, len(pks), 400):
            chunk = pks[start : start + 400]
            marks = ",".join("?" * len(chunk))
            rows = self._read(
                f"SELECT a_pk, b_pk, decision FROM review WHERE decision != 'pending'"
                f" AND (a_pk IN ({marks}) OR b_pk IN ({marks}))",
                chunk + chunk,
            )
            for a, b, d in rows:
                out[(int(a), int(b))] = Decision(d)
        return out

    # ---- API keys -----------------------------------------------------------------------------

    def add_api_key(self, scope: str, key_id: str, key_hash: bytes, *, name: str = "") -> ApiKey:
        """Store a new key's id and hash for ``scope``."""
        now = time.time()
        try:
            with self._write() as db:
                scope_pk = self._ensure_scope(db, scope)
                db.execute(
                    "INSERT INTO api_keys(key_id, scope_pk, key_hash, name, created_at) VALUES (?, ?, ?, ?, ?)",
                    (key_id, scope_pk, key_hash, name, now),
                )
        except sqlite3.IntegrityError as exc:
            raise StoreError(f"{self.path}: an API key with this id or hash exists ({exc})") from exc
        return ApiKey(key_id=key_id, scope=scope, name=name, created_at=now)

    def api_key_scope(self, key_hash: bytes) -> str | None:
        """The scope of the live key with this hash, or None."""
        rows = self._read(
            "SELECT s.name FROM api_keys k JOIN scopes s ON s.pk = k.scope_pk"
            " WHERE k.key_hash = ? AND k.revoked_at IS NULL",
            (key_hash,),
        )
        return str(rows[0][0]) if rows else None

    def api_keys(self, scope: str | None = None) -> list[ApiKey]:
        """Keys (live and revoked) of ``scope`` or of every scope, oldest first."""
        sql = _KEY_SELECT + (" WHERE s.name = ?" if scope is not None else "") + " ORDER BY k.created_at, k.key_id"
        return [_api_key(r) for r in self._read(sql, () if scope is None else (scope,))]

    def revoke_api_key(self, key_id: str) -> ApiKey:
        """Revoke a key (it stays listed). Raises ``NotFound``."""
        with self._write() as db:
            db.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND revoked_at IS NULL", (time.time(), key_id)
            )
        rows = self._read(_KEY_SELECT + " WHERE k.key_id = ?", (key_id,))
        if not rows:
            raise NotFound(f"no API key {key_id!r}")
        return _api_key(rows[0])

    # ---- stats --------------------------------------------------------------------------------

    def stats(self) -> StoreStats:
        """Counts of what is stored."""
        (scopes, images, files, pending, decided, outdated) = self._read(
            "SELECT (SELECT COUNT(*) FROM scopes), (SELECT COUNT(*) FROM images), (SELECT COUNT(*) FROM files),"
            " (SELECT COUNT(*) FROM review WHERE decision = 'pending'),"
            " (SELECT COUNT(*) FROM review WHERE decision != 'pending'),"
            f" (SELECT COUNT(*) FROM files WHERE substr(fingerprint, {VERSION_OFFSET + 1}, 2) < ?)",
            (FINGERPRINT_VERSION.to_bytes(2, "big"),),
        )[0]
        size = sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())
        return StoreStats(
            scopes=int(scopes), images=int(images), files=int(files),
            review_pending=int(pending), review_decided=int(decided), bytes_on_disk=size,
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


def _api_key(row: Sequence[Any]) -> ApiKey:
    key_id, scope, name, created, revoked = row
    return ApiKey(
        key_id=str(key_id), scope=str(scope), name=str(name), created_at=float(created),
        revoked_at=None if revoked is None else float(revoked),
    )  # fmt: skip


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
