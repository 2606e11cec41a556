"""What ``Index`` keeps in memory of its store, and keeps in step with the store's change log.

Every file's pHash (a ``HammingIndex``), its strongest local descriptors (a
``DescriptorIndex``), its scope, and the rows of files that hash look-ups
answered lately. Rebuilt from ``ChangeLog.codes`` on open; brought up to date
from ``ChangeLog.changes_since`` before a look-up, so a restart loses nothing
and processes sharing one database see each other's additions.

One lock covers these structures while they are read or updated, and nothing
else: decoding, hashing and geometric verification of one thread never make
another wait.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import numpy.typing as npt

from lookalike.index.search.descriptors import DescriptorIndex
from lookalike.index.search.hamming import HammingIndex
from lookalike.index.store.interface import ChangeLog
from lookalike.index.store.records import CodeRow, StoredFile

__all__ = ["Mirror"]

# Rows of the files that hash look-ups answered lately, kept in memory (about 2 KB each) and
# dropped when the change log says their file is gone: a hash look-up then asks the database
# nothing but decisions. Bounded, least recently used first out.
_FILE_ROWS_KEPT = 10_000


class Mirror:
    """The in-memory indexes of one store (see the module docstring). Thread-safe.

    ``shared_codes``: a folder through which the processes that name it (a service's workers) map
    one copy of the pHash index, not one each; changes after opening stay per process."""

    def __init__(self, log: ChangeLog, *, shared_codes: str | os.PathLike[str] | None = None) -> None:
        self._log = log
        self.phash = HammingIndex(64)
        self.local = DescriptorIndex()
        self._scope_of = np.full(1024, -1, dtype=np.int32)
        self._scope_rows: dict[int, int] = {}  # rows of each scope, for ``nearest_in_scope``
        self._seq = log.last_change()
        self._refreshed = time.monotonic()
        self._file_rows: OrderedDict[int, StoredFile] = OrderedDict()
        #: held while the structures are read or updated
        self.lock = threading.RLock()
        #: told (file rows added, file rows removed) of each refresh, holding ``lock``: in-memory
        #: indexes kept beside these (the learned tier's ``SemanticMirror``)
        self.followers: list[Callable[[list[int], list[int]], None]] = []
        for rows in log.codes():
            self._insert_codes(rows)
        self.local.flush()
        if shared_codes is not None:  # processes naming one folder map one copy of the pHash index
            self.phash.share(shared_codes)

    def _insert_codes(self, rows: Sequence[CodeRow]) -> None:
        if not rows:
            return
        pks = np.fromiter((r.pk for r in rows), dtype=np.int64, count=len(rows))
        top = int(pks.max())
        if top >= len(self._scope_of):
            grown = np.full(max(top + 1, 2 * len(self._scope_of)), -1, dtype=np.int32)
            grown[: len(self._scope_of)] = self._scope_of
            self._scope_of = grown
        self._count(pks, -1)  # a row added again: counted once, in its new scope
        self._scope_of[pks] = np.fromiter((r.scope_pk for r in rows), dtype=np.int32, count=len(rows))
        self._count(pks, +1)
        self.phash.add(pks, np.fromiter((r.phash for r in rows), dtype=np.uint64, count=len(rows)))
        for r in rows:
            if r.local_codes:
                self.local.add(r.pk, np.frombuffer(r.local_codes, dtype=np.uint8).reshape(-1, 32))

    def refresh(self, *, max_staleness: float = 0.0) -> None:
        """Apply what changed in the database since the last look; with ``max_staleness``, only when
        the last look is older than that many seconds."""
        now = time.monotonic()
        if max_staleness > 0 and now - self._refreshed < max_staleness:
            return
        with self.lock:
            self._refreshed = now
            seq, added, removed = self._log.changes_since(self._seq)
            if removed:
                gone = np.asarray(removed, dtype=np.int64)
                self.phash.remove(gone)
                self.local.remove(gone)
                self._count(gone[gone < len(self._scope_of)], -1)
                self._scope_of[gone[gone < len(self._scope_of)]] = -1
                for pk in removed:
                    self._file_rows.pop(pk, None)
            self._insert_codes(added)
            self._seq = seq
            if added or removed:
                for follow in self.followers:
                    follow([r.pk for r in added], removed)

    def near(
        self, codes: Iterable[int], radius: int, scope_pk: int, *, also: Sequence[npt.NDArray[np.int64]] = ()
    ) -> list[int]:
        """The rows of scope ``scope_pk`` whose pHash is within ``radius`` bits of one of ``codes``
        (and those of ``also`` in the scope), ascending (call holding ``lock``)."""
        found = [self.phash.radius(code, radius)[0] for code in set(codes)]
        return [int(p) for p in self.in_scope(np.unique(np.concatenate([*found, *also])), scope_pk)]

    def _count(self, pks: npt.NDArray[np.int64], step: int) -> None:
        """Count rows ``pks`` (known rows, distinct) in or out of their scopes' sizes."""
        scopes, counts = np.unique(self._scope_of[pks], return_counts=True)
        for scope_pk, n in zip(scopes.tolist(), counts.tolist(), strict=True):
            if scope_pk >= 0:
                self._scope_rows[scope_pk] = self._scope_rows.get(scope_pk, 0) + step * n

    def nearest_in_scope(self, code: int, k: int, scope_pk: int, radius: int, small: int) -> npt.NDArray[np.int64]:
        """The ``k`` rows of scope ``scope_pk`` whose pHash is nearest ``code`` (by distance, then
        row), however many rows other scopes hold nearer: among those within ``radius`` bits (one
        radius search), unless the scope holds at most ``small`` rows (call holding ``lock``)."""
        if self._scope_rows.get(scope_pk, 0) > small:
            return self.in_scope(self.phash.radius(code, radius)[0], scope_pk)[:k]
        want = k
        while True:
            ids, _ = self.phash.knn(code, want)
            kept = self.in_scope(ids, scope_pk)
            if len(kept) >= k or len(ids) < want:
                return kept[:k]
            want *= 8  # other scopes hold the nearest: look further (at worst, the whole index once)

    def in_scope(self, pks: npt.NDArray[np.int64], scope_pk: int) -> npt.NDArray[np.int64]:
        """Those of ``pks`` (distinct, known rows) that belong to scope ``scope_pk`` (call holding ``lock``)."""
        kept: npt.NDArray[np.int64] = pks[self._scope_of[pks] == scope_pk]
        return kept

    def scope_mask(self, pks: npt.NDArray[np.int64], scope_pk: int) -> npt.NDArray[np.bool_]:
        """For each of ``pks`` (any rows, known or not), whether it belongs to scope ``scope_pk``
        (call holding ``lock``)."""
        known = pks < len(self._scope_of)
        mask = np.zeros(len(pks), np.bool_)
        mask[known] = self._scope_of[pks[known]] == scope_pk
        return mask

    def is_in_scope(self, pk: int, scope_pk: int) -> bool:
        """Whether file ``pk`` belongs to scope ``scope_pk`` (call holding ``lock``)."""
        return pk < len(self._scope_of) and bool(self._scope_of[pk] == scope_pk)

    def kept_files(self, pks: list[int], read: Callable[[list[int]], list[StoredFile]]) -> list[StoredFile]:
        """The files ``pks``, answered from the rows kept in memory where it can and by ``read``
        (the store's ``files``) where not (call holding ``lock``)."""
        rows = self._file_rows
        for f in read([p for p in pks if p not in rows]):
            rows[f.pk] = f
        found = []
        for p in pks:
            kept = rows.get(p)
            if kept is not None:
                rows.move_to_end(p)
                found.append(kept)
        while len(rows) > _FILE_ROWS_KEPT:
            rows.popitem(last=False)
        return found

    def nbytes(self) -> int:
        """Bytes held by the in-memory structures."""
        with self.lock:
            return int(self.phash.nbytes() + self.local.nbytes() + self._scope_of.nbytes)
