"""The rows a matching task reads from the run's fingerprint parts: the stored files and local
features of the rows it checks and of their candidates, read a few row groups at a time
(``read_rows``), and held for ``Cascade`` as its ``CandidateReader`` (``PartRows``)."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lookalike.fingerprints import fingerprint_from_bytes
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index.store.records import CodeRow, ImageRecord, StoredFile

__all__ = ["NoLog", "PartRows", "features_of", "read_rows"]


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


def read_rows(
    where: Callable[[int], tuple[str, int]], pks: Iterable[int], scope: str
) -> tuple[dict[int, StoredFile], dict[int, bytes]]:
    """The stored files and local features of rows ``pks`` (``where``: each one's fingerprint part
    and row there), each part opened once and only its row groups that hold them read."""
    by_part: dict[str, list[tuple[int, int]]] = {}
    for pk in sorted(set(pks)):
        path, row = where(pk)
        by_part.setdefault(path, []).append((row, pk))
    files: dict[int, StoredFile] = {}
    local: dict[int, bytes] = {}
    for part_path, wanted in by_part.items():
        with pq.ParquetFile(part_path) as f:
            sizes = [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)]
            starts = np.concatenate([[0], np.cumsum(sizes)])
            rows = np.asarray([r for r, _ in wanted], np.int64)
            groups = np.searchsorted(starts, rows, side="right") - 1
            need = np.unique(groups)
            at = dict(zip(need.tolist(), np.concatenate([[0], np.cumsum(np.diff(starts)[need])]).tolist()))
            # one thread: Arrow's pool keeps pages per thread, and a few rows need no parallel decode
            t = f.read_row_groups(need.tolist(), columns=["url", "sha256", "fingerprint", "local"], use_threads=False)
        t = t.take(pa.array([at[g] + r - starts[g] for r, g in zip(rows.tolist(), groups.tolist())], pa.int64()))
        for (_, pk), url, sha, fpb, loc in zip(wanted, *(t.column(n).to_pylist() for n in t.column_names)):
            fp = fingerprint_from_bytes(fpb)
            files[pk] = StoredFile(pk, pk, sha.hex()[:16], scope, "", url, fp, 0.0)
            if loc:
                local[pk] = loc
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
