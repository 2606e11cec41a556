"""``DescriptorIndex``: finds the stored pictures that share local descriptors with a query.

Global hashes cannot reach a copy whose frame changed a lot (a tight crop, a
picture shown inside a screenshot): its pHash is as far from the original's
as a stranger's. Local descriptors still match. Each stored file keeps a
bounded number of its strongest ORB descriptors (256-bit codes); each of the
query's descriptors looks up its nearest stored descriptor, and, when that is
within ``MATCH_BITS``, votes for the file it belongs to. The files with most
votes go on to geometric verification. (The bag-of-binary-words retrieval of
Gálvez-López and Tardós, "Bags of Binary Words for Fast Place Recognition in
Image Sequences", IEEE T-RO 2012, does the same with a vocabulary tree; nearest
neighbour voting needs no trained vocabulary.)

Nearest neighbours are found by locality-sensitive hashing on bit samples
(Indyk and Motwani, 1998): ``TABLES`` tables, each keyed by one 16-bit slice of
the code. Two descriptors of the same spot (about 15–40 bits apart) share a
slice in at least one table with high probability, strangers (about 100 bits
apart) rarely do, and every candidate is measured on all 256 bits. The tables
are sorted arrays (a permutation and bucket offsets per table), so memory is
the codes (32 bytes), the owner (4) and 4 bytes per table for each descriptor.

Additions go to a small unsorted delta that is scanned in full and merged
into the sorted part when it grows; removals mark the owner dead.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError
from lookalike.fingerprints.kernels import jit, popcount

__all__ = ["DESCRIPTOR_BYTES", "MATCH_BITS", "TABLES", "DescriptorIndex"]

#: bytes of one ORB descriptor
DESCRIPTOR_BYTES = 32
#: nearest stored descriptor at most this many bits away counts as a vote. Descriptors of one spot
#: in an edited copy lie 15-40 bits apart; of unrelated spots about 100.
MATCH_BITS = 40
#: LSH tables, each keyed by one 16-bit slice of the descriptor
TABLES = 6
_KEY_BITS = 16
_MERGE_AT = 65_536  # delta descriptors that trigger a merge into the sorted part

U8 = npt.NDArray[np.uint8]
U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


@jit
def _dist(a: U64, i: int, q: U64, j: int) -> np.int64:
    d = np.int64(0)
    for w in range(4):
        d += popcount(a[i, w] ^ q[j, w])
    return d


@jit
def _keys(words: U64, table: int) -> I64:
    """The 16-bit slice ``table`` of every code (slices taken from the low end of each word)."""
    word, shift = table // 4, np.uint64(16 * (table % 4))
    out = np.empty(words.shape[0], np.int64)
    for i in range(words.shape[0]):
        out[i] = np.int64((words[i, word] >> shift) & np.uint64(0xFFFF))
    return out


@jit
def _nearest(
    codes: U64, owners: I32, perms: I32, offs: I64, delta: U64, delta_owners: I32, alive: npt.NDArray[np.bool_],
    q: U64, tables: int,
) -> tuple[I32, I64]:  # fmt: skip
    """For each query code: the owner of its nearest live stored code among the LSH candidates
    (and the whole delta), and the distance; owner -1 when none was found."""
    m = q.shape[0]
    best_owner = np.full(m, -1, np.int32)
    best_dist = np.full(m, 257, np.int64)
    for j in range(m):
        bd, bo = np.int64(257), np.int32(-1)
        for t in range(tables):
            word, shift = t // 4, np.uint64(16 * (t % 4))
            key = np.int64((q[j, word] >> shift) & np.uint64(0xFFFF))
            lo, hi = offs[t, key], offs[t, key + 1]
            for k in range(lo, hi):
                row = perms[t, k]
                o = owners[row]
                if not alive[o]:
                    continue
                d = _dist(codes, row, q, j)
                if d < bd:
                    bd, bo = d, o
        for row in range(delta.shape[0]):
            o = delta_owners[row]
            if not alive[o]:
                continue
            d = _dist(delta, row, q, j)
            if d < bd:
                bd, bo = d, o
        best_owner[j], best_dist[j] = bo, bd
    return best_owner, best_dist


def _check(descriptors: object) -> None:
    if (
        not isinstance(descriptors, np.ndarray)
        or descriptors.dtype != np.uint8
        or descriptors.ndim != 2
        or descriptors.shape[1] != DESCRIPTOR_BYTES
    ):
        shape = getattr(descriptors, "shape", None)
        raise ConfigError(
            f"descriptors must be a uint8 array of shape (k, {DESCRIPTOR_BYTES}), got "
            f"{type(descriptors).__name__} {getattr(descriptors, 'dtype', '')} {shape}"
        )


def _as_words(codes: U8) -> U64:
    return np.ascontiguousarray(codes, dtype=np.uint8).reshape(-1, DESCRIPTOR_BYTES).view(np.uint64).copy()


class DescriptorIndex:
    """Votes of query descriptors for the stored files (owners, non-negative ints) they match.

    ``add(owner, descriptors)`` files a (k, 32) uint8 array of ORB descriptors under ``owner``;
    ``remove(owners)`` forgets them; ``vote(descriptors)`` ranks owners by matching descriptors.
    """

    def __init__(self, *, tables: int = TABLES) -> None:
        if not 1 <= tables <= 16:
            raise ConfigError(f"tables must be in 1..16, got {tables}")
        self._tables = tables
        self._codes = np.empty((0, 4), np.uint64)
        self._owners = np.empty(0, np.int32)
        self._perms = np.empty((tables, 0), np.int32)
        self._offs = np.zeros((tables, (1 << _KEY_BITS) + 1), np.int64)
        self._delta: list[U64] = []
        self._delta_owners: list[I32] = []
        self._delta_n = 0
        self._alive = np.zeros(1024, np.bool_)  # owners with codes to find
        self._known = np.zeros(1024, np.bool_)  # owners ever added
        self._count = 0

    def __len__(self) -> int:
        """Descriptors held (including those of removed owners not yet compacted away)."""
        return len(self._owners) + self._delta_n

    def nbytes(self) -> int:
        """Bytes held in arrays."""
        delta = sum(a.nbytes for a in self._delta) + sum(a.nbytes for a in self._delta_owners)
        return int(
            self._codes.nbytes + self._owners.nbytes + self._perms.nbytes + self._offs.nbytes
            + self._alive.nbytes + self._known.nbytes + delta
        )  # fmt: skip

    def _grow_alive(self, top: int) -> None:
        if top >= len(self._alive):
            size = max(top + 1, 2 * len(self._alive))
            self._alive = np.concatenate([self._alive, np.zeros(size - len(self._alive), np.bool_)])
            self._known = np.concatenate([self._known, np.zeros(size - len(self._known), np.bool_)])

    def add(self, owner: int, descriptors: U8) -> None:
        """File descriptors under ``owner`` (an int >= 0 below 2**31). Raises ConfigError on bad shapes."""
        if isinstance(owner, bool) or not isinstance(owner, int | np.integer) or not 0 <= owner < 2**31 - 1:
            raise ConfigError(f"owner must be an int in [0, 2**31 - 1), got {owner!r}")
        _check(descriptors)
        self._grow_alive(owner)
        if self._known[owner] and not self._alive[owner]:
            self._merge()  # drops the codes it had before it was removed
        self._alive[owner] = self._known[owner] = True
        if not len(descriptors):
            return
        self._delta.append(_as_words(descriptors))
        self._delta_owners.append(np.full(len(descriptors), owner, np.int32))
        self._delta_n += len(descriptors)
        if self._delta_n >= _MERGE_AT:
            self._merge()

    def remove(self, owners: npt.ArrayLike) -> None:
        """Forget every descriptor of these owners."""
        gone = np.asarray(owners, dtype=np.int64)
        gone = gone[(gone >= 0) & (gone < len(self._alive))]
        self._alive[gone] = False

    def _merge(self) -> None:
        """Move the delta into the sorted part, dropping removed owners' codes."""
        codes = np.concatenate([self._codes, *self._delta])
        owners = np.concatenate([self._owners, *self._delta_owners])
        keep = self._alive[owners]
        codes, owners = np.ascontiguousarray(codes[keep]), owners[keep]
        perms = np.empty((self._tables, len(codes)), np.int32)
        offs = np.empty((self._tables, (1 << _KEY_BITS) + 1), np.int64)
        for t in range(self._tables):
            keys = _keys(codes, t)
            perm = np.argsort(keys, kind="stable").astype(np.int32)
            perms[t] = perm
            offs[t, 0] = 0
            offs[t, 1:] = np.cumsum(np.bincount(keys, minlength=1 << _KEY_BITS))
        self._codes, self._owners, self._perms, self._offs = codes, owners, perms, offs
        self._delta, self._delta_owners, self._delta_n = [], [], 0

    def nearest(self, descriptors: U8) -> tuple[I32, I64]:
        """For each query descriptor, the owner of its nearest stored descriptor found (-1: none)
        and the distance in bits. Raises ConfigError unless ``descriptors`` is uint8 (k, 32)."""
        _check(descriptors)
        if self._delta_n > _MERGE_AT // 8 and self._delta_n > len(self._owners) // 8:
            self._merge()  # a long delta scan would cost more than sorting it in
        q = _as_words(descriptors)
        delta = np.concatenate(self._delta) if self._delta else np.empty((0, 4), np.uint64)
        delta_owners = np.concatenate(self._delta_owners) if self._delta_owners else np.empty(0, np.int32)
        if len(self._delta) > 1:
            self._delta, self._delta_owners = [delta], [delta_owners]
        return _nearest(
            self._codes, self._owners, self._perms, self._offs, delta, delta_owners, self._alive, q, self._tables
        )

    def vote(self, descriptors: U8, *, max_bits: int = MATCH_BITS, top: int = 5) -> list[tuple[int, int]]:
        """The ``top`` owners with most query descriptors whose nearest stored descriptor is theirs
        (within ``max_bits``), as (owner, votes), most votes first."""
        _check(descriptors)
        if not len(descriptors) or not len(self):
            return []
        owners, dist = self.nearest(descriptors)
        hits = owners[(owners >= 0) & (dist <= max_bits)]
        if not len(hits):
            return []
        found, counts = np.unique(hits, return_counts=True)
        order = np.lexsort((found, -counts))[:top]
        return [(int(found[i]), int(counts[i])) for i in order]
