"""The storage interface, in the narrow roles its callers need, and choosing a store from a location.

Each role is a ``Protocol``: ``ImageWriter`` (adding and removing files),
``CandidateReader`` (what a look-up reads), ``ChangeLog`` (what in-memory indexes
are rebuilt and refreshed from), ``Embeddings`` (the learned tier's vectors),
``ReviewList`` (potential-duplicate pairs and decisions) and ``KeyStore`` (the
service's API keys). A caller asks for the role it uses; ``Store`` is all of them,
which ``SQLiteStore`` and ``PostgresStore`` (one ``SQLStore`` over two dialects) implement.
``tests/index/test_store_conformance.py`` runs one suite over both.
``open_store`` takes what a user types after ``--db``: a path for SQLite, a
``postgresql://`` URL for PostgreSQL.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from typing import Protocol

from lookalike.config import is_database_url
from lookalike.fingerprints import Fingerprint
from lookalike.index.store import records
from lookalike.index.store.records import Decision

__all__ = [
    "CandidateReader",
    "ChangeLog",
    "Embeddings",
    "ImageWriter",
    "KeyStore",
    "ReviewList",
    "Store",
    "open_store",
]


def open_store(location: str | os.PathLike[str]) -> Store:
    """The store at ``location``: a ``postgresql://`` URL or an SQLite file path (created if missing).

    Raises ``StoreError`` when the database cannot be opened or is of a newer schema.
    """
    if is_database_url(location):
        from lookalike.index.store.postgres import PostgresStore  # psycopg loads only for PostgreSQL users

        return PostgresStore(str(location))
    from lookalike.index.store.sqlite import SQLiteStore

    return SQLiteStore(location)


class ImageWriter(Protocol):
    """Adding and removing files; every write is one transaction."""

    def add_files(self, items: Iterable[records.NewFile]) -> list[tuple[records.StoredFile, bool]]: ...
    def set_pixel_digest(self, file_pk: int, fp: Fingerprint) -> None: ...
    def replace_file(self, file_pk: int, item: records.NewFile) -> records.StoredFile: ...
    def remove_image(self, scope: str, image_id: str) -> list[int]: ...
    def scope_lock(self, scope: str) -> AbstractContextManager[None]:
        """Held by one thread of one process at a time per scope: for check-then-store sequences."""
        ...


class CandidateReader(Protocol):
    """What a look-up reads: scopes, files by row or by bytes, their local features, images."""

    def scope_pk(self, name: str) -> int | None: ...
    def scope_names(self) -> dict[int, str]: ...
    def files(self, pks: Sequence[int]) -> list[records.StoredFile]: ...
    def files_by_sha(self, scope: str, sha256: bytes) -> list[records.StoredFile]: ...
    def local_features(self, pks: Sequence[int]) -> dict[int, bytes]: ...
    def image(self, scope: str, image_id: str) -> records.ImageRecord: ...
    def images(self, scope: str, *, after: str = "", limit: int = 100) -> list[records.ImageRecord]: ...


class ChangeLog(Protocol):
    """What in-memory indexes are rebuilt from (``codes``) and brought up to date from."""

    def codes(self, after_pk: int = 0, batch: int = 100_000) -> Iterator[list[records.CodeRow]]: ...
    def last_change(self) -> int: ...
    def changes_since(self, seq: int) -> tuple[int, list[records.CodeRow], list[int]]: ...


class Embeddings(Protocol):
    """The learned tier's vectors, per file and model (float16 bytes): written with a file
    (``NewFile.embedding``) or later (``put_embeddings``), read to rebuild and refresh the
    in-memory ``SemanticMirror``."""

    def put_embeddings(self, model: str, rows: Sequence[tuple[int, bytes]]) -> None: ...
    def embeddings(self, model: str, pks: Sequence[int]) -> dict[int, bytes]: ...
    def embedding_rows(self, model: str, batch: int = 50_000) -> Iterator[list[tuple[int, bytes]]]: ...
    def unembedded(self, model: str, *, after: int, limit: int) -> list[tuple[int, str]]: ...
    def count_unembedded(self, model: str) -> int: ...


class ReviewList(Protocol):
    """Potential-duplicate pairs and a person's decisions on them."""

    def add_review(self, scope: str, a_pk: int, b_pk: int, *, score: float, verdict: str, evidence: str) -> None: ...
    def reviews(self, scope: str | None, decision: Decision | None = Decision.PENDING) -> list[records.ReviewPair]: ...
    def review_pair(self, pair_pk: int, scope: str | None = None) -> records.ReviewPair: ...
    def decide(self, pair_pk: int, decision: Decision, scope: str | None = None) -> records.ReviewPair: ...
    def decide_images(self, scope: str, a_pk: int, b_pk: int, decision: Decision) -> None: ...
    def decisions(self, image_pks: Iterable[int]) -> dict[tuple[int, int], Decision]: ...


class KeyStore(Protocol):
    """The service's API keys (its tenants are scopes)."""

    def add_api_key(self, scope: str, key_id: str, key_hash: bytes, *, name: str = "") -> records.ApiKey: ...
    def api_key_scope(self, key_hash: bytes) -> str | None: ...
    def api_keys(self, scope: str | None = None) -> list[records.ApiKey]: ...
    def revoke_api_key(self, key_id: str) -> records.ApiKey: ...


class Store(ImageWriter, CandidateReader, ChangeLog, Embeddings, ReviewList, KeyStore, Protocol):
    """Every role, with closing and counting: what ``open_store`` returns.

    Every method is safe to call from several threads; every write is one
    transaction; several processes may share one database.
    """

    def close(self) -> None: ...
    def stats(self) -> records.StoreStats: ...
