"""The checks of an earlier run that a grown run keeps, row by row: a source grown by a tenth
checks its new rows in full, scores each old row against the new candidates it gained, and checks
again in full only the old rows whose answer could change otherwise.

A row's check (``index.cascade.Cascade`` as ``scale.matching`` plans it) is a function of the row's
bytes, the settings and its candidates: the hash candidates ``C`` (the rows the join retrieved and
its nearest pHashes, itself left out), then, only when the best of those is no sure duplicate
(step 5), the rows its descriptors vote for and the pool voted for again. Each candidate of ``C``
is scored on its own (``match_fingerprint``), the list is sorted by score then image id, and the
first may be settled as the same pixels (step 4). So an earlier check of the same bytes is:

* reused as it is when ``C`` is the same and either step 5 did not run or the vote sets are too;
* extended when step 5 did not run and ``C`` changed (new rows among its retrieved or nearest, an
  old row pushed out of its nearest five): the rows gained are scored and merged into the list in
  its order, the rows lost taken out, provided the first match stays first (steps 4 and 5 then
  go as before) and the list stays within the ``top`` kept, so that nothing was cut off;
* made again in full otherwise.

The answer is therefore the one a fresh run over the grown source gives. Rows are known across
runs by their content key (the first 8 bytes of the SHA-256 of their bytes, the first 16 hex digits
of their image id), since index row numbers shift as new paths sort between old ones.

Each matching task writes, beside its ``PAIRS`` file, a ``CHECKED`` file of its rows; the pipeline
hands a part's task the ``CHECKED`` file an earlier run wrote for the same fingerprint partition.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.index.results import CheckMatch
from lookalike.scale.schema import PAIRS

__all__ = [
    "CHECKED",
    "Earlier",
    "RowReuse",
    "checked_rows",
    "content_key",
    "digest_keys",
    "earlier_checks",
    "SpectraFiles",
    "signed_key",
]

U64 = npt.NDArray[np.uint64]
_PAIR_FIELDS = [f for f in PAIRS if f.name not in ("file_pk", "peer_pk")]
#: one row per checked index row
CHECKED = pa.schema(
    [
        ("key", pa.uint64()),  # its content key
        ("basis", pa.binary(16)),  # digest of the settings and its path
        ("candidates", pa.list_(pa.uint64())),  # the keys of its hash candidates C, sorted
        ("votes", pa.binary(16)),  # digest of the keys of its voted rows and revote pool
        ("voted", pa.bool_()),  # whether its check went to step 5 (asked for the votes)
        ("total", pa.int32()),  # matches its check returned, ``different`` ones included
        ("first_score", pa.float64()),  # its best match by hashes, before step 4 (null: none)
        ("first_key", pa.uint64()),
        ("pairs", pa.list_(pa.struct([pa.field("peer_key", pa.uint64()), *_PAIR_FIELDS]))),
    ]
)


def content_key(sha256: bytes) -> int:
    """A row's key in every run: the first 8 bytes of the SHA-256 of its bytes (two of ten million
    rows share one by chance about once in a million runs; a row with two candidates of one key
    is checked again rather than guessed)."""
    return int.from_bytes(sha256[:8], "big")


def digest_keys(salt: bytes, *sets: Iterable[int]) -> bytes:
    """A 16-byte digest of ``salt`` and the sets of keys ``sets`` (order within a set is no part of it)."""
    h = hashlib.blake2b(salt, digest_size=16)
    for s in sets:
        keys = np.unique(np.fromiter(s, np.uint64))
        h.update(len(keys).to_bytes(8, "big"))
        h.update(keys.astype(">u8").tobytes())
    return h.digest()


class Earlier:
    """The ``CHECKED`` rows an earlier run wrote for a partition, by key (none when ``path`` is
    None or cannot be read)."""

    def __init__(self, path: str | None) -> None:
        self.rows: dict[int, dict[str, Any]] = {}
        if path is None:
            return
        try:
            t = pq.read_table(path, schema=CHECKED)
        except (OSError, pa.ArrowInvalid):  # gone or unreadable: every row is checked
            return
        for row in t.to_pylist():
            self.rows[row["key"]] = row


@dataclass(slots=True)
class _Row:
    """What a task knows of one of its rows before checking it."""

    pk: int
    key: int
    basis: bytes
    candidates: dict[int, int]  # C: key -> pk
    peers: dict[int, int]  # C and the voted rows and pool: key -> pk
    votes: bytes
    earlier: dict[str, Any] | None


class RowReuse:
    """One matching task's rows: which to check in full and which to extend (``split``), what each
    check saw (``saw``), and the task's ``PAIRS`` and ``CHECKED`` tables (``tables``).

    ``earlier``: the ``CHECKED`` file of the same partition from an earlier run, or None; ``salt``:
    the settings' digest; ``keys``: every stored row's content key (``keys[pk - 1]``); ``top``:
    the matches a check keeps."""

    def __init__(self, earlier: str | None, salt: bytes, keys: U64, top: int) -> None:
        self._earlier = Earlier(earlier).rows
        self._salt, self._keys, self._top = salt, keys, top
        self._rows: list[_Row] = []
        self._pairs: dict[int, list[dict[str, Any]]] = {}  # position -> pairs, reused or merged
        self._extend: dict[int, set[int]] = {}  # position -> the candidates gained (pks)
        self._seen: dict[int, tuple[int, tuple[float, int] | None, bool]] = {}  # pk -> total, first, voted

    def key_of(self, pk: int) -> int:
        """Row ``pk``'s content key."""
        return int(self._keys[pk - 1])

    def split(self, pks: Sequence[int], urls: Sequence[str], hashes: Sequence[set[int]]) -> list[int]:
        """The positions of the rows ``pks`` (paths ``urls``, hash candidates ``hashes``: retrieved
        and nearest) whose vote sets ``settle`` needs: those to check in full, and those whose
        earlier check went to step 5 with the same hash candidates (reused if their votes are the
        same too). Every other row is settled by its hash candidates: reused as it was, or extended."""
        need = []
        for j, (pk, url, found) in enumerate(zip(pks, urls, hashes, strict=True)):
            key = self.key_of(pk)
            cands = {self.key_of(c): c for c in found if c != pk}
            e = self._earlier.get(key)
            basis = digest_keys(self._salt + url.encode(), [key])
            row = _Row(pk, key, basis, cands, dict(cands), b"" if e is None else e["votes"], e)
            self._rows.append(row)
            gained = self._gained(row, len(cands) == len(found - {pk}))
            if gained is None:
                need.append(j)
            elif not gained:
                self._pairs[j] = self._renumbered(row, row.earlier["pairs"] if row.earlier else [])
            else:
                self._extend[j] = gained
        return need

    def with_votes(self, position: int, voted: Sequence[int], pool: Sequence[int]) -> bool:
        """Row ``position``'s vote sets, for its ``CHECKED`` row and its peers; whether its peers'
        keys are all distinct."""
        row = self._rows[position]
        row.votes = digest_keys(self._salt, [self.key_of(c) for c in voted], [self.key_of(c) for c in pool])
        every = (set(row.candidates.values()) | set(voted) | set(pool)) - {row.pk}
        row.peers = {self.key_of(c): c for c in every}
        return len(row.peers) == len(every)

    def settle(self, votes: Mapping[int, tuple[Sequence[int], Sequence[int]]]) -> tuple[list[int], dict[int, set[int]]]:
        """(the positions of the rows to check in full, and of those to extend: each one's gained
        candidates), given the vote sets (voted, pool) of the rows ``split`` named."""
        todo = []
        for j, (voted, pool) in sorted(votes.items()):
            unique = self.with_votes(j, voted, pool)
            row, e = self._rows[j], self._rows[j].earlier
            same = e is not None and e["basis"] == row.basis and set(e["candidates"]) == set(row.candidates)
            if same and unique and e is not None and e["voted"] and e["votes"] == row.votes:
                self._pairs[j] = self._renumbered(row, e["pairs"])
            else:
                todo.append(j)
        return todo, dict(self._extend)

    def _gained(self, row: _Row, unique: bool) -> set[int] | None:
        """None when ``row`` must be checked in full, else the candidates to score and merge (none:
        the earlier pairs stand)."""
        e = row.earlier
        if e is None or e["basis"] != row.basis or not unique:
            return None
        old = set(e["candidates"])
        if old == set(row.candidates):
            return None if e["voted"] else set()  # step 5 ran: ``settle`` compares its votes
        lost = old - set(row.candidates)
        if e["voted"] or e["first_key"] is None or e["first_key"] in lost or e["total"] > self._top:
            return None
        gained = {pk for k, pk in row.candidates.items() if k not in old}
        return gained if e["total"] - len(lost) + len(gained) <= self._top else None

    def _renumbered(self, row: _Row, pairs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Earlier pairs (peers by key) as ``PAIRS`` rows of this run."""
        return [
            {"file_pk": row.pk, "peer_pk": row.peers[p["peer_key"]], **{f.name: p[f.name] for f in _PAIR_FIELDS}}
            for p in pairs
        ]

    def saw(self, pk: int, matches: list[CheckMatch], first: CheckMatch | None, voted: bool) -> None:
        """What row ``pk``'s check (or its scoring of the gained candidates) returned: its
        ``matches``, its best match by hashes before step 4 (``first``) and whether it went to
        step 5."""
        best = None if first is None else (first.score, self.key_of(first.file.pk))
        self._seen[pk] = (len(matches), best, voted)

    def tables(self, checked: pa.Table) -> tuple[pa.Table, pa.Table]:
        """(``PAIRS``, ``CHECKED``) of the task's rows in order, from ``checked``: the ``PAIRS`` of
        the rows checked or scored now (in any order)."""
        by_pk: dict[int, list[dict[str, Any]]] = {}
        for p in checked.to_pylist():
            by_pk.setdefault(p["file_pk"], []).append(p)
        out: dict[str, list[Any]] = {n: [] for n in CHECKED.names}
        every = []
        for j, row in enumerate(self._rows):
            now = by_pk.get(row.pk, [])
            if j in self._pairs:  # reused
                pairs, e = self._pairs[j], row.earlier
                assert e is not None  # a reused row has an earlier check
                total, first, voted = e["total"], (e["first_score"], e["first_key"]), e["voted"]
            elif j in self._extend:
                e = row.earlier
                assert e is not None
                pairs, total = self._merged(row, now)
                first, voted = (e["first_score"], e["first_key"]), False
            else:
                pairs = now
                total, first_seen, voted = self._seen[row.pk]
                first = first_seen or (None, None)
            every.extend(pairs)
            for name, value in (
                ("key", row.key), ("basis", row.basis), ("candidates", sorted(row.candidates)), ("votes", row.votes),
                ("voted", voted), ("total", total), ("first_score", first[0]), ("first_key", first[1]),
                ("pairs", [{"peer_key": self.key_of(p["peer_pk"]), **{f.name: p[f.name] for f in _PAIR_FIELDS}}
                           for p in pairs]),
            ):  # fmt: skip
                out[name].append(value)
        return pa.Table.from_pylist(every, schema=PAIRS), pa.table(out, schema=CHECKED)

    def _merged(self, row: _Row, scored: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], int]:
        """Row ``row``'s earlier pairs with those of its gained candidates (``scored``) merged in
        the cascade's order (score, then image id) and those of its lost candidates taken out,
        the first kept first; and its new count of matches."""
        e = row.earlier
        assert e is not None
        old = self._renumbered(row, [p for p in e["pairs"] if p["peer_key"] in row.candidates])
        lost = len(set(e["candidates"]) - set(row.candidates))
        total = e["total"] - lost + self._seen[row.pk][0]
        first, rest = old[:1], old[1:] + scored
        rest.sort(key=lambda p: (-p["score"], self.key_of(p["peer_pk"])))
        merged = first + rest
        for rank, p in enumerate(merged):
            p["rank"] = rank
        return merged, total

    def first_stays(self, pk: int, position: int) -> bool:
        """Whether the best of row ``pk``'s gained candidates (scored, ``saw``) sorts after its
        earlier first match, so that merging them is its check's answer; else it is checked in full."""
        e = self._rows[position].earlier
        best = self._seen[pk][1]
        assert e is not None
        return best is None or (best[0], -best[1]) < (e["first_score"], -e["first_key"])

    def demote(self, position: int) -> None:
        """Check row ``position`` in full after all (a gained candidate would come first)."""
        del self._extend[position]

    @property
    def counts(self) -> dict[str, int]:
        """Rows reused as they were, extended, and checked in full."""
        n = len(self._rows)
        return {
            "reused": len(self._pairs),
            "extended": len(self._extend),
            "checked": n - len(self._pairs) - len(self._extend),
        }


def earlier_checks(folder: str) -> dict[str, str]:
    """The ``reuse.CHECKED`` file of each fingerprint partition (by digest) in ``folder`` from an
    earlier run, the newest where a killed run left two."""
    found: dict[str, tuple[float, str]] = {}
    for name in os.listdir(folder):
        if name.startswith("checks-") and name.endswith(".parquet"):
            path = os.path.join(folder, name)
            d, when = name.split("-")[1], os.path.getmtime(path)
            if d not in found or when > found[d][0]:
                found[d] = (when, path)
    return {d: path for d, (_, path) in found.items()}


def signed_key(key: int) -> int:
    """A content key (u64) as the int64 a ``SPECTRA`` row holds."""
    return key - (1 << 64) if key >= 1 << 63 else key


class SpectraFiles:
    """Which of the spectrum files in ``folder`` named with ``prefix`` (the limits they were computed
    with) holds each content key: their ``file_pk`` columns, read once (``add`` those written later),
    as sorted NumPy columns (12 bytes a profile). Grouping asks for a batch's profiles at a time;
    listing and reading every file for each batch made the work grow as batches times files, the
    square of the run. Where two files hold a key, the one added last answers."""

    def __init__(self, folder: str, prefix: str) -> None:
        self._paths: list[str] = []
        self._chunks: list[tuple[npt.NDArray[np.int64], npt.NDArray[np.int32]]] = []
        self._keys = np.zeros(0, np.int64)
        self._file = np.zeros(0, np.int32)
        names = sorted(n for n in os.listdir(folder) if n.startswith(prefix) and n.endswith(".parquet"))
        self.add([os.path.join(folder, n) for n in names])

    def add(self, paths: Sequence[str]) -> None:
        """Spectrum files written since, in order."""
        for path in paths:
            keys = pq.read_table(path, columns=["file_pk"]).column("file_pk").to_numpy()
            self._chunks.append((keys.astype(np.int64), np.full(len(keys), len(self._paths), np.int32)))
            self._paths.append(path)

    def _index(self) -> None:
        """Fold the files added into the sorted columns: each key once, by the last file added."""
        if not self._chunks:
            return
        keys = np.concatenate([self._keys, *(k for k, _ in self._chunks)])
        files = np.concatenate([self._file, *(f for _, f in self._chunks)])
        self._chunks = []
        order = np.argsort(keys, kind="stable")  # equal keys stay in order added: the last is the newest
        keys, files = keys[order], files[order]
        last = np.append(keys[1:] != keys[:-1], True)
        self._keys, self._file = keys[last], files[last]

    def read(self, wanted: Collection[int]) -> dict[int, tuple[bytes | None, str]]:
        """The spectrum profile (None: unreadable) and its file of each content key of ``wanted`` the
        files hold: only those, so that a grouping batch holds its own rows' profiles, not every
        one a run computed. Reads only the files that hold one."""
        self._index()
        want = np.unique(np.fromiter(wanted, np.int64, count=len(wanted)))
        at = np.searchsorted(self._keys, want)
        held = at < len(self._keys)
        held[held] = self._keys[at[held]] == want[held]
        want, files = want[held], self._file[at[held]]
        out: dict[int, tuple[bytes | None, str]] = {}
        for f in np.unique(files).tolist():
            path = self._paths[f]
            keys = pa.array(want[files == f])
            t = pq.read_table(path, columns=["file_pk", "spectrum"])
            t = t.filter(pc.is_in(t.column("file_pk"), value_set=keys))
            for key, spectrum in zip(t.column("file_pk").to_pylist(), t.column("spectrum").to_pylist()):
                out[key] = (spectrum, path)
        return out


def checked_rows(pair_paths: Iterable[str]) -> dict[str, int]:
    """Rows of the matching tasks' pair files ``pair_paths`` whose earlier check was reused as it
    was, extended, or checked in full, summed (each file's ``rows`` metadata, ``RowReuse.counts``)."""
    out = {"reused": 0, "extended": 0, "checked": 0}
    for path in pair_paths:
        meta = pq.read_schema(path).metadata or {}
        for name, n in json.loads(meta.get(b"rows", b"{}")).items():
            out[name] = out.get(name, 0) + int(n)
    return out
