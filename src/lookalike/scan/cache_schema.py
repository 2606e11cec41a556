"""The find cache's tables, built by numbered migrations (see ``scan.cache`` for what each holds).

The index store keeps its own schema version in ``PRAGMA user_version`` of the same file, so the
find tables keep theirs in ``find_meta`` (key ``schema``). Migration *n* takes the tables from
version *n - 1* to *n*; a cache made before the numbering (no ``schema`` key) starts at 0, and the
migrations that add columns look before they add, because such a cache may hold some of them.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

__all__ = ["CACHE_SCHEMA_VERSION", "migrate"]

_BASE = """
CREATE TABLE IF NOT EXISTS find_files (
    scope TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    file_pk INTEGER,
    error_code TEXT NOT NULL DEFAULT '',
    error TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (scope, path)
);
CREATE TABLE IF NOT EXISTS find_rows (
    file_pk INTEGER PRIMARY KEY,
    image_pk INTEGER NOT NULL,
    scope TEXT NOT NULL,
    sha256 BLOB NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    mime TEXT NOT NULL,
    lossless INTEGER NOT NULL,
    taken_at TEXT
);
CREATE INDEX IF NOT EXISTS find_rows_sha ON find_rows(scope, sha256);
CREATE TABLE IF NOT EXISTS find_pairs (
    a_pk INTEGER NOT NULL,
    b_pk INTEGER NOT NULL,
    score REAL NOT NULL,
    verdict TEXT NOT NULL,
    evidence TEXT NOT NULL,
    PRIMARY KEY (a_pk, b_pk),
    CHECK (a_pk < b_pk)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS find_pairs_b ON find_pairs(b_pk);
CREATE TABLE IF NOT EXISTS find_spectra (
    file_pk INTEGER PRIMARY KEY,
    profile BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS find_relative (
    copy_pk INTEGER NOT NULL,
    original_pk INTEGER NOT NULL,
    evidence TEXT NOT NULL,
    PRIMARY KEY (copy_pk, original_pk)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS find_decisions (
    scope TEXT NOT NULL,
    path TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('keep', 'exclude')),
    PRIMARY KEY (scope, path)
);
CREATE TABLE IF NOT EXISTS find_meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
)
"""

#: a person's marks on pairs, by the SHA-256 of the two files' bytes (``sha_a < sha_b``), so that
#: they outlive the index rows: ``--rescan``, a new matcher stamp and renames all remove and re-add
#: rows, and only ``review … unmark`` removes a mark
_MARKS = """
CREATE TABLE IF NOT EXISTS find_marks (
    scope TEXT NOT NULL,
    sha_a BLOB NOT NULL,
    sha_b BLOB NOT NULL,
    decision TEXT NOT NULL,
    PRIMARY KEY (scope, sha_a, sha_b),
    CHECK (sha_a < sha_b)
) WITHOUT ROWID
"""


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")}


def _add(db: sqlite3.Connection, table: str, column: str, kind: str) -> None:
    if column not in _columns(db, table):
        db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {kind}")


def _base(db: sqlite3.Connection) -> None:
    for statement in _BASE.split(";"):
        db.execute(statement)


def _pair_facts(db: sqlite3.Connection) -> None:
    # caches from before: the pHash bits are filled in on use; pairs judged by pHash bits alone
    _add(db, "find_pairs", "phash_bits", "INTEGER")
    _add(db, "find_pairs", "by_local_features", "INTEGER NOT NULL DEFAULT 0")


def _source_facts(db: sqlite3.Connection) -> None:
    for name in ("jpeg_quality", "padding", "content_aspect"):  # caches from before: read on use
        _add(db, "find_rows", name, "REAL")


def _file_identity(db: sqlite3.Connection) -> None:
    # a path is known by device, inode, size, mtime and ctime: a file swapped for another of the
    # same size with its mtime put back (touch -r) has another ctime and mostly another inode.
    # Rows from before hold NULL, which matches nothing: each such path is read again once.
    for name in ("dev", "ino", "ctime_ns"):
        _add(db, "find_files", name, "INTEGER")


def _decision_log(db: sqlite3.Connection) -> None:
    # decisions become a log: each carries the order it was made in, and the newest keep of a
    # group wins (a keep on c2 made after one on c1 makes c2 the keeper)
    _add(db, "find_decisions", "seq", "INTEGER NOT NULL DEFAULT 0")
    db.execute("UPDATE find_decisions SET seq = rowid WHERE seq = 0")


def _marks(db: sqlite3.Connection) -> None:
    db.execute(_MARKS)


def _pixel_facts(db: sqlite3.Connection) -> None:
    # what the keeper reads of a picture's derivation: its colour count (a palette of 256 or fewer
    # is a lossy reduction) and the step of a JPEG block grid its pixels carry; read on use
    for name in ("colours", "grid_step"):
        _add(db, "find_rows", name, "REAL")


#: migration n (1-based) is MIGRATIONS[n - 1]
MIGRATIONS: tuple[Callable[[sqlite3.Connection], None], ...] = (
    _base, _pair_facts, _source_facts, _file_identity, _decision_log, _marks, _pixel_facts,
)  # fmt: skip
CACHE_SCHEMA_VERSION = len(MIGRATIONS)


def migrate(db: sqlite3.Connection) -> None:
    """Bring the find tables to ``CACHE_SCHEMA_VERSION`` inside the caller's transaction.

    Raises ``sqlite3.DatabaseError`` for a file that is not a database, and ``ValueError`` for a
    cache made by a newer lookalike (its tables may mean something this one does not know)."""
    has_meta = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'find_meta'").fetchone()
    version = 0
    if has_meta:
        row = db.execute("SELECT value FROM find_meta WHERE key = 'schema'").fetchone()
        version = 0 if row is None else int(row[0])
    if version > CACHE_SCHEMA_VERSION:
        raise ValueError(f"its find tables are version {version}, newer than this lookalike's {CACHE_SCHEMA_VERSION}")
    for step in MIGRATIONS[version:]:
        step(db)
    if version < CACHE_SCHEMA_VERSION:
        db.execute("INSERT OR REPLACE INTO find_meta(key, value) VALUES ('schema', ?)", (str(CACHE_SCHEMA_VERSION),))
