"""What differs between the stores' databases, and nothing else.

``SQLStore`` (``index.store.sqlstore``) writes every statement once, with ``?`` placeholders,
and every row mapper once; a ``Dialect`` supplies what SQLite and PostgreSQL do
differently: placeholders, column types, how a list of keys is matched, how a new
row's key comes back, how binary values are read, connections and transactions,
the change-log and per-scope locks, where the schema version is kept, and the
size on disk. ``SQLiteDialect`` lives in ``index.store.sqlite``, ``PostgresDialect`` in
``index.store.postgres``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

__all__ = ["Dialect", "Transaction"]


class Transaction:
    """One open transaction of a dialect: statements in the shared ``?`` form."""

    def __init__(self, dialect: Dialect, conn: Any) -> None:
        self._dialect = dialect
        self._conn = conn

    def execute(self, sql: str, args: Sequence[object] = ()) -> None:
        """Run one statement."""
        self._dialect.execute(self._conn, sql, args)

    def executemany(self, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement for each of ``rows``."""
        self._dialect.executemany(self._conn, sql, rows)

    def rows(self, sql: str, args: Sequence[object] = (), *, binary: bool = False) -> list[Any]:
        """Every row of a query."""
        return list(self._dialect.execute(self._conn, sql, args, binary=binary).fetchall())

    def row(self, sql: str, args: Sequence[object] = (), *, binary: bool = False) -> Any | None:
        """The first row of a query, or None."""
        return self._dialect.execute(self._conn, sql, args, binary=binary).fetchone()

    def pk(self, sql: str, args: Sequence[object]) -> int:
        """The first column of the first row of a query that finds one (a row just written)."""
        row = self.row(sql, args)
        if row is None:
            raise LookupError(f"no row for {sql!r}")  # a bug: the row was written in this transaction
        return int(row[0])

    def insert(self, sql: str, args: Sequence[object]) -> int:
        """Run an ``INSERT`` of one row into a table keyed ``pk``; the new row's ``pk``."""
        return self._dialect.insert(self._conn, sql, args)


class Dialect(ABC):
    """One database's way of doing what ``SQLStore`` needs (see the module docstring)."""

    #: how the schema's ``{type}`` names are spelled (``index.store.schema``)
    types: Mapping[str, str]
    #: most keys one ``member`` test may hold
    chunk: int
    #: what makes a text column compare byte by byte (ids are paged in that order on both)
    bytewise: str = ""

    @abstractmethod
    def close(self) -> None:
        """Close every connection."""

    @abstractmethod
    def migrate(self) -> None:
        """Bring the schema up to date (``index.store.schema``). Raises ``StoreError`` for a newer one."""

    @abstractmethod
    def transaction(self, *, log: bool = False) -> AbstractContextManager[Transaction]:
        """One write transaction; with ``log`` (writes that append to the change log), holding a lock
        that makes change sequence numbers commit in order. Database errors become ``StoreError``;
        a unique row written twice, ``AlreadyExists``."""

    @abstractmethod
    def read(self, sql: str, args: Sequence[object] = (), *, binary: bool = False) -> list[Any]:
        """Rows of one query; ``binary`` for rows of large binary values. Raises ``StoreError``."""

    @abstractmethod
    def execute(self, conn: Any, sql: str, args: Sequence[object], *, binary: bool = False) -> Any:
        """Run one statement on ``conn``; its cursor."""

    @abstractmethod
    def executemany(self, conn: Any, sql: str, rows: Sequence[Sequence[object]]) -> None:
        """Run one statement on ``conn`` for each of ``rows``."""

    @abstractmethod
    def insert(self, conn: Any, sql: str, args: Sequence[object]) -> int:
        """Run an ``INSERT`` of one row on ``conn``; the new row's ``pk``."""

    @abstractmethod
    def member(self, values: Sequence[object]) -> tuple[str, list[object]]:
        """A test that a column is one of ``values`` (at most ``chunk`` of them), and its arguments:
        written after the column (``f"f.pk {test}"``)."""

    @abstractmethod
    def scope_lock(self, scope: str) -> AbstractContextManager[None]:
        """Held by one thread of one process at a time per scope."""

    @abstractmethod
    def bytes_on_disk(self) -> int:
        """What the database takes on disk."""

    def chunks(self, values: Sequence[Any]) -> Iterator[list[Any]]:
        """``values`` in runs short enough for one ``member`` test each."""
        for start in range(0, len(values), self.chunk):
            yield list(values[start : start + self.chunk])
