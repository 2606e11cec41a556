"""What ``find`` remembers between runs, in the index's own database file but in tables of its own.

* ``find_files``  every path seen, per scope, keyed by (scope, path), with the device, inode,
                  size, mtime and ctime it had when read: a file whose five are unchanged is not
                  read again; any change (a file swapped for another of its size with its mtime
                  put back changes its ctime) reads it again. It points at the index row (``file_pk``) holding its
                  fingerprint and local features, or holds the error that stopped it.
* ``find_rows``   facts about each index row ``find`` has searched (so its pairs are known):
                  SHA-256, size in pixels, MIME type, lossless or not, EXIF date. A changed or
                  new path whose bytes are already here costs one read and a SHA-256, no decode.
* ``find_pairs``  the cascade's verdict on every pair of rows it linked (duplicates and similar
                  pairs; ``a_pk < b_pk``), with their pHash distance in bits under the best flip
                  or turn and whether local features (not the hashes) gave the verdict (how
                  grouping tells hash evidence from local-feature evidence). A
                  row's pairs with every other row of the scope are found when it is added
                  (``find`` combines what the checks of both ends said), so the pairs of
                  unchanged files stay valid.
* ``find_spectra`` spectrum profiles of the rows whose real resolution a keeper choice had to
                  check (``scan.source``), computed once.
* ``find_relative`` what local features say of one row as a copy of another (the evidence
                  against a keeper; "" when they do not match), computed once.
* ``find_decisions`` a person's decisions per path (keep it, or exclude it from actions), from
                  ``find --decisions``: a log in which the newest decision on a path replaces
                  older ones, and the newest keep of a group wins; paths are kept in NFC.
* ``find_marks``  a person's marks on pairs (``not_duplicate``, ``duplicate``) by the SHA-256 of
                  both files' bytes: they outlive ``--rescan``, a new matcher and renames.
* ``find_meta``   the matcher stamp the pairs were made with (another stamp empties the cache
                  but for a person's decisions and marks) and the tables' schema version.

The tables are made by numbered migrations (``scan.cache_schema``) on a connection of our own;
writes go in short transactions that never overlap the index store's.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.config import is_database_url
from lookalike.errors import ConfigError, FileError, StoreError
from lookalike.match import Verdict
from lookalike.scan.cache_person import PersonCache
from lookalike.scan.cache_schema import migrate

__all__ = ["CachedPath", "FileStamp", "FindCache", "RowFacts", "StoredPair"]


@dataclass(frozen=True, slots=True)
class FileStamp:
    """What identifies the file at a path as read: device, inode, size, mtime and ctime."""

    size: int
    mtime_ns: int
    dev: int = 0
    ino: int = 0
    ctime_ns: int = 0

    @classmethod
    def of(cls, st: os.stat_result) -> FileStamp:
        """The stamp of a file's status."""
        return cls(st.st_size, st.st_mtime_ns, st.st_dev, st.st_ino, st.st_ctime_ns)


@dataclass(frozen=True, slots=True)
class CachedPath:
    """A path as last read: its stamp then, and its index row or (None and) its error."""

    path: str
    stamp: FileStamp
    file_pk: int | None
    error: FileError | None = None

    @property
    def size(self) -> int:
        """Its size in bytes when read."""
        return self.stamp.size


@dataclass(frozen=True, slots=True)
class RowFacts:
    """What the keeper policy and the reports need of one stored picture."""

    file_pk: int
    image_pk: int
    sha256: bytes
    width: int
    height: int
    mime: str
    lossless: bool
    taken_at: str | None
    #: what the keeper choice reads (``scan.source``); None in rows cached before it was kept
    jpeg_quality: float | None = None
    padding: float | None = None
    content_aspect: float | None = None
    colours: int | None = None
    grid_step: int | None = None


@dataclass(frozen=True, slots=True)
class StoredPair:
    """The cascade's verdict on two index rows (``a_pk < b_pk``) and its explanation, the pHash
    bits between them, whether local-feature verification (rather than the hashes) gave it, and
    whether a person's decision made the link (``by_person``: never cached)."""

    a_pk: int
    b_pk: int
    score: float
    verdict: Verdict
    evidence: str
    phash_bits: int | None = None
    by_local_features: bool = False
    by_person: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "verdict", Verdict(self.verdict))  # a verdict's stored name is one too


