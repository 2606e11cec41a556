"""Exact search of binary codes by Hamming distance, in memory.

Method: multi-index hashing (M. Norouzi, A. Punjani, D. J. Fleet, "Fast search in Hamming
space with multi-index hashing", CVPR 2012). Every code is cut into m disjoint substrings,
three per 64-bit word (22, 21 and 21 bits). Write r = s*m + a with 0 <= a < m. If two codes
differ in at most r bits then a + 1 chosen substrings cannot all differ in more than s bits and
the others in more than s - 1, or the distance would be at least (a+1)(s+1) + (m-a-1)s = r + 1.
So a radius-r query probes, in each substring table, every key within s (or s - 1) bits of the
query's own key, gathers the rows filed under those keys and verifies their full distance with
a popcount: no false negatives, no false positives.

Memory layout of a frozen part holding n codes in m tables (numpy arrays only, no dicts):

* ``codes``  uint64 (n, bits/64), big-endian words (bit 0 is the top bit of word 0), with the
  rows grouped by the first substring: that table needs no permutation, and its candidates are
  contiguous runs of ``codes``, the cheapest to gather;
* ``ids``    int64 (n,) in row order, and ``sorter`` uint32 (n,) listing the rows by id, so an id
  is found by binary search;
* ``perm``   uint32 ((m-1)*n,): each other table's rows, sorted by that table's key;
* ``offs``   uint32 (sum of 2**p_t, plus 1), CSR bucket bounds of all tables end to end: bucket k
  of table t spans positions [offs[base_t + k], offs[base_t + k + 1]); positions below (m-1)*n
  index ``perm``, the rest are rows (plus (m-1)*n) of the first table.

A table keys on only the first p_t bits of its substring, p_t as large as lets all offset
arrays fit in 3.5 bytes a code (18 bits at a million codes; 21 and 22 at ten million). A
substring within s bits of the query's is also within s bits on its prefix, so the search stays
exact. A 64-bit code thus costs 8 + 8 + 4 + 8 + <=3.5 < 32 bytes.

The kernels (a scan, and a probe of the tables) are in ``hamming_kernels``.

Updates: new codes go to a small delta buffer that every query scans. A full delta becomes a
new frozen part, and parts are merged log-structured style (a part absorbs the next one once
that is a quarter of its size), so bulk loading costs O(n log n) overall and few parts exist.
Removed or replaced rows become sorted tombstones, filtered out of the hits; a part is rebuilt
once 1/128 of it is tombstones.
"""

from __future__ import annotations

import contextlib
import math
import os
import zipfile
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError, StoreError
from lookalike.index.search.hamming_kernels import _plan, _scan, _search
from lookalike.index.search.hamming_shared import shared_arrays

__all__ = ["Code", "HammingIndex"]

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
U32 = npt.NDArray[np.uint32]
#: one query code: an int, a numpy uint64 (64-bit codes), or bits/8 big-endian bytes
Code = int | np.uint64 | npt.NDArray[np.uint8] | npt.NDArray[np.uint64]
#: a query as the kernels take it: a uint64 for 64-bit codes, else its words (bits/64,)
Query = np.uint64 | U64

_FORMAT = "lookalike.HammingIndex/1"
_WIDTHS = (22, 21, 21)  # substring widths in each 64-bit word (Norouzi et al.: about log2 n)
_TABLES_FROM = 1 << 14  # below this many codes a scan beats any table
_DELTA_MAX = 1 << 13  # scanning this many codes costs a fraction of one probe set
_OFFSET_BYTES = 3.5  # per code, for all offset arrays: with 8 + 8 + 4 + 8, tombstones and the
# delta the total stays under 32 bytes a code from about a million codes
_SCAN_FRACTION = 1 / 16  # verifying a candidate costs about as much as scanning 16 codes
# Shared. Writable, though never written (it is empty), because numba types read-only arrays
# apart and would compile the kernels once more for them.
_NONE = np.empty(0, np.int64)


