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
the code, probed at the query's slice and at every slice within ``PROBE_BITS``
of it (multi-probe LSH: Lv, Josephson, Wang, Charikar and Li, "Multi-Probe
LSH", VLDB 2007). Two descriptors of the same spot (about 15–40 bits apart)
share a slice, or nearly, in at least one table with high probability: at 30
bits apart, a slice is equal with probability 0.14 and within one bit with
0.42, so six tables find the pair 58 % of the time with exact slices and 96 %
with one-bit probes. Strangers (about 100 bits apart) rarely qualify, and every
candidate is measured on all 256 bits.

The answer is a function of the live codes alone, not of how they are stored:
a stored code is a candidate of a query code exactly when, in one of the
``TABLES`` tables, its key equals the query's key (the query's 16-bit slice
XOR a flip within ``PROBE_BITS``), and among the candidates the nearest wins,
ties going to the lower owner. A table's key is its 16-bit slice, lengthened
by the top bits of another slice (``wide_key``) once the live codes pass
``BUCKET_CODES`` a 16-bit bucket: one bit more each time they double
(``key_bits``), so that a bucket keeps about ``BUCKET_CODES`` codes and a
query's work stays bounded however many pictures are stored (the sampled
bits of Indyk and Motwani's LSH, with k growing as log n). Longer keys find a
pair far apart less often (30 bits apart: 0.14 at 16 bits, 0.08 at 20), the
price of bounded work. So the order of additions, merges, removals and a split
into shards never change a vote. This is the crop tier's one candidate rule:
``_nearest_in_part`` and ``_nearest_in_delta`` apply it, every index (in a
service or on one machine) is a ``DescriptorIndex``, and a scale-out run's
vote table (``scale.votes``) files every code by the same keys. The tables
are sorted arrays (a permutation and bucket offsets per table), so memory is
the codes (32 bytes), the owner (4) and 4 to 4.5 bytes per table for each
descriptor: 60-63 bytes with ``TABLES`` = 6, about 4 KB per stored file.

Additions go to a small unsorted delta, each of whose codes is compared with
the query slice by slice, then into sorted parts merged as they grow; removals
mark the owner dead, and merges drop dead owners' codes.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError
from lookalike.fingerprints.kernels import jit, popcount

__all__ = ["DESCRIPTOR_BYTES", "MATCH_BITS", "PROBE_BITS", "TABLES", "DescriptorIndex", "DescriptorVoter"]

#: bytes of one ORB descriptor
DESCRIPTOR_BYTES = 32
#: nearest stored descriptor at most this many bits away counts as a vote. Descriptors of one spot
#: in an edited copy lie 15-40 bits apart; of unrelated spots about 100.
MATCH_BITS = 40
#: LSH tables, each keyed by one 16-bit slice of the descriptor (lengthened by ``key_bits``)
TABLES = 6
_KEY_BITS = 16
_SLICE = np.uint64((1 << _KEY_BITS) - 1)
#: a table's key grows past 16 bits once the index holds more than this many codes a 16-bit key:
#: ``key_bits`` lengthens it by one bit each time the codes double, so that a key's bucket holds
#: about this many codes however many are stored, and a query's work stays bounded
BUCKET_CODES = 16
#: longest key: a table's 16-bit slice and the whole of its extension slice
MAX_KEY_BITS = 32
_DELTA_CODES = 1024  # unsorted descriptors (scanned in full by every query) before they are sorted
#: a stored code is a candidate when one of its slices lies within this many bits of the query's.
#: One bit finds a descriptor pair 30 bits apart 96 % of the time instead of 58 %, but probes 17
#: buckets a table instead of 1: a picture check cost 133 ms of CPU instead of 40 at 10,000 stored
#: pictures (``benchmarks/service_load.py``), past the service's 40 checks a second. Kept exact.
PROBE_BITS = 0


