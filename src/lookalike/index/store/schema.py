"""The tables of every store, as numbered migrations written once for SQLite and PostgreSQL.

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
* ``embeddings``  the learned tier's embedding of a file under one model (its name and
               weights' hash), L2-normalised float16 (2,560 bytes for EfficientNet-Lite0); only
               for files indexed with ``--learned``; the in-memory ``SemanticMirror`` is rebuilt
               from it.
* ``api_keys`` the service's API keys: a public id, the scope (tenant) and the
               SHA-256 of the key; the key itself is never stored.

One scheme for both dialects: ``MIGRATIONS`` is append-only, each numbered, and
every statement is idempotent (``IF NOT EXISTS``, a back-fill that skips rows
already there), so a database of any earlier version, including one whose
version mark was lost or lowered, is brought up to date by running what it
lacks. Each dialect only spells the column types (``{serial}``, ``{blob}``, ...)
and keeps the version mark its own way (``Dialect.migrate``). The numbers are
those SQLite files made by earlier releases carry in ``PRAGMA user_version``.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "migration_statements"]

#: (version, statements): append only; never edit a released migration
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
CREATE TABLE IF NOT EXISTS scopes (
    pk {rowid},
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS images (
    pk {rowid},
    scope_pk {int} NOT NULL REFERENCES scopes(pk),
    image_id TEXT NOT NULL,
    created_at {real} NOT NULL,
    UNIQUE (scope_pk, image_id)
);
CREATE TABLE IF NOT EXISTS files (
    pk {serial},
    image_pk {int} NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    scope_pk {int} NOT NULL REFERENCES scopes(pk),
    rendition TEXT NOT NULL DEFAULT '',
    source TEXT NOT NULL DEFAULT '',
    sha256 {blob} NOT NULL,
    pixel_digest {blob},
    phash {int} NOT NULL,
    pdq {blob} NOT NULL,
    fingerprint {blob} NOT NULL,
    created_at {real} NOT NULL,
    UNIQUE (scope_pk, sha256)
);
CREATE INDEX IF NOT EXISTS files_image ON files(image_pk);
CREATE INDEX IF NOT EXISTS files_pixel ON files(scope_pk, pixel_digest) WHERE pixel_digest IS NOT NULL;
CREATE TABLE IF NOT EXISTS changes (
    seq {serial},
    file_pk {int} NOT NULL,
    added {bool} NOT NULL
);
CREATE TABLE IF NOT EXISTS review (
    pk {rowid},
    scope_pk {int} NOT NULL REFERENCES scopes(pk),
    a_pk {int} NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    b_pk {int} NOT NULL REFERENCES images(pk) ON DELETE CASCADE,
    score {real} NOT NULL,
    verdict TEXT NOT NULL,
    evidence TEXT NOT NULL DEFAULT '',
    decision TEXT NOT NULL DEFAULT 'pending',
    created_at {real} NOT NULL,
    decided_at {real},
    UNIQUE (a_pk, b_pk),
    CHECK (a_pk < b_pk)
);
CREATE INDEX IF NOT EXISTS review_scope ON review(scope_pk, decision);
""",
    ),
    (
        2,
        """
CREATE TABLE IF NOT EXISTS local_features (
    file_pk {int} PRIMARY KEY REFERENCES files(pk) ON DELETE CASCADE,
    data {blob} NOT NULL
);
CREATE INDEX IF NOT EXISTS review_b ON review(b_pk);
""",
    ),
    (
        3,
        """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    scope_pk {int} NOT NULL REFERENCES scopes(pk),
    key_hash {blob} NOT NULL UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    created_at {real} NOT NULL,
    revoked_at {real}
);
""",
    ),
    (
        4,
        # the strongest 64 descriptors (``LOCAL_CODES``) of each file's stored features: a serialised
        # ``LocalFeatures`` is a 12-byte header, 4 bytes of coordinates a point, then 32 bytes of
        # descriptor a point, strongest first
        """
CREATE TABLE IF NOT EXISTS local_codes (
    file_pk {int} PRIMARY KEY REFERENCES files(pk) ON DELETE CASCADE,
    codes {blob} NOT NULL
);
INSERT INTO local_codes(file_pk, codes)
    SELECT file_pk, substr(data, 13 + 4 * ((length(data) - 12) / 36), 32 * {least}(64, (length(data) - 12) / 36))
    FROM local_features
    WHERE NOT EXISTS (SELECT 1 FROM local_codes c WHERE c.file_pk = local_features.file_pk);
""",
    ),
    (
        5,
        # one row per file and model, so that indexing again with another encoder adds its vectors
        # beside the first's; read back by model in row order (``embeddings_model``)
        """
CREATE TABLE IF NOT EXISTS embeddings (
    file_pk {int} NOT NULL REFERENCES files(pk) ON DELETE CASCADE,
    model TEXT NOT NULL,
    vector {blob} NOT NULL,
    PRIMARY KEY (file_pk, model)
);
CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model, file_pk);
""",
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1][0]


def migration_statements(sql: str, types: Mapping[str, str]) -> list[str]:
    """The statements of one migration, its ``{type}`` names spelled as a dialect spells them."""
    return [s.strip() for s in sql.format_map(types).split(";") if s.strip()]