def _distances(codes: U64, q: Query) -> I64:
    """Hamming distance of each row of ``codes`` (k, w) to the query ``q``."""
    x: npt.NDArray[np.uint8] = np.bitwise_count(codes ^ q)
    return (x[:, 0] if x.shape[1] == 1 else x.sum(axis=1, dtype=np.uint16)).astype(np.int64)


def _unique(values: I64) -> I64:
    """Sorted distinct values (np.unique is many times slower than a sort in numpy 2.4)."""
    values = np.sort(values)
    return values[_firsts(values)]


def _firsts(values: I64) -> npt.NDArray[np.bool_]:
    """Where each run of equal values starts."""
    first = np.ones(len(values), np.bool_)
    np.not_equal(values[1:], values[:-1], out=first[1:])
    return first


def _cat(arrays: list[I64]) -> I64:
    """np.concatenate, without its copy for a single array or its error for none."""
    return arrays[0] if len(arrays) == 1 else np.concatenate(arrays) if arrays else _NONE


def _in_sorted(values: I64, sorted_set: I64) -> npt.NDArray[np.bool_]:
    """Membership of each value in a sorted array (np.isin sorts both sides; this sorts neither)."""
    if not len(sorted_set):
        return np.zeros(len(values), np.bool_)
    pos = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return np.asarray(sorted_set[pos] == values)


