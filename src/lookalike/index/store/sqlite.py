"""The embedded store: one SQLite file in WAL mode, every change in one transaction.

The tables and statements are every store's (``index.store.schema``, ``index.store.sqlstore``);
this module holds what is SQLite's own:

* the schema version is ``PRAGMA user_version``;
* writes take SQLite's write lock at the start (``BEGIN IMMEDIATE``), so two
  processes adding the same picture serialise and the second finds the first's
  row; the one write lock also keeps the change log in order;
* ``scope_lock`` is an exclusive ``flock`` on a file beside the database;
* one connection, shared by threads under a lock.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lookalike.errors import AlreadyExists, StoreError
from lookalike.index.store.dialect import Dialect, Transaction
from lookalike.index.store.schema import MIGRATIONS, SCHEMA_VERSION, migration_statements
from lookalike.index.store.sqlstore import SQLStore

__all__ = ["SQLiteDialect", "SQLiteStore"]

_TYPES = {
    "rowid": "INTEGER PRIMARY KEY",
    # AUTOINCREMENT: a removed file's row number is never given to another file, which the change
    # log and every in-memory index key on
    "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
    "int": "INTEGER",
    "real": "REAL",
    "blob": "BLOB",
    "bool": "INTEGER",
    "least": "min",
}


class SQLiteDialect(Dialect):
    """SQLite's side of a store (see the module docstring)."""

    types = _TYPES
    chunk = 400  # keys a query: two lists of them stay under SQLite's oldest limit of 999 arguments

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._lock = threading.RLock()
        if self.path.is_dir():
            raise StoreError(f"{self.path}: is a folder, not a database file")
        try:
            self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None, check_same_thread=False)
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=NORMAL")
            self._conn.execute("PRAGMA foreign_keys=ON")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable lookalike database ({exc})") from exc

    def close(self) -> None:
        self._conn.close()

    def migrate(self) -> None:
        try:
            version = int(self._conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"{self.path}: made by a newer lookalike (schema {version}, this one reads {SCHEMA_VERSION})"
                )
            if version == SCHEMA_VERSION:
                return
            with self.transaction() as tx:
                for number, sql in MIGRATIONS:
                    if number > version:
                        for statement in migration_statements(sql, self.types):
                            tx.execute(statement)
                tx.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"{self.path}: not a usable lookalike database ({exc})") from exc

    @contextmanager
    def transaction(self, *, log: bool = False) -> Iterator[Transaction]:
        # ``log`` needs nothing more: BEGIN IMMEDIATE makes every write wait for the one before it
        with self._lock:
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreError(f"{self.path}: database is busy or locked ({exc})") from exc
            try:
                yield Transaction(self, self._conn)
            except BaseException as exc:
                self._conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc):
                    raise AlreadyExists(f"{self.path}: {exc}") from exc
                if isinstance(exc, sqlite3.DatabaseError):
                    raise StoreError(f"{self.path}: {exc}") from exc
                raise
            else:
                self._conn.execute("COMMIT")

    def read(self, sql: str, args: Sequence[object] = (), *, binary: bool = False) -> list[Any]:
        with self._lock:
            try:
                return self._conn.execute(sql, args).fetchall()
            except sqlite3.DatabaseError as exc:
                raise StoreError(f"{self.path}: {exc}") from exc

    def execute(self, conn: Any, sql: str, args: Sequence[object], *, binary: bool = False) -> Any:
        return conn.execute(sql, args)

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[object]]) -> None:
        conn.executemany(sql, rows)

    def insert(self, conn: Any, sql: str, args: Sequence[object]) -> int:
        return int(conn.execute(sql, args).lastrowid or 0)

    def member(self, values: Sequence[object]) -> tuple[str, list[object]]:
        return f"IN ({','.join('?' * len(values))})", list(values)

    @contextmanager
    def scope_lock(self, scope: str) -> Iterator[None]:
        """An exclusive ``flock`` on a file beside the database, opened afresh each time so threads
        exclude each other too."""
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

    def bytes_on_disk(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())


class SQLiteStore(SQLStore):
    """Images, files, fingerprints and review pairs in one SQLite file. Safe to share between threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        dialect = SQLiteDialect(path)
        self.path = dialect.path
        super().__init__(dialect)
