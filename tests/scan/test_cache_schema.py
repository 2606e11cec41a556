"""The find cache moves to its numbered schema from a cache made before the numbering, keeping
what it held: paths (read again once, their identity unknown), decisions (in their old order)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lookalike.errors import StoreError
from lookalike.scan.cache import FindCache
from lookalike.scan.cache_schema import CACHE_SCHEMA_VERSION

_OLD = """
CREATE TABLE find_files (scope TEXT NOT NULL, path TEXT NOT NULL, size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL,
    file_pk INTEGER, error_code TEXT NOT NULL DEFAULT '', error TEXT NOT NULL DEFAULT '', PRIMARY KEY (scope, path));
CREATE TABLE find_decisions (scope TEXT NOT NULL, path TEXT NOT NULL,
    decision TEXT NOT NULL CHECK (decision IN ('keep', 'exclude')), PRIMARY KEY (scope, path));
CREATE TABLE find_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO find_files VALUES ('find', '/photos/a.jpg', 10, 20, 7, '', '');
INSERT INTO find_decisions VALUES ('find', '/photos/c1.jpg', 'keep');
INSERT INTO find_decisions VALUES ('find', '/photos/c2.jpg', 'keep');
INSERT INTO find_meta VALUES ('matcher', 'lookalike 0.1');
"""


def test_a_cache_from_before_the_numbering_is_migrated_and_kept(tmp_path: Path) -> None:
    db = tmp_path / "old.db"
    with sqlite3.connect(db) as conn:
        conn.executescript(_OLD)
    with FindCache(db) as cache:
        (cached,) = cache.paths("find").values()
        assert cached.file_pk == 7 and cached.stamp.size == 10 and cached.stamp.ino == -1  # matches no file: read again
        decided = cache.decisions("find")
        assert decided["/photos/c2.jpg"][1] > decided["/photos/c1.jpg"][1]  # their order is kept
        assert cache.stamp() == "lookalike 0.1"
        cache.put_decisions("find", [("/photos/c1.jpg", "keep")])
        assert cache.decisions("find")["/photos/c1.jpg"][1] > decided["/photos/c2.jpg"][1]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT value FROM find_meta WHERE key = 'schema'").fetchone() == (
            str(CACHE_SCHEMA_VERSION),
        )
    FindCache(db).close()  # opening it again changes nothing


def test_a_cache_from_a_newer_lookalike_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "new.db"
    FindCache(db).close()
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE find_meta SET value = ? WHERE key = 'schema'", (str(CACHE_SCHEMA_VERSION + 1),))
    with pytest.raises(StoreError, match="newer"):
        FindCache(db)