@dataclass(frozen=True, eq=False)
class _Part:
    """An immutable, searchable set of codes; see the module docstring for the layout."""

    ids: I64
    codes: U64
    sorter: U32
    perm: U32
    offs: U32
    key_bits: tuple[int, ...]  # p_t of each table, the first substring's last; empty: always scan
    keys: I64  # (m, 3): per table the word, shift and mask giving its key
    words: U64  # ``codes`` as the kernels take them (a view): 1-d for 64-bit codes

    @staticmethod
    def build(ids: I64, codes: U64) -> _Part:
        """Freeze unique ``ids`` with their ``codes`` (n, w) into tables chosen for n."""
        n, w = codes.shape
        layout: list[tuple[int, int, int]] = []  # (key bits, word, shift)
        if n >= _TABLES_FROM:
            widths = [width for _ in range(w) for width in _WIDTHS]
            # Key prefixes as wide as the offsets budget allows: equal ones first, then one bit
            # more for each table in turn, the first substring's (cheapest to verify) first.
            room = _OFFSET_BYTES * n / 4 / len(widths)
            keys = [min(width, max(1, int(math.log2(room)))) for width in widths]
            for t in range(len(keys)):
                if keys[t] < widths[t] and 4 * (sum(1 << p for p in keys) + (1 << keys[t])) <= _OFFSET_BYTES * n:
                    keys[t] += 1
            layout = [(p, t // 3, 64 - (0, 22, 43)[t % 3] - p) for t, p in enumerate(keys)]
            # Widest keys first (fewer candidates per probe); the first substring goes last.
            layout = sorted(layout[1:], key=lambda t: -t[0]) + layout[:1]
        m = len(layout)
        if m * n >= 1 << 32:
            raise StoreError(f"{n} codes are too many for one index part (uint32 positions)")

        def key(t: int) -> I64:
            p, word, shift = layout[t]
            return ((codes[:, word] >> np.uint64(shift)) & np.uint64((1 << p) - 1)).astype(np.int64)

        if m:  # group the rows by the first substring's key: that table is then implicit
            order = np.argsort(key(m - 1))
            ids, codes = ids[order], codes[order]
        perm = np.empty(max(m - 1, 0) * n, np.uint32)
        offs = np.zeros(sum(1 << p for p, _, _ in layout) + 1, np.uint32)
        base = 0
        for t, (p, _, _) in enumerate(layout):
            k = key(t)
            if t < m - 1:
                perm[t * n : (t + 1) * n] = np.argsort(k)
            offs[base + 1 : base + (1 << p) + 1] = t * n + np.cumsum(np.bincount(k, minlength=1 << p))
            base += 1 << p
        key_words = np.array([(word, shift, (1 << p) - 1) for p, word, shift in layout], np.int64).reshape(m, 3)
        sorter = np.argsort(ids).astype(np.uint32)
        codes = np.ascontiguousarray(codes)
        words = codes.reshape(-1) if w == 1 else codes
        return _Part(
            np.ascontiguousarray(ids), codes, sorter, perm, offs, tuple(p for p, _, _ in layout), key_words, words
        )

    def find(self, ids: I64) -> I64:
        """The row of each id, or -1: a binary search over ``sorter``, vectorised across ids."""
        n = len(self.ids)
        if len(ids) * n.bit_length() > n // 8:  # many ids: materialising the sorted ids is cheaper
            pos = np.searchsorted(self.ids[self.sorter], ids)
        else:
            pos = np.zeros(len(ids), np.int64)  # ends as the count of stored ids below each id
            step = 1 << (n.bit_length() - 1)
            while step:
                probe = np.minimum(pos + step, n)
                pos = np.where(self.ids[self.sorter[probe - 1]] < ids, probe, pos)
                step >>= 1
        rows = self.sorter[np.minimum(pos, n - 1)].astype(np.int64)
        return np.where(self.ids[rows] == ids, rows, -1)

    def search(self, q: Query, r: int, dead: I64) -> tuple[I64, I64]:
        """(ids, distances) of the live codes within r of the query ``q``, by distance then id."""
        plan = _plan(self.key_bits, r) if self.key_bits else None
        if plan is None:  # no tables, or too many probes
            return _scan(self.words, self.ids, dead, q, r)
        most = _SCAN_FRACTION * len(self.ids)
        return _search(self.words, self.ids, dead, self.perm, self.offs, self.keys, plan.tables, plan.mask, q, r, most)


def _as_ids(ids: object) -> I64:
    if not isinstance(ids, np.ndarray) or ids.ndim != 1 or ids.dtype.kind not in "iu":
        raise ConfigError("ids must be a one-dimensional int64 array")
    if not np.can_cast(ids.dtype, np.int64):
        raise ConfigError(f"ids of dtype {ids.dtype} do not fit in int64")
    return ids.astype(np.int64)


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 0:
        raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
    return int(value)


class HammingIndex:
    """Exact radius and k-nearest search of binary codes by Hamming distance.

    Codes are ``bits`` wide (a positive multiple of 64: 64 for dHash/pHash, 256 for PDQ or ORB).
    A batch of codes is a uint8 array (n, bits/8) of big-endian bytes, as ``np.packbits`` gives,
    or a uint64 array (n, bits/64) of big-endian words; 64-bit codes may also be uint64 (n,).
    """

    def __init__(self, bits: int = 64) -> None:
        """Make an empty index of ``bits``-bit codes; raises ConfigError unless a multiple of 64."""
        if isinstance(bits, bool) or not isinstance(bits, int) or bits <= 0 or bits % 64:
            raise ConfigError(f"bits must be a positive multiple of 64, got {bits!r}")
        self._bits, self._words = bits, bits // 64
        self._parts: list[_Part] = []
        self._dead: list[I64] = []  # per part: sorted rows removed or replaced since it froze
        self._delta_ids, self._delta_codes = _NONE, np.empty((0, self._words), np.uint64)
        self._shared = 0  # leading parts mapped from shared files (see ``share``): never rebuilt

    @property
    def bits(self) -> int:
        """The width of the codes, in bits."""
        return self._bits

    def __len__(self) -> int:
        return len(self._delta_ids) + sum(len(p.ids) - len(d) for p, d in zip(self._parts, self._dead))

    def nbytes(self) -> int:
        """Bytes held in numpy arrays: ids, codes, tables, tombstones and the delta buffer."""
        held = [self._delta_ids, self._delta_codes, *self._dead]
        return sum(a.nbytes for a in held) + sum(
            a.nbytes for p in self._parts for a in (p.ids, p.codes, p.sorter, p.perm, p.offs)
        )

    def _as_codes(self, codes: object) -> U64:
        """Codes in any accepted form as uint64 words (n, bits/64); raises ConfigError."""
        w, dtype, shape = self._words, getattr(codes, "dtype", None), getattr(codes, "shape", None)
        if isinstance(codes, np.ndarray) and dtype == np.uint8 and shape == (len(codes), 8 * w):
            return np.ascontiguousarray(codes).view(">u8").astype(np.uint64)
        if (
            isinstance(codes, np.ndarray)
            and dtype == np.uint64
            and (shape == (len(codes), w) or shape == (len(codes),) and w == 1)
        ):
            return np.array(codes, np.uint64).reshape(-1, w)  # a copy: the caller may reuse its array
        raise ConfigError(
            f"codes must be uint8 of shape (n, {8 * w}) or uint64 of shape (n, {w})"
            f"{' or (n,)' if w == 1 else ''}, got {type(codes).__name__} {dtype} {shape}"
        )

    def _as_query(self, code: Code) -> Query:
        """One query code as the kernels take it (see ``Query``); raises ConfigError."""
        if isinstance(code, np.uint64) and self._words == 1:  # the usual query, kept lean
            return code
        if isinstance(code, int) and not isinstance(code, bool):
            if not 0 <= code < 1 << self._bits:
                raise ConfigError(f"code {code} does not fit in {self._bits} bits")
            if self._words == 1:
                return np.uint64(code)
            words: U64 = np.frombuffer(code.to_bytes(self._bits // 8, "big"), ">u8").astype(np.uint64)
        elif isinstance(code, np.uint64) or isinstance(code, np.ndarray) and code.ndim == 1:
            words = self._as_codes(np.array([code]) if isinstance(code, np.uint64) else code[None])[0]
        else:
            raise ConfigError(f"a query code must be an int, np.uint64 or 1-d array, not {type(code).__name__}")
        return words[0] if self._words == 1 else words

    def add(self, ids: npt.NDArray[np.int64], codes: npt.NDArray[np.uint8] | U64) -> None:
        """File ``codes[i]`` under ``ids[i]``; an id already present gets the new code.

        Within one call the last occurrence of an id wins. Raises ConfigError on a wrong dtype or
        shape, or when ids and codes differ in length.
        """
        ids, words = _as_ids(ids), self._as_codes(codes)
        if len(ids) != len(words):
            raise ConfigError(f"{len(ids)} ids but {len(words)} codes")
        if not len(ids):
            return
        order = np.argsort(ids, kind="stable")
        last = order[np.append(ids[order][1:] != ids[order][:-1], True)]  # the last of each id's run
        ids, words = ids[last], words[last]
        self._forget(ids)
        self._delta_ids = np.concatenate([self._delta_ids, ids])
        self._delta_codes = np.concatenate([self._delta_codes, words])
        if len(self._delta_ids) >= _DELTA_MAX:  # freeze the delta into a part of its own
            self._parts.append(_Part.build(self._delta_ids, self._delta_codes))
            self._dead.append(_NONE)
            self._delta_ids, self._delta_codes = _NONE, np.empty((0, self._words), np.uint64)
            self._compact()

    def remove(self, ids: npt.NDArray[np.int64]) -> None:
        """Remove these ids; ids not in the index are ignored. Raises ConfigError on bad ids."""
        self._forget(_unique(_as_ids(ids)))
        self._compact()

    def _forget(self, ids: I64) -> None:
        """Tombstone the rows of these (sorted, unique) ids and drop them from the delta."""
        for i, part in enumerate(self._parts):
            rows = part.find(ids)
            if (rows >= 0).any():
                self._dead[i] = _unique(np.concatenate([self._dead[i], rows[rows >= 0]]))
        keep = ~_in_sorted(self._delta_ids, ids)
        self._delta_ids, self._delta_codes = self._delta_ids[keep], self._delta_codes[keep]

    def share(self, directory: str | os.PathLike[str]) -> None:
        """Hold the codes added so far as one part memory-mapped from files under ``directory``
        (see ``hamming_shared``), which every process that holds the same codes maps too: one
        copy a host instead of one a process. Codes added or removed later are kept in this
        process as before (a delta, newer parts, tombstones) and every query sees both.
        Raises StoreError when the folder cannot be written or read."""
        ids, codes = self._live(self._parts, self._dead, delta=True)
        if len(ids) < _TABLES_FROM:  # too few to be worth a file: a scan of the delta is quicker
            return

        def build() -> dict[str, npt.NDArray[np.generic]]:
            part = _Part.build(ids, codes)
            names = ("ids", "codes", "sorter", "perm", "offs", "keys")
            return {name: getattr(part, name) for name in names} | {"key_bits": np.array(part.key_bits, np.int64)}

        a = shared_arrays(directory, ids, codes, build)
        codes = a["codes"].astype(np.uint64, copy=False)
        part = _Part(
            a["ids"].astype(np.int64, copy=False), codes, a["sorter"].astype(np.uint32, copy=False),
            a["perm"].astype(np.uint32, copy=False), a["offs"].astype(np.uint32, copy=False),
            tuple(int(p) for p in a["key_bits"]), a["keys"].astype(np.int64, copy=False),
            codes.reshape(-1) if self._words == 1 else codes,
        )  # fmt: skip
        self._parts, self._dead, self._shared = [part], [_NONE], 1
        self._delta_ids, self._delta_codes = _NONE, np.empty((0, self._words), np.uint64)

    def _compact(self) -> None:
        """Merge the newest part into its elder once it is a quarter of that size (so merges cost
        O(n log n) in all); rebuild a part once 1/128 of it is tombstones, whose rows still hold
        about 36 bytes each: 0.3 bytes a live code at most."""
        while True:
            live = [len(p.ids) - len(d) for p, d in zip(self._parts, self._dead)]
            rotten = [
                i for i, (p, d) in enumerate(zip(self._parts, self._dead))
                if 128 * len(d) > len(p.ids) and i >= self._shared
            ]  # fmt: skip
            if len(live) - 2 >= self._shared and 4 * live[-1] >= live[-2]:
                merge = slice(len(live) - 2, None)
            elif rotten:
                merge = slice(rotten[0], rotten[0] + 1)
            else:
                return
            ids, codes = self._live(self._parts[merge], self._dead[merge], delta=False)
            built = [_Part.build(ids, codes)] if len(ids) else []
            self._parts[merge], self._dead[merge] = built, [_NONE for _ in built]

    def _live(self, parts: list[_Part], dead: list[I64], delta: bool) -> tuple[I64, U64]:
        """The ids and codes of these parts (less tombstones), and of the delta if asked."""
        keep = [np.delete(np.arange(len(p.ids)), d) for p, d in zip(parts, dead)]
        ids = [p.ids[k] for p, k in zip(parts, keep)] + [self._delta_ids] * delta
        codes = [p.codes[k] for p, k in zip(parts, keep)] + [self._delta_codes] * delta
        return _cat(ids), np.concatenate(codes) if codes else np.empty((0, self._words), np.uint64)

    def radius(self, code: Code, r: int) -> tuple[I64, I64]:
        """Ids and distances of every code within Hamming distance ``r`` of ``code`` (inclusive).

        Sorted by distance, then id. Raises ConfigError on a malformed code or a negative r.
        """
        return self._radius(self._as_query(code), _check_int(r, "r"))

    def _radius(self, q: Query, r: int) -> tuple[I64, I64]:
        r = min(r, self._bits)  # no code is farther; keeps r within int64 for the kernels
        if len(self._parts) == 1 and not len(self._delta_ids):  # the usual case, kept lean
            return self._parts[0].search(q, r, self._dead[0])
        found = [part.search(q, r, dead) for part, dead in zip(self._parts, self._dead)]
        if len(self._delta_ids):
            delta = self._delta_codes.reshape(-1) if self._words == 1 else self._delta_codes
            found.append(_scan(delta, self._delta_ids, _NONE, q, r))
        found = [hits for hits in found if len(hits[0])]
        if len(found) <= 1:  # the kernels sort their hits
            return found[0] if found else (np.empty(0, np.int64), np.empty(0, np.int64))
        ids, d = np.concatenate([hits[0] for hits in found]), np.concatenate([hits[1] for hits in found])
        order = np.lexsort((ids, d))  # an id lives in one part or the delta only
        return ids[order], d[order]

    def knn(self, code: Code, k: int) -> tuple[I64, I64]:
        """Ids and distances of the ``k`` codes nearest ``code``, by distance then id (exact).

        Fewer than k when the index holds fewer. Raises ConfigError on a malformed code or k < 0.
        """
        q, k = self._as_query(code), min(_check_int(k, "k"), len(self))
        big, r = max(self._parts, key=lambda p: len(p.ids), default=None), 0
        # Widen the radius while the biggest part can still be probed cheaply (about 1/16 of it
        # verified): every code within r is found, so once k are, the first k are the nearest.
        while k and big is not None and big.key_bits and r < self._bits:
            plan = _plan(big.key_bits, r)
            if plan is None or len(plan.mask) > _SCAN_FRACTION * (1 << big.key_bits[-1]):
                break
            ids, d = self._radius(q, r)
            if len(ids) >= k:
                return ids[:k], d[:k]
            r += 1 + r // 3
        # Otherwise scan: keep, from each part and the delta, the codes up to its k-th distance.
        cand_ids, cand_d = [self._delta_ids], [_distances(self._delta_codes, q)]
        for part, dead in zip(self._parts, self._dead):
            d = _distances(part.codes, q)
            d[dead] = self._bits + 1  # marks the tombstones: no live code is that far
            kth = np.partition(d, min(k, len(d)) - 1)[min(k, len(d)) - 1]
            sel = np.flatnonzero(d <= min(kth, self._bits))
            cand_ids.append(part.ids[sel])
            cand_d.append(d[sel])
        ids, d = np.concatenate(cand_ids), np.concatenate(cand_d)
        order = np.lexsort((ids, d))[:k]
        return ids[order], d[order]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the live ids and codes to one .npz file (atomically); raises StoreError."""
        ids, codes = self._live(self._parts, self._dead, delta=True)
        tmp = f"{os.fspath(path)}.tmp"
        try:
            with open(tmp, "wb") as f:  # a file object: np.savez would append ".npz" to a name
                np.savez(f, format=np.array(_FORMAT), bits=np.int64(self._bits), ids=ids, codes=codes)
            os.replace(tmp, path)
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise StoreError(f"cannot save Hamming index to {os.fspath(path)}: {e}") from e

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> HammingIndex:
        """Read an index written by ``save``; raises StoreError if the file is missing or corrupt."""
        where = os.fspath(path)
        try:
            with open(path, "rb") as f:  # our own handle: np.load leaks its own on some errors
                z = np.load(f, allow_pickle=False)
                if not isinstance(z, np.lib.npyio.NpzFile) or str(z["format"]) != _FORMAT:
                    raise StoreError(f"{where} is not a lookalike Hamming index")
                # Reading each member to its end makes zipfile check its CRC-32.
                bits, ids, codes = int(z["bits"]), z["ids"], z["codes"]
        except StoreError:
            raise
        except (OSError, ValueError, TypeError, KeyError, EOFError, zipfile.BadZipFile) as e:
            msg = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise StoreError(f"cannot read Hamming index {where}: {msg}") from e
        if bits <= 0 or bits % 64 or ids.dtype != np.int64 or ids.ndim != 1 or codes.dtype != np.uint64:
            raise StoreError(f"Hamming index {where} has a bad header or dtypes")
        if codes.shape != (len(ids), bits // 64) or len(_unique(ids)) != len(ids):
            raise StoreError(f"Hamming index {where} has mismatched or duplicate entries")
        index = cls(bits)
        if len(ids):
            index._parts, index._dead = [_Part.build(ids, codes)], [_NONE]
        return index