class FindCache(PersonCache):
    """The ``find`` tables of one database file (see the module docstring)."""

    @staticmethod
    def present(path: str | os.PathLike[str]) -> bool:
        """Whether ``path`` is an SQLite file that holds find tables (read without changing it)."""
        if is_database_url(path) or not os.path.isfile(path):
            return False
        try:
            db = sqlite3.connect(f"file:{os.path.abspath(path)}?mode=ro", uri=True)
            try:
                return db.execute("SELECT 1 FROM sqlite_master WHERE name = 'find_rows'").fetchone() is not None
            finally:
                db.close()
        except sqlite3.DatabaseError:
            return False

    def __init__(self, path: str | os.PathLike[str]) -> None:
        if is_database_url(path):
            raise ConfigError(f"{path}: find keeps its cache in an SQLite file; give a file path, not a URL")
        self.path = Path(path)
        try:
            self._db = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write() as db:
                migrate(db)
        except (sqlite3.DatabaseError, ValueError) as exc:
            if hasattr(self, "_db"):
                self._db.close()
            raise StoreError(f"{self.path}: not a usable lookalike database ({exc})") from exc

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def __enter__(self) -> FindCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
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

    # ---- the matcher stamp ----------------------------------------------------------------------

    def stamp(self) -> str | None:
        """The matcher stamp the cached pairs were made with (None on a new cache)."""
        row = self._db.execute("SELECT value FROM find_meta WHERE key = 'matcher'").fetchone()
        return None if row is None else str(row[0])

    def set_stamp(self, stamp: str) -> None:
        """Record the matcher stamp."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO find_meta(key, value) VALUES ('matcher', ?)", (stamp,))

    def forget_scope(self, scope: str) -> list[int]:
        """Empty the cache of ``scope``; returns the index rows it had searched (for removal)."""
        pks = [int(r[0]) for r in self._db.execute("SELECT file_pk FROM find_rows WHERE scope = ?", (scope,))]
        with self._write() as db:
            db.execute("DELETE FROM find_files WHERE scope = ?", (scope,))
            db.execute(
                "DELETE FROM find_pairs WHERE a_pk IN (SELECT file_pk FROM find_rows WHERE scope = ?)"
                " OR b_pk IN (SELECT file_pk FROM find_rows WHERE scope = ?)",
                (scope, scope),
            )
            db.execute("DELETE FROM find_rows WHERE scope = ?", (scope,))
        return pks

    # ---- paths ----------------------------------------------------------------------------------

    def paths(self, scope: str) -> dict[str, CachedPath]:
        """Every path cached for ``scope``."""
        rows = self._db.execute(
            "SELECT path, size, mtime_ns, dev, ino, ctime_ns, file_pk, error_code, error FROM find_files"
            " WHERE scope = ?",
            (scope,),
        )
        out: dict[str, CachedPath] = {}
        for p, size, mtime, dev, ino, ctime, f, code, error in rows:
            # a row from before the identity columns holds NULL: -1 matches no file, so it is read again
            stamp = FileStamp(int(size), int(mtime), *(-1 if v is None else int(v) for v in (dev, ino, ctime)))
            fault = None if f is not None else FileError(str(p), str(code), str(error))
            out[str(p)] = CachedPath(str(p), stamp, None if f is None else int(f), fault)
        return out

    def put_paths(self, scope: str, items: Iterable[CachedPath]) -> None:
        """Record paths as read now."""
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO find_files(scope, path, size, mtime_ns, dev, ino, ctime_ns, file_pk,"
                " error_code, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    (
                        scope,
                        c.path,
                        c.stamp.size,
                        c.stamp.mtime_ns,
                        c.stamp.dev,
                        c.stamp.ino,
                        c.stamp.ctime_ns,
                        c.file_pk,
                        *_error_columns(c.error),
                    )
                    for c in items
                ],  # fmt: skip
            )

    def forget_paths(self, scope: str, paths: Sequence[str]) -> None:
        """Drop paths that are gone."""
        with self._write() as db:
            db.executemany("DELETE FROM find_files WHERE scope = ? AND path = ?", [(scope, p) for p in paths])

    # ---- rows and pairs -------------------------------------------------------------------------

    def rows(self, pks: Iterable[int]) -> dict[int, RowFacts]:
        """Facts of these index rows (those find has searched)."""
        out: dict[int, RowFacts] = {}
        for chunk, marks in _chunks(pks):
            for row in self._db.execute(f"SELECT {_ROW_COLUMNS} FROM find_rows WHERE file_pk IN ({marks})", chunk):
                out[int(row[0])] = _facts(row)
        return out

    def row_by_sha(self, scope: str, sha256: bytes) -> RowFacts | None:
        """The searched row of ``scope`` holding these bytes, if any."""
        row = self._db.execute(
            f"SELECT {_ROW_COLUMNS} FROM find_rows WHERE scope = ? AND sha256 = ?",
            (scope, sha256),
        ).fetchone()
        return None if row is None else _facts(row)

    def rows_in_scope(self, scope: str) -> list[int]:
        """Every searched row of ``scope``."""
        return [int(r[0]) for r in self._db.execute("SELECT file_pk FROM find_rows WHERE scope = ?", (scope,))]

    def has_rows(self, scope: str) -> bool:
        """Whether ``scope`` holds any searched row."""
        return self._db.execute("SELECT 1 FROM find_rows WHERE scope = ? LIMIT 1", (scope,)).fetchone() is not None

    def put_rows(self, scope: str, facts: Iterable[RowFacts], pairs: Iterable[StoredPair]) -> None:
        """Record searched rows and the pairs found for them (replacing what was recorded of those
        pairs), in one transaction."""
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO find_rows(file_pk, image_pk, scope, sha256, width, height, mime, lossless,"
                " taken_at, jpeg_quality, padding, content_aspect, colours, grid_step) VALUES (" + "?, " * 13 + "?)",
                [(f.file_pk, f.image_pk, scope, f.sha256, f.width, f.height, f.mime, int(f.lossless), f.taken_at,
                  f.jpeg_quality, f.padding, f.content_aspect, f.colours, f.grid_step) for f in facts],
            )  # fmt: skip
            db.executemany(
                f"INSERT OR REPLACE INTO find_pairs({_PAIR_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (p.a_pk, p.b_pk, p.score, p.verdict.value, p.evidence, p.phash_bits, int(p.by_local_features))
                    for p in pairs
                ],
            )

    def pairs_among(self, pks: Iterable[int]) -> list[StoredPair]:
        """Every stored pair whose two rows are both among ``pks``."""
        wanted = sorted(set(pks))
        self._db.execute("CREATE TEMP TABLE IF NOT EXISTS find_run(pk INTEGER PRIMARY KEY)")
        self._db.execute("DELETE FROM find_run")
        self._db.executemany("INSERT INTO find_run(pk) VALUES (?)", [(p,) for p in wanted])
        rows = self._db.execute(
            "SELECT p.a_pk, p.b_pk, p.score, p.verdict, p.evidence, p.phash_bits, p.by_local_features"
            " FROM find_pairs p"
            " JOIN find_run a ON a.pk = p.a_pk JOIN find_run b ON b.pk = p.b_pk"
        ).fetchall()
        self._db.execute("DELETE FROM find_run")
        return [_pair(r) for r in rows]

    def set_phash_bits(self, pairs: Sequence[StoredPair]) -> None:
        """Record the pHash distances of pairs cached without them."""
        with self._write() as db:
            db.executemany(
                "UPDATE find_pairs SET phash_bits = ? WHERE a_pk = ? AND b_pk = ?",
                [(p.phash_bits, p.a_pk, p.b_pk) for p in pairs],
            )

    def pairs_of(self, pk: int) -> list[StoredPair]:
        """Every stored pair that involves row ``pk``."""
        rows = self._db.execute(f"SELECT {_PAIR_COLUMNS} FROM find_pairs WHERE a_pk = ? OR b_pk = ?", (pk, pk))
        return [_pair(r) for r in rows]

    def path_rows(self, paths: Sequence[str]) -> dict[str, int]:
        """Index rows of these paths, in any scope (a path read by ``find``)."""
        out: dict[str, int] = {}
        for p in paths:
            row = self._db.execute(
                "SELECT file_pk FROM find_files WHERE path = ? AND file_pk IS NOT NULL LIMIT 1", (p,)
            ).fetchone()
            if row is not None:
                out[p] = int(row[0])
        return out

    def paths_of_rows(self, pks: Iterable[int]) -> dict[int, list[str]]:
        """Paths cached for each of these rows, sorted."""
        out: dict[int, list[str]] = {}
        for pk in sorted(set(pks)):
            out[pk] = sorted(
                {str(r[0]) for r in self._db.execute("SELECT path FROM find_files WHERE file_pk = ?", (pk,))}
            )
        return out

    def set_source_facts(self, facts: Sequence[RowFacts]) -> None:
        """Record the keeper-choice facts of rows cached without them."""
        with self._write() as db:
            db.executemany(
                "UPDATE find_rows SET jpeg_quality = ?, padding = ?, content_aspect = ?, colours = ?, grid_step = ?"
                " WHERE file_pk = ?",
                [(f.jpeg_quality, f.padding, f.content_aspect, f.colours, f.grid_step, f.file_pk) for f in facts],
            )

    # ---- spectra and relatives ----------------------------------------------------------------------

    def spectra(self, pks: Iterable[int]) -> dict[int, bytes]:
        """Cached spectrum profiles (``scan.source.spectrum_profile`` as float64 bytes) of these rows."""
        out: dict[int, bytes] = {}
        for pk in sorted(set(pks)):
            row = self._db.execute("SELECT profile FROM find_spectra WHERE file_pk = ?", (pk,)).fetchone()
            if row is not None:
                out[pk] = bytes(row[0])
        return out

    def put_spectrum(self, pk: int, profile: bytes) -> None:
        """Keep a row's spectrum profile."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO find_spectra(file_pk, profile) VALUES (?, ?)", (pk, profile))

    def relatives(self, pks: Iterable[int]) -> dict[tuple[int, int], str | None]:
        """Cached local evidence (``find_relative``) of copies among ``pks``: None where none matched."""
        out: dict[tuple[int, int], str | None] = {}
        for chunk, marks in _chunks(pks):
            for c, o, e in self._db.execute(
                f"SELECT copy_pk, original_pk, evidence FROM find_relative WHERE copy_pk IN ({marks})", chunk
            ):
                out[int(c), int(o)] = str(e) or None
        return out

    def put_relatives(self, items: Mapping[tuple[int, int], str | None]) -> None:
        """Keep local evidence of copies (see ``relatives``; the table keeps '' for None)."""
        with self._write() as db:
            db.executemany(
                "INSERT OR REPLACE INTO find_relative(copy_pk, original_pk, evidence) VALUES (?, ?, ?)",
                [(c, o, e or "") for (c, o), e in sorted(items.items())],
            )


