"""Uploaded files on disk, content-addressed per tenant: ``<storage>/<tenant>/<sha[:2]>/<sha><ext>``.

A file is written to a temporary name, flushed to disk and renamed into
place (then the folder is flushed), so a reader never sees half a file. The
uploads module writes the file before the database row commits and deletes
the row before the file, both under the tenant's lock: after a crash at any
point, every row has its file; at worst a file has no row (``orphans``
finds those, and a later upload of the same bytes reuses it).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

from lookalike.errors import StoreError

__all__ = ["FileStorage", "extension_for"]

_EXTENSIONS = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/bmp": ".bmp",
    "image/tiff": ".tiff",
    "image/avif": ".avif",
    "image/heif": ".heic",
}


def extension_for(mime: str) -> str:
    """The file name ending for a MIME type (``.bin`` when unknown)."""
    return _EXTENSIONS.get(mime, ".bin")


class FileStorage:
    """Files of every tenant below one folder (created if missing)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{self.root}: cannot create the storage folder ({exc.strerror or exc})") from exc

    def key(self, tenant: str, sha256: bytes, mime: str) -> str:
        """Where a file lives, relative to the root (what the database row keeps as its source)."""
        folder = hashlib.sha256(tenant.encode()).hexdigest()[:20]
        sha = sha256.hex()
        return f"{folder}/{sha[:2]}/{sha}{extension_for(mime)}"

    def path(self, key: str) -> Path:
        """The file for ``key``. Raises ``StoreError`` for keys that leave the root."""
        path = (self.root / key).resolve()
        if self.root.resolve() not in path.parents:
            raise StoreError(f"stored file key {key!r} is outside the storage folder")
        return path

    def put(self, key: str, data: bytes) -> bool:
        """Write ``data`` at ``key`` durably; False when that file was there already (same bytes)."""
        path = self.path(key)
        if path.is_file() and path.stat().st_size == len(data):
            return False
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".incoming-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return True

    def read(self, key: str) -> bytes:
        """The bytes at ``key``. Raises ``StoreError`` when the file is missing."""
        try:
            return self.path(key).read_bytes()
        except OSError as exc:
            raise StoreError(f"stored file {key} is unreadable ({exc.strerror or exc})") from exc

    def open(self, key: str) -> BinaryIO:
        """The file at ``key``, open for reading (the caller closes it): a download streams from it
        even if the file is deleted meanwhile. Raises ``StoreError`` when the file is missing."""
        try:
            return self.path(key).open("rb")
        except OSError as exc:
            raise StoreError(f"stored file {key} is unreadable ({exc.strerror or exc})") from exc

    def delete(self, key: str) -> None:
        """Remove the file at ``key`` (gone already is fine)."""
        path = self.path(key)
        path.unlink(missing_ok=True)
        _fsync_dir(path.parent)

    def keys(self) -> set[str]:
        """Every stored file's key (for consistency checks)."""
        return {
            str(p.relative_to(self.root))
            for p in self.root.glob("*/*/*")
            if p.is_file() and not p.name.startswith(".incoming-")
        }


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
