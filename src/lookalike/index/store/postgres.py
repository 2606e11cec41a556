"""The server store: every store's tables and statements (``index.store.schema``, ``index.store.sqlstore``)
in PostgreSQL (psycopg 3). This module holds what is PostgreSQL's own:

* the schema version is kept in ``schema_migrations`` (one row per migration applied);
  opening a store applies the missing ones under an advisory lock, so several
  processes starting at once migrate once;
* a few autocommit connections shared by threads (``_Pool``);
* two advisory locks (two-key form, class ids below) keep the semantics of the
  single-writer SQLite file: every write that appends to the change log holds
  the *log* lock until it commits, so change sequence numbers commit in order
  and a process reading ``changes_since`` never skips a change that commits
  late; ``scope_lock(scope)`` holds a per-scope lock on its own connection (never
  one from the pool, so waiting for it cannot starve the pool its holder needs);
* large ``bytea`` values are read in binary (half the bytes of hex text, no decoding).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg

from lookalike.errors import AlreadyExists, StoreError
from lookalike.index.store.dialect import Dialect, Transaction
from lookalike.index.store.schema import MIGRATIONS, SCHEMA_VERSION, migration_statements
from lookalike.index.store.sqlstore import SQLStore

__all__ = ["PostgresDialect", "PostgresStore"]

#: advisory lock classes (first key of the two-key form)
_LOCK_MIGRATE = 7_401
_LOCK_LOG = 7_402
_LOCK_SCOPE = 7_403

_POOL_SIZE = 8

_TYPES = {
    "rowid": "BIGSERIAL PRIMARY KEY",
    "serial": "BIGSERIAL PRIMARY KEY",
    "int": "BIGINT",
    "real": "DOUBLE PRECISION",
    "blob": "BYTEA",
    "bool": "BOOLEAN",
    "least": "least",
}


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


def _sql(statement: str) -> str:
    """A statement in the shared ``?`` form as psycopg takes it."""
    return statement.replace("?", "%s")


class PostgresDialect(Dialect):
    """PostgreSQL's side of a store (see the module docstring)."""

    types = _TYPES
    chunk = 1 << 30  # ``= ANY(array)`` takes any number of keys in one argument
    bytewise = ' COLLATE "C"'

    def __init__(self, url: str) -> None:
        self.url = url
        self._pool = _Pool(url, _POOL_SIZE)

    def close(self) -> None:
        self._pool.close()

    def migrate(self) -> None:
        with self.transaction() as tx:
            tx.execute("SELECT pg_advisory_xact_lock(?, 0)", (_LOCK_MIGRATE,))
            tx.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            done = {int(r[0]) for r in tx.rows("SELECT version FROM schema_migrations")}
            newest = max(done, default=0)
            if newest > SCHEMA_VERSION:
                raise StoreError(
                    f"database made by a newer lookalike (schema {newest}, this one reads {SCHEMA_VERSION})"
                )
            for number, sql in MIGRATIONS:
                if number not in done:
                    for statement in migration_statements(sql, self.types):
                        tx.execute(statement)
                    tx.execute("INSERT INTO schema_migrations(version) VALUES (?)", (number,))

    @contextmanager
    def transaction(self, *, log: bool = False) -> Iterator[Transaction]:
        try:
            with self._pool.connection() as conn, conn.transaction():
                if log:
                    conn.execute("SELECT pg_advisory_xact_lock(%s, 0)", (_LOCK_LOG,))
                yield Transaction(self, conn)
        except psycopg.errors.UniqueViolation as exc:
            raise AlreadyExists(f"PostgreSQL: {_one_line(exc)}") from exc
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {_one_line(exc)}") from exc

    def read(self, sql: str, args: Sequence[object] = (), *, binary: bool = False) -> list[Any]:
        try:
            with self._pool.connection() as conn:
                return conn.execute(_sql(sql), args, binary=binary).fetchall()
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {_one_line(exc)}") from exc

    def execute(self, conn: Any, sql: str, args: Sequence[object], *, binary: bool = False) -> Any:
        return conn.execute(_sql(sql), args, binary=binary)

    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[object]]) -> None:
        with conn.cursor() as cur:
            cur.executemany(_sql(sql), rows)

    def insert(self, conn: Any, sql: str, args: Sequence[object]) -> int:
        return int(conn.execute(_sql(sql) + " RETURNING pk", args).fetchone()[0])

    def member(self, values: Sequence[object]) -> tuple[str, list[object]]:
        return "= ANY(?)", [list(values)]

    @contextmanager
    def scope_lock(self, scope: str) -> Iterator[None]:
        """A transaction-level advisory lock on a connection of its own."""
        conn = self._pool.connect()
        try:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s, hashtext(%s))", (_LOCK_SCOPE, scope))
                yield
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL: {_one_line(exc)}") from exc
        finally:
            conn.close()

    def bytes_on_disk(self) -> int:
        return int(self.read("SELECT pg_database_size(current_database())")[0][0])


class PostgresStore(SQLStore):
    """The store over a PostgreSQL database (a ``postgresql://`` URL). Thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        super().__init__(PostgresDialect(url))