_PAIR_COLUMNS = "a_pk, b_pk, score, verdict, evidence, phash_bits, by_local_features"
_ROW_COLUMNS = (
    "file_pk, image_pk, sha256, width, height, mime, lossless, taken_at, jpeg_quality, padding, content_aspect,"
    " colours, grid_step"
)


def _chunks(pks: Iterable[int]) -> Iterator[tuple[list[int], str]]:
    """The distinct ``pks`` in order, in chunks of as many as one statement takes, with their ``?`` marks."""
    ordered = sorted(set(pks))
    for start in range(0, len(ordered), 900):
        chunk = ordered[start : start + 900]
        yield chunk, ",".join("?" * len(chunk))


def _error_columns(error: FileError | None) -> tuple[str, str]:
    """(code, message) as the table keeps them: '' for none, as caches made before None always held."""
    return ("", "") if error is None else (error.code, error.message)


def _pair(row: Sequence[Any]) -> StoredPair:
    a, b, score, verdict, evidence, bits, local = row
    return StoredPair(
        int(a), int(b), float(score), Verdict(verdict), str(evidence), None if bits is None else int(bits), bool(local)
    )


def _facts(row: Sequence[Any]) -> RowFacts:
    pk, image_pk, sha, w, h, mime, lossless, taken, quality, padding, aspect, colours, step = row
    return RowFacts(
        file_pk=int(pk), image_pk=int(image_pk), sha256=bytes(sha),
        width=int(w), height=int(h), mime=str(mime), lossless=bool(lossless),
        taken_at=None if taken is None else str(taken),
        jpeg_quality=None if quality is None else float(quality),
        padding=None if padding is None else float(padding),
        content_aspect=None if aspect is None else float(aspect),
        colours=None if colours is None else int(colours), grid_step=None if step is None else int(step),
    )  # fmt: skip