def key_bits(codes: int) -> int:
    """The length of every table's key when ``codes`` descriptors are stored: 16 bits (the
    table's slice) until a 16-bit key's bucket would hold more than ``BUCKET_CODES`` codes on
    average, then one more bit (from the table's extension slice) each time the codes double, at
    most ``MAX_KEY_BITS``. Both engines (``DescriptorIndex`` and the scale-out vote table,
    ``scale.votes``) key by it, counting the same codes."""
    buckets = max(1, -(-int(codes) // BUCKET_CODES))  # buckets needed for BUCKET_CODES codes each
    return min(MAX_KEY_BITS, max(_KEY_BITS, (buckets - 1).bit_length()))  # bits to number that many


def _flips(bits: int) -> npt.NDArray[np.uint64]:
    """Every 16-bit mask of at most ``bits`` set bits, fewest first: the probes of one slice."""
    masks = [m for m in range(1 << _KEY_BITS) if m.bit_count() <= bits]
    return np.array(sorted(masks, key=lambda m: (m.bit_count(), m)), dtype=np.uint64)


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
def wide_key(words: U64, i: int, table: int) -> np.uint64:
    """Code ``i``'s 32-bit key of ``table``: its 16-bit slice ``table`` (high half) and slice
    ``table + TABLES`` (its extension, low half). A ``bits``-bit key is the high ``bits`` of it."""
    ext = (table + 6) % 16  # slices 6-11 extend the six tables' slices 0-5
    hi = (words[i, table // 4] >> np.uint64(16 * (table % 4))) & _SLICE
    lo = (words[i, ext // 4] >> np.uint64(16 * (ext % 4))) & _SLICE
    return np.uint64((hi << np.uint64(16)) | lo)


@jit
def _sort_keys(words: U64, table: int, mask: np.uint64) -> I64:
    """Each code's bucket (the low bits ``mask`` of its slice ``table``) above its 32-bit key: the
    order of a part's rows, so that a bucket's codes with one ``bits``-bit key are contiguous."""
    out = np.empty(words.shape[0], np.int64)
    for i in range(words.shape[0]):
        w = wide_key(words, i, table)
        out[i] = np.int64((((w >> np.uint64(16)) & mask) << np.uint64(32)) | w)
    return out


@jit
def _closer(d: np.int64, o: np.int32, bd: np.int64, bo: np.int32) -> bool:
    """Whether a code of owner ``o`` at ``d`` bits beats the best so far: nearer, or as near and a lower owner."""
    return bool(d < bd or (d == bd and o < bo))


@jit
def _first_from(codes: U64, perm: I32, table: int, a: int, e: int, key: np.uint64) -> int:
    """The first position in ``perm[a:e]`` (rows sorted by ``wide_key``) whose key is not below ``key``."""
    while a < e:
        mid = (a + e) // 2
        if wide_key(codes, perm[mid], table) < key:
            a = mid + 1
        else:
            e = mid
    return a


@jit
def _nearest_in_part(
    codes: U64, owners: I32, perms: I32, offs: I32, mask: np.uint64, alive: npt.NDArray[np.bool_], q: U64,
    tables: int, probes: U64, bits: int, best_owner: I32, best_dist: I64,
) -> None:  # fmt: skip
    """Lower ``best_dist``/``best_owner`` of each query code with its nearest live candidate in the
    part: a code whose ``bits``-bit key of some table is the query's with its slice XOR one of
    ``probes`` (the flips within the probe radius). A bucket (the slice's low ``mask`` bits) holds
    candidates and codes that only share those low bits, sorted by their 32-bit key, so the
    candidates are found by bisection, and what is found never depends on the part's size."""
    drop = np.uint64(32 - bits)
    for j in range(q.shape[0]):
        bd, bo = best_dist[j], best_owner[j]
        for t in range(tables):
            qw, shift = wide_key(q, j, t), np.uint64(16 * (t % 4))
            for flip in probes:
                slice_ = (qw >> np.uint64(16)) ^ flip
                lo_key = (((slice_ << np.uint64(16)) | (qw & _SLICE)) >> drop) << drop
                hi_key = lo_key + (np.uint64(1) << drop)
                key = np.int64(slice_ & mask)
                a = offs[t, key]
                if bits > _KEY_BITS:  # the first of the bucket's rows with the query's key
                    a = _first_from(codes, perms[t], t, a, offs[t, key + 1], lo_key)
                for k in range(a, offs[t, key + 1]):
                    row = perms[t, k]
                    w = wide_key(codes, row, t) if bits > _KEY_BITS else lo_key
                    if w >= hi_key:
                        break
                    o = owners[row]
                    # 16-bit keys: the bucket scanned in full, as short buckets hold other slices too
                    if alive[o] and (bits > _KEY_BITS or (codes[row, t // 4] >> shift) & _SLICE == slice_):
                        d = _dist(codes, row, q, j)
                        if _closer(d, o, bd, bo):
                            bd, bo = d, o
        best_owner[j], best_dist[j] = bo, bd


@jit
def _nearest_in_delta(
    codes: U64, owners: I32, alive: npt.NDArray[np.bool_], q: U64, tables: int, probe_bits: int, bits: int,
    best_owner: I32, best_dist: I64,
) -> None:  # fmt: skip
    """``_nearest_in_part`` for the unsorted delta: every code is looked at, and is a candidate when
    for one of its ``tables`` its slice lies within ``probe_bits`` of the query's and the rest of
    its ``bits``-bit key equals the query's. The codes' keys are computed once, not once a query
    code, and tested a table at a time over all codes (a loop without branches, which LLVM turns
    into SIMD); the nearest is the same whatever order the candidates are measured in."""
    drop = np.uint64(32 - bits)
    rows = codes.shape[0]
    keys = np.empty((tables, rows), np.uint64)
    for t in range(tables):
        for row in range(rows):
            keys[t, row] = wide_key(codes, row, t)
    live = np.empty(rows, np.bool_)
    for row in range(rows):
        live[row] = alive[owners[row]]
    hit = np.empty(rows, np.bool_)
    for j in range(q.shape[0]):
        hit[:] = False
        for t in range(tables):
            qk, kt = wide_key(q, j, t), keys[t]
            for row in range(rows):
                x = kt[row] ^ qk
                hit[row] |= (popcount(x >> np.uint64(16)) <= probe_bits) & (((x & _SLICE) >> drop) == 0)
        bd, bo = best_dist[j], best_owner[j]
        for row in range(rows):
            if hit[row] and live[row]:
                d, o = _dist(codes, row, q, j), owners[row]
                if _closer(d, o, bd, bo):
                    bd, bo = d, o
        best_owner[j], best_dist[j] = bo, bd


class _Part:
    """Sorted codes: for each table, the rows ordered by their key, and each key's first row.

    Buckets are the slices' low ``bits`` bits, fewer for small parts (about 8 codes a bucket), up
    to all 16: the bucket offsets then cost at most half a byte per code and table. A short bucket
    key only sizes the buckets: within one, rows are sorted by their 32-bit ``wide_key``, and the
    search skips the codes whose key differs (``_nearest_in_part``)."""

    __slots__ = ("codes", "mask", "offs", "owners", "perms")

    def __init__(self, codes: U64, owners: I32, tables: int) -> None:
        self.codes, self.owners = codes, owners
        bits = min(_KEY_BITS, max(4, int(len(codes)).bit_length() - 3))
        self.mask = np.uint64((1 << bits) - 1)
        self.perms = np.empty((tables, len(codes)), np.int32)
        self.offs = np.empty((tables, (1 << bits) + 1), np.int32)
        for t in range(tables):
            order = _sort_keys(codes, t, self.mask)
            self.perms[t] = np.argsort(order)  # any order among equal keys: ties go to the lower owner
            self.offs[t, 0] = 0
            np.cumsum(np.bincount(order >> 32, minlength=1 << bits), out=self.offs[t, 1:])

    def __len__(self) -> int:
        return len(self.owners)

    def nbytes(self) -> int:
        return int(self.codes.nbytes + self.owners.nbytes + self.perms.nbytes + self.offs.nbytes)


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


class DescriptorVoter(ABC):
    """Votes derived from ``nearest``, the same for ``DescriptorIndex`` and its sharded form."""

    @abstractmethod
    def __len__(self) -> int:
        """Descriptors held."""

    @abstractmethod
    def nearest(self, descriptors: U8) -> tuple[I32, I64]:
        """For each query descriptor, the owner of its nearest stored candidate (-1: none) and the
        distance in bits; ties go to the lower owner. Raises ConfigError unless ``descriptors`` is
        uint8 (k, 32)."""

    def vote(self, descriptors: U8, *, max_bits: int = MATCH_BITS, top: int | None = 5) -> list[tuple[int, int]]:
        """The ``top`` owners (all with None) with most query descriptors whose nearest stored descriptor is theirs
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

    def vote_each(
        self, sets: Sequence[U8], *, max_bits: int = MATCH_BITS, top: int | None = 5
    ) -> list[tuple[int, int]]:
        """``vote`` for each set of descriptors (a query and its mirror image, say) on its own: each
        owner keeps its best set's votes, so that one orientation's chance matches never add to
        another's. The ``top`` owners (all with None), most votes first."""
        best: dict[int, int] = {}
        for descriptors in sets:
            for owner, votes in self.vote(descriptors, max_bits=max_bits, top=None):
                best[owner] = max(votes, best.get(owner, 0))
        return sorted(best.items(), key=lambda ov: (-ov[1], ov[0]))[:top]


class DescriptorIndex(DescriptorVoter):
    """Votes of query descriptors for the stored files (owners, non-negative ints) they match.

    ``add(owner, descriptors)`` files a (k, 32) uint8 array of ORB descriptors under ``owner``;
    ``remove(owners)`` forgets them; ``vote(descriptors)`` ranks owners by matching descriptors.

    Sorted parts are kept in decreasing size, each at least twice the next (like the levels of a
    log-structured merge tree): a new part is made from the delta once it holds ``_DELTA_CODES``,
    and merged with its neighbours while it is not smaller than half of them, so that adding n
    codes costs O(n log n) and a query looks at O(log n) parts.
    """

    def __init__(self, *, tables: int = TABLES, probe_bits: int = PROBE_BITS) -> None:
        if not 1 <= tables <= 16:
            raise ConfigError(f"tables must be in 1..16, got {tables}")
        if not 0 <= probe_bits <= 2:
            raise ConfigError(f"probe_bits must be in 0..2, got {probe_bits}")
        self._tables = tables
        self._probe_bits = probe_bits
        self._probes = _flips(probe_bits)
        self._parts: list[_Part] = []
        self._delta: list[U64] = []
        self._delta_owners: list[I32] = []
        self._delta_n = 0
        self._alive = np.zeros(1024, np.bool_)  # owners with codes to find
        self._known = np.zeros(1024, np.bool_)  # owners ever added
        self._count = np.zeros(1024, np.int64)  # each live owner's codes
        self._live_codes = 0

    def __len__(self) -> int:
        """Descriptors held (including those of removed owners not yet compacted away)."""
        return sum(len(p) for p in self._parts) + self._delta_n

    def nbytes(self) -> int:
        """Bytes held in arrays."""
        delta = sum(a.nbytes for a in self._delta) + sum(a.nbytes for a in self._delta_owners)
        return int(sum(p.nbytes() for p in self._parts) + self._alive.nbytes + self._known.nbytes + delta)

    def _grow_alive(self, top: int) -> None:
        if top >= len(self._alive):
            size = max(top + 1, 2 * len(self._alive))
            self._alive = np.concatenate([self._alive, np.zeros(size - len(self._alive), np.bool_)])
            self._known = np.concatenate([self._known, np.zeros(size - len(self._known), np.bool_)])
            self._count = np.concatenate([self._count, np.zeros(size - len(self._count), np.int64)])

    def add(self, owner: int, descriptors: U8) -> None:
        """File descriptors under ``owner`` (an int >= 0 below 2**31). Raises ConfigError on bad shapes."""
        if isinstance(owner, bool) or not isinstance(owner, int | np.integer) or not 0 <= owner < 2**31 - 1:
            raise ConfigError(f"owner must be an int in [0, 2**31 - 1), got {owner!r}")
        _check(descriptors)
        self._grow_alive(owner)
        if self._known[owner] and not self._alive[owner]:
            self._compact()  # drops the codes it had before it was removed
        self._alive[owner] = self._known[owner] = True
        if not len(descriptors):
            return
        self._count[owner] += len(descriptors)
        self._live_codes += len(descriptors)
        self._delta.append(_as_words(descriptors))
        self._delta_owners.append(np.full(len(descriptors), owner, np.int32))
        self._delta_n += len(descriptors)
        if self._delta_n >= _DELTA_CODES:
            self._flush()

    def remove(self, owners: npt.ArrayLike) -> None:
        """Forget every descriptor of these owners."""
        gone = np.asarray(owners, dtype=np.int64)
        gone = np.unique(gone[(gone >= 0) & (gone < len(self._alive))])
        gone = gone[self._alive[gone]]
        self._live_codes -= int(self._count[gone].sum())
        self._count[gone] = 0
        self._alive[gone] = False

    def live_codes(self) -> int:
        """Descriptors of the owners not removed: what ``key_bits`` counts."""
        return self._live_codes

    def _live(self, codes: list[U64], owners: list[I32]) -> tuple[U64, I32]:
        all_owners = np.concatenate(owners) if owners else np.empty(0, np.int32)
        all_codes = np.concatenate(codes) if codes else np.empty((0, 4), np.uint64)
        keep = self._alive[all_owners]
        return np.ascontiguousarray(all_codes[keep]), all_owners[keep]

    def flush(self) -> None:
        """Sort what was added into the parts now (after a bulk load), so that queries need not
        scan it in full."""
        self._flush()

    def _flush(self) -> None:
        """Sort the delta into a part, then merge parts while the newest is not much smaller."""
        if not self._delta_n:
            return
        codes, owners = self._live(self._delta, self._delta_owners)
        self._delta, self._delta_owners, self._delta_n = [], [], 0
        self._parts.append(_Part(codes, owners, self._tables))
        while len(self._parts) >= 2 and 2 * len(self._parts[-1]) >= len(self._parts[-2]):
            b, a = self._parts.pop(), self._parts.pop()
            codes, owners = self._live([a.codes, b.codes], [a.owners, b.owners])
            self._parts.append(_Part(codes, owners, self._tables))

    def _compact(self) -> None:
        """Everything into one part, without removed owners' codes."""
        codes, owners = self._live(
            [p.codes for p in self._parts] + self._delta, [p.owners for p in self._parts] + self._delta_owners
        )
        self._delta, self._delta_owners, self._delta_n = [], [], 0
        self._parts = [_Part(codes, owners, self._tables)] if len(codes) else []

    def nearest(self, descriptors: U8, *, bits: int | None = None) -> tuple[I32, I64]:
        """For each query descriptor, the owner of its nearest stored candidate (-1: none) and the
        distance in bits; ties go to the lower owner. Candidates share a ``bits``-bit key in some
        table (default ``key_bits`` of the live codes; a shard of a larger index is given the
        whole index's). Raises ConfigError unless ``descriptors`` is uint8 (k, 32) and ``bits`` in
        16..32."""
        _check(descriptors)
        bits = key_bits(self._live_codes) if bits is None else bits
        if not _KEY_BITS <= bits <= MAX_KEY_BITS:
            raise ConfigError(f"bits must be in {_KEY_BITS}..{MAX_KEY_BITS}, got {bits}")
        q = _as_words(descriptors)
        best_owner = np.full(len(q), -1, np.int32)
        best_dist = np.full(len(q), 257, np.int64)
        for p in self._parts:
            _nearest_in_part(
                p.codes, p.owners, p.perms, p.offs, p.mask, self._alive, q, self._tables, self._probes, bits,
                best_owner, best_dist,
            )  # fmt: skip
        if self._delta_n:
            if len(self._delta) > 1:
                self._delta, self._delta_owners = [np.concatenate(self._delta)], [np.concatenate(self._delta_owners)]
            _nearest_in_delta(
                self._delta[0], self._delta_owners[0], self._alive, q, self._tables, self._probe_bits, bits,
                best_owner, best_dist,
            )  # fmt: skip
        return best_owner, best_dist
