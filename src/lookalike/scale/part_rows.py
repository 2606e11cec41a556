"""The rows a matching task reads: the stored files and local features of the rows it checks and
of their candidates, read from the run's row files (``write_rows``: one a codes part, each row's
record at a byte offset, so that reading a row costs one ``pread``, not the parse of a Parquet
footer: a fingerprint part's is ~2 MB for its 256 row groups, ~6 ms to open, and a batch of
checks reaches candidates in every part), and held for ``Cascade`` as its ``CandidateReader``
(``PartRows``)."""

from __future__ import annotations

import os
import struct
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints import fingerprint_from_bytes
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index.store.records import CodeRow, ImageRecord, StoredFile

__all__ = ["NoLog", "PartRows", "features_of", "read_rows", "write_rows"]

#: a row's record: the lengths of its URL, fingerprint and local features, then its SHA-256 and those
_HEADER = struct.Struct("<III32s")


class PartRows:
    """The stored rows a task reads (``CandidateReader`` for ``Cascade``): one scope, its files."""

    def __init__(self, scope: str, files: dict[int, StoredFile], local: dict[int, bytes]) -> None:
        self._scope, self._files, self._local = scope, files, local

    def load(self, files: dict[int, StoredFile], local: dict[int, bytes]) -> None:
        """Hold these files and local features instead (the rows of the next few checks)."""
        self._files, self._local = files, local

    @property
    def held(self) -> dict[int, StoredFile]:
        """The files held."""
        return self._files

    def scope_pk(self, name: str) -> int | None:
        return 1 if name == self._scope else None

    def scope_names(self) -> dict[int, str]:
        return {1: self._scope}

    def files(self, pks: Sequence[int]) -> list[StoredFile]:
        return [self._files[p] for p in pks if p in self._files]

    def files_by_sha(self, scope: str, sha256: bytes) -> list[StoredFile]:
        return []  # rows with the same bytes are one row; a row is never its own match

    def local_features(self, pks: Sequence[int]) -> dict[int, bytes]:
        return {p: self._local[p] for p in pks if p in self._local}

    def image(self, scope: str, image_id: str) -> ImageRecord:
        raise NotImplementedError

    def images(self, scope: str, *, after: str = "", limit: int = 100) -> list[ImageRecord]:
        raise NotImplementedError

    def decisions(self, image_pks: Iterable[int]) -> dict[tuple[int, int], Any]:
        return {}  # a run's index holds no person's decisions


class NoLog:
    """An empty ``ChangeLog``: the planned cascade's ``Mirror`` holds nothing."""

    def codes(self, after_pk: int = 0, batch: int = 100_000) -> Iterator[list[CodeRow]]:
        return iter(())

    def last_change(self) -> int:
        return 0

    def changes_since(self, seq: int) -> tuple[int, list[CodeRow], list[int]]:
        return seq, [], []


def write_rows(
    path: str, urls: list[str], shas: list[bytes], fingerprints: list[bytes], local: list[bytes | None]
) -> npt.NDArray[np.int64]:
    """Write each row's record to ``path`` (through a temporary name and a rename); returns
    (n, 2) int64: each record's byte offset and size. Raises OSError when it cannot be written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    spans = np.zeros((len(urls), 2), np.int64)
    at = 0
    with open(tmp, "wb") as fh:
        for i, (url, sha, fp, loc) in enumerate(zip(urls, shas, fingerprints, local, strict=True)):
            u = url.encode()
            record = _HEADER.pack(len(u), len(fp), len(loc or b""), sha) + u + fp + (loc or b"")
            fh.write(record)
            spans[i] = at, len(record)
            at += len(record)
    os.replace(tmp, path)
    return spans


def read_rows(
    where: Callable[[int], tuple[str, int, int]], pks: Iterable[int], scope: str
) -> tuple[dict[int, StoredFile], dict[int, bytes]]:
    """The stored files and local features of rows ``pks`` (``where``: each one's row file, and
    its record's offset and size there), each file opened once. Raises OSError when a row file
    cannot be read."""
    by_file: dict[str, list[tuple[int, int, int]]] = {}
    for pk in sorted(set(pks)):
        path, at, size = where(pk)
        by_file.setdefault(path, []).append((at, size, pk))
    files: dict[int, StoredFile] = {}
    local: dict[int, bytes] = {}
    for path, wanted in by_file.items():
        fd = os.open(path, os.O_RDONLY)
        try:
            for at, size, pk in sorted(wanted):  # in file order: the reads run forward
                record = os.pread(fd, size, at)
                n_url, n_fp, n_local, sha = _HEADER.unpack_from(record)
                body = memoryview(record)[_HEADER.size :]
                url, fpb = bytes(body[:n_url]).decode(), bytes(body[n_url : n_url + n_fp])
                fp = fingerprint_from_bytes(fpb)
                files[pk] = StoredFile(pk, pk, sha.hex()[:16], scope, "", url, fp, 0.0)
                if n_local:
                    local[pk] = bytes(body[n_url + n_fp : n_url + n_fp + n_local])
        finally:
            os.close(fd)
    return files, local


def features_of(data: bytes | None, f: StoredFile) -> LocalFeatures:
    """The local features stored in ``data``, or none (a picture too thin or flat for any) in
    ``f``'s frame."""
    if data:
        return LocalFeatures.from_bytes(data)
    aspect = f.fingerprint.width / max(1, f.fingerprint.height)
    return LocalFeatures(
        points=np.zeros((0, 2), np.float32), descriptors=np.zeros((0, 32), np.uint8), aspect=aspect or 1.0
    )
