"""The checks of an earlier run that a grown run may keep, row by row: a source grown by a tenth
checks its new rows and the old rows whose candidates changed, and reuses every other row's pairs.

A row's check (``index.cascade.Cascade`` as ``scale.matching`` plans it) is a function of the row's
own bytes, the settings, and its candidate sets: the rows retrieved by the join, its nearest
pHashes, the rows its descriptors vote for and the pool voted for again. New rows can change an
old row's candidates in ways a rule of thumb would miss (a new row among its five nearest, or
taking votes from an old one so that another rises into the first eight), so the test is exact:
each checked row's ``signature`` digests those four sets, by the rows' content keys (the first 8
bytes of the SHA-256 of their bytes, the same in every run, where index row numbers shift as
new paths sort between old ones), with the settings and the row's path. A row whose signature is
the one an earlier check of the same bytes wrote gets that check's pairs back, its peers renumbered
from their keys (each peer is among the row's candidates, whose keys are known); every other row is
checked. The answer is therefore the one a fresh run over the grown source gives.

Each matching task writes, beside its ``PAIRS`` file, a ``CHECKED`` file of its rows: key,
signature and pairs (peers by key). The pipeline hands a part's task the ``CHECKED`` file the
earlier run wrote for the same fingerprint partition (``earlier``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from lookalike.scale.schema import PAIRS

__all__ = ["CHECKED", "Earlier", "RowReuse", "candidate_keys", "checked_table", "content_key", "signature"]

_PAIR_FIELDS = [f for f in PAIRS if f.name not in ("file_pk", "peer_pk")]
#: one row per checked index row: its content key, its signature, and its pairs (peers by key)
CHECKED = pa.schema(
    [
        ("key", pa.uint64()),
        ("signature", pa.binary(16)),
        ("pairs", pa.list_(pa.struct([pa.field("peer_key", pa.uint64()), *_PAIR_FIELDS]))),
    ]
)


def content_key(sha256: bytes) -> int:
    """A row's key in every run: the first 8 bytes of the SHA-256 of its bytes (a pair of the
    ten million rows of a large run shares one by chance about once in a million runs, and
    ``Earlier.pairs`` then checks the row again rather than guess)."""
    return int.from_bytes(sha256[:8], "big")


def signature(salt: bytes, url: str, key: int, sets: Sequence[Iterable[int]]) -> bytes:
    """The digest of what a row's check depends on: ``salt`` (the settings), the row's ``url``
    and ``key``, and its candidate sets (``sets``, each of content keys; order within a set is
    no part of it: the cascade's answer does not depend on it)."""
    h = hashlib.blake2b(salt, digest_size=16)
    h.update(url.encode())
    h.update(key.to_bytes(8, "big"))
    for s in sets:
        keys = np.unique(np.fromiter(s, np.uint64))
        h.update(len(keys).to_bytes(8, "big"))
        h.update(keys.astype(">u8").tobytes())
    return h.digest()


class Earlier:
    """The ``CHECKED`` rows an earlier run wrote for a partition (none when ``path`` is None)."""

    def __init__(self, path: str | None) -> None:
        self._rows: dict[int, tuple[bytes, int]] = {}
        self._pairs: pa.ListArray | None = None
        if path is None:
            return
        try:
            t = pq.read_table(path, schema=CHECKED)
        except (OSError, pa.ArrowInvalid):  # gone or unreadable: nothing to reuse, every row is checked
            return
        self._pairs = t.column("pairs").combine_chunks()
        for i, (k, s) in enumerate(zip(t.column("key").to_pylist(), t.column("signature").to_pylist())):
            self._rows[k] = (s, i)

    def pairs(self, pk: int, key: int, sig: bytes, peers: dict[int, int] | None) -> list[dict[str, Any]] | None:
        """Row ``pk``'s pairs (``PAIRS`` rows) as the earlier check of its bytes found them, when
        that check had signature ``sig``; ``peers``: its candidates' pk by key (None when two of
        them share a key). None when the row must be checked."""
        found = self._rows.get(key)
        if found is None or found[0] != sig or peers is None or self._pairs is None:
            return None
        out = []
        for p in self._pairs[found[1]].as_py():
            peer = peers.get(p.pop("peer_key"))
            if peer is None:  # not among its candidates: cannot be (the signature holds them)
                return None
            out.append({"file_pk": pk, "peer_pk": peer, **p})
        return out


def candidate_keys(pks: Iterable[int], keys: npt.NDArray[np.uint64]) -> dict[int, int] | None:
    """Each candidate's pk by its key (``keys[pk - 1]``), or None when two share a key."""
    out = {int(keys[pk - 1]): pk for pk in pks}
    return out if len(out) == len(set(pks)) else None


def checked_table(keys: list[int], sigs: list[bytes], pairs: list[list[dict[str, Any]]], key_of: Any) -> pa.Table:
    """The ``CHECKED`` table of rows ``keys`` (their ``sigs`` and ``PAIRS`` rows ``pairs``), each
    pair's peer by its key (``key_of(pk)``)."""
    nested = [
        [{"peer_key": key_of(p["peer_pk"]), **{f.name: p[f.name] for f in _PAIR_FIELDS}} for p in row] for row in pairs
    ]
    return pa.table({"key": keys, "signature": sigs, "pairs": nested}, schema=CHECKED)


class RowReuse:
    """One matching task's rows: which to check (``split``), and its ``PAIRS`` and ``CHECKED``
    tables from the checks made and the ones reused (``tables``). ``earlier``: the ``CHECKED``
    file of the same partition from an earlier run, or None; ``salt``: the settings' digest;
    ``keys``: every stored row's content key (``keys[pk - 1]``)."""

    def __init__(self, earlier: str | None, salt: bytes, keys: npt.NDArray[np.uint64]) -> None:
        self._earlier = Earlier(earlier)
        self._salt, self._keys = salt, keys
        self._sigs: list[bytes] = []
        self._reused: dict[int, list[dict[str, Any]]] = {}

    def key_of(self, pk: int) -> int:
        """Row ``pk``'s content key."""
        return int(self._keys[pk - 1])

    def split(self, pks: Sequence[int], urls: Sequence[str], sets: Sequence[Sequence[Iterable[int]]]) -> list[int]:
        """The positions of the rows ``pks`` (paths ``urls``, candidate sets ``sets``, each row's
        retrieved, nearest, voted and pool) that must be checked; the others' pairs are reused."""
        todo = []
        for j, (pk, url, row_sets) in enumerate(zip(pks, urls, sets, strict=True)):
            by_key = [[self.key_of(c) for c in s] for s in row_sets]
            sig = signature(self._salt, url, self.key_of(pk), by_key)
            self._sigs.append(sig)
            peers = candidate_keys({c for s in row_sets for c in s}, self._keys)
            found = self._earlier.pairs(pk, self.key_of(pk), sig, peers)
            if found is None:
                todo.append(j)
            else:
                self._reused[j] = found
        return todo

    @property
    def reused(self) -> int:
        """Rows whose pairs are reused."""
        return len(self._reused)

    def tables(self, pks: Sequence[int], checked: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(``PAIRS``, ``CHECKED``) of rows ``pks`` in order: the ``checked`` pairs of the rows
        checked now (``PAIRS``, in order), the reused pairs of the others."""
        by_pk: dict[int, list[dict[str, Any]]] = {}
        for p in checked.to_pylist():
            by_pk.setdefault(p["file_pk"], []).append(p)
        rows = [self._reused.get(j, by_pk.get(pk, [])) for j, pk in enumerate(pks)]
        pairs = pa.Table.from_pylist([p for row in rows for p in row], schema=PAIRS)
        return pairs, checked_table([self.key_of(pk) for pk in pks], self._sigs, rows, self.key_of)
