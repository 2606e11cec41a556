"""A person's word in the find cache: decisions per path (a log) and marks per pair of files' bytes.

``PersonCache`` is a part of ``FindCache`` (its tables, its connection); see ``scan.cache`` for
the tables. Neither ``--rescan`` nor a new matcher stamp touches them.
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Sequence
from contextlib import AbstractContextManager

from lookalike.errors import ConfigError

__all__ = ["PersonCache", "nfc"]


class PersonCache:
    """A person's decisions and marks (the methods ``FindCache`` has for them)."""

    _db: sqlite3.Connection

    def _write(self) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # FindCache's short write transaction

    def decisions(self, scope: str) -> dict[str, tuple[str, int]]:
        """A person's decisions on paths of ``scope`` (NFC): ``keep`` or ``exclude``, each with its
        place in the log (a later decision has a higher number)."""
        rows = self._db.execute("SELECT path, decision, seq FROM find_decisions WHERE scope = ?", (scope,))
        return {str(p): (str(d), int(n)) for p, d, n in rows}

    def put_decisions(self, scope: str, decisions: Sequence[tuple[str, str]]) -> None:
        """Append decisions (``keep`` or ``exclude`` per path, oldest first) to the log; each
        replaces what was decided on its path before. Paths are kept in NFC.

        Raises ``ConfigError`` for another decision."""
        bad = sorted({d for _, d in decisions if d not in ("keep", "exclude")})
        if bad:
            raise ConfigError(f"unknown decision {bad[0]!r} (choose keep or exclude)")
        with self._write() as db:
            last = int(db.execute("SELECT COALESCE(MAX(seq), 0) FROM find_decisions").fetchone()[0])
            db.executemany(
                "INSERT OR REPLACE INTO find_decisions(scope, path, decision, seq) VALUES (?, ?, ?, ?)",
                [(scope, nfc(p), d, last + i) for i, (p, d) in enumerate(decisions, 1)],
            )

    def image_shas(self, scope: str, image_pks: Sequence[int]) -> dict[int, bytes]:
        """The SHA-256 of the bytes find read for these index images of ``scope`` (those it read)."""
        out: dict[int, bytes] = {}
        for pk in image_pks:
            row = self._db.execute(
                "SELECT sha256 FROM find_rows WHERE scope = ? AND image_pk = ? LIMIT 1", (scope, pk)
            ).fetchone()
            if row is not None:
                out[pk] = bytes(row[0])
        return out

    def marks(self, scope: str) -> dict[tuple[bytes, bytes], str]:
        """A person's marks on pairs of ``scope``, keyed by the two SHA-256 digests (smaller first)."""
        rows = self._db.execute("SELECT sha_a, sha_b, decision FROM find_marks WHERE scope = ?", (scope,))
        return {(bytes(a), bytes(b)): str(d) for a, b, d in rows}

    def put_mark(self, scope: str, sha_a: bytes, sha_b: bytes, decision: str | None) -> bool:
        """Record a person's mark on the pair of files holding these bytes, or remove it (``None``).
        Returns whether there was a mark before."""
        lo, hi = sorted((sha_a, sha_b))
        with self._write() as db:
            had = db.execute(
                "SELECT 1 FROM find_marks WHERE scope = ? AND sha_a = ? AND sha_b = ?", (scope, lo, hi)
            ).fetchone()
            if decision is None:
                db.execute("DELETE FROM find_marks WHERE scope = ? AND sha_a = ? AND sha_b = ?", (scope, lo, hi))
            else:
                db.execute(
                    "INSERT OR REPLACE INTO find_marks(scope, sha_a, sha_b, decision) VALUES (?, ?, ?, ?)",
                    (scope, lo, hi, decision),
                )
        return had is not None


def nfc(path: str) -> str:
    """``path`` in Unicode NFC: how decisions are kept and compared (a name typed on one system and
    stored in NFD by another's file system is one name)."""
    return unicodedata.normalize("NFC", path)
