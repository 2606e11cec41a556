"""The crop tier's answers are a function of the live codes: not of the order they were added in, of
merges, removals and compaction, nor of the number of shards (``ShardedDescriptorIndex``).

The reference is the candidate rule by brute force: a stored code is a candidate of a query code when
one of its ``TABLES`` 16-bit slices lies within ``PROBE_BITS`` bits of the query's; the nearest
candidate wins, ties to the lower owner. Planted queries are near copies that keep a slice (found
however far they lie), copies with every slice touched (found or not by the rule alone), copies
with every slice's top bit flipped (within the probe radius), copies with every slice's two top
bits flipped (beyond it, which a small part's shorter bucket keys once let through), exact ties
between two owners, and strangers.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest

from lookalike.errors import ConfigError
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index.cascade import revoted, second_count
from lookalike.index.search import descriptors
from lookalike.index.search.descriptors import (
    BUCKET_CODES,
    DESCRIPTOR_BYTES,
    MATCH_BITS,
    MAX_KEY_BITS,
    PROBE_BITS,
    TABLES,
    DescriptorIndex,
    DescriptorVoter,
    key_bits,
)
from tests.index import sharded
from tests.index.sharded import ShardedDescriptorIndex
from tests.index.test_descriptors import distances, flipped, merge_at, random_codes

U8 = npt.NDArray[np.uint8]
Stored = dict[int, U8]

OWNERS, PER_OWNER = 48, 64  # 3072 codes: past the real delta size, so that parts of several sizes form


def top_bits_flipped(codes: U8, bits: int = PROBE_BITS + 1) -> U8:
    """Each code with the ``bits`` top bits of each of its ``TABLES`` slices flipped: with more than
    ``PROBE_BITS``, no slice within the probe radius, ``TABLES * bits`` bits away."""
    out = codes.copy()
    out[:, 1 : 2 * TABLES : 2] ^= np.uint8((0xFF00 >> bits) & 0xFF)
    return out


def planted(seed: int) -> tuple[Stored, U8]:
    """``OWNERS`` owners of random codes (a few codes stored under two owners) and 400 query codes."""
    rng = np.random.default_rng(seed)
    stored = {int(o): random_codes(PER_OWNER, rng) for o in rng.permutation(3 * OWNERS)[:OWNERS]}
    owners = sorted(stored)
    for a, b in zip(owners[::2], owners[1::2], strict=True):  # exact ties: the same code under a and b
        stored[b][:3] = stored[a][:3]
    pool = np.concatenate([stored[o] for o in owners])
    pick = lambda n: pool[rng.integers(0, len(pool), n)]  # noqa: E731
    query = np.concatenate(
        [
            flipped(pick(120), int(rng.integers(0, 60)), rng, keep_slice=int(rng.integers(0, TABLES))),
            flipped(pick(120), 30, rng),
            top_bits_flipped(pick(60)),
            top_bits_flipped(pick(60), bits=PROBE_BITS),
            flipped(np.concatenate([stored[a][:3] for a in owners[::2]]), 8, rng)[:60],
            random_codes(40, rng),
        ]
    )
    return stored, query


def reference_nearest(
    stored: Stored, query: U8, bits: int = 16
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """The candidate rule by brute force, with ``bits``-bit keys: (owner or -1, distance) of each
    query code. A code is a candidate when, in some table t, its 16-bit slice t lies within
    ``PROBE_BITS`` of the query's and the top ``bits - 16`` bits of its slice t + 6 equal the query's."""
    owners = sorted(stored)
    codes = np.concatenate([stored[o] for o in owners])
    owner_of = np.concatenate([np.full(len(stored[o]), o) for o in owners])
    slices = lambda c: c[:, : 2 * TABLES].view(np.uint16)  # noqa: E731
    ext = lambda c: c[:, 2 * TABLES : 4 * TABLES].view(np.uint16) >> (32 - bits)  # noqa: E731
    apart = np.bitwise_count(slices(query)[:, None, :] ^ slices(codes)[None, :, :])
    same_ext = ext(query)[:, None, :] == ext(codes)[None, :, :]
    candidate = ((apart <= PROBE_BITS) & same_ext).any(axis=2)
    d = np.where(candidate, distances(query, codes), 10_000)
    rank = d * 10_000 + owner_of[None, :]  # nearest, then the lower owner
    best = rank.argmin(axis=1)
    found = candidate[np.arange(len(query)), best]
    return np.where(found, owner_of[best], -1), np.where(found, d[np.arange(len(query)), best], 257)


def reference_votes(stored: Stored, query: U8) -> list[tuple[int, int]]:
    owner, dist = reference_nearest(stored, query)
    counts = Counter(int(o) for o in owner[(owner >= 0) & (dist <= MATCH_BITS)])
    return sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))


# ---- ways to fill an index with the same live codes --------------------------------------------------


def one_at_a_time(stored: Stored, ix: DescriptorIndex | ShardedDescriptorIndex) -> None:
    """A file at a time, with the real delta size: sorted parts of several sizes and an unsorted delta."""
    for owner, codes in stored.items():
        ix.add(owner, codes)


def in_bulk(stored: Stored, ix: DescriptorIndex | ShardedDescriptorIndex) -> None:
    """Every code into the delta, then sorted into one part."""
    with merge_at(1 << 40):
        one_at_a_time(stored, ix)
    ix.flush()


def all_in_the_delta(stored: Stored, ix: DescriptorIndex | ShardedDescriptorIndex) -> None:
    with merge_at(1 << 40):
        one_at_a_time(stored, ix)


def after_removal_and_compaction(stored: Stored, ix: DescriptorIndex | ShardedDescriptorIndex) -> None:
    """With owners holding copies of the stored codes (a bit away: nearer to many queries) added among
    the others, then removed; re-adding a removed owner, here with no codes, compacts its index."""
    rng = np.random.default_rng(99)
    doomed = {o + 1000: flipped(codes, 1, rng) for o, codes in stored.items()}
    for (owner, codes), (gone, copies) in zip(stored.items(), doomed.items(), strict=True):
        ix.add(gone, copies)
        ix.add(owner, codes)
    ix.remove(list(doomed))
    for gone in doomed:
        ix.add(gone, np.zeros((0, DESCRIPTOR_BYTES), np.uint8))


FILLS: dict[str, Callable[[Stored, DescriptorIndex | ShardedDescriptorIndex], None]] = {
    "one at a time": one_at_a_time,
    "in bulk": in_bulk,
    "all in the delta": all_in_the_delta,
    "after removal and compaction": after_removal_and_compaction,
}


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("fill", list(FILLS))
@pytest.mark.parametrize("shards", [None, 1, 2, 3, 4], ids=["unsharded", "1", "2", "3", "4"])
def test_nearest_owners_and_votes_follow_the_candidate_rule_however_stored(
    seed: int, fill: str, shards: int | None
) -> None:
    stored, query = planted(seed)
    ix: DescriptorVoter = DescriptorIndex() if shards is None else ShardedDescriptorIndex(shards)
    FILLS[fill](stored, ix)  # type: ignore[arg-type]
    owner, dist = reference_nearest(stored, query)

    found, found_dist = ix.nearest(query)

    assert np.array_equal(found, owner) and np.array_equal(found_dist, dist)
    with merge_at(1 << 40):
        assert ix.vote(query, top=10_000) == reference_votes(stored, query)
        mirror = query[::-1, ::-1].copy()
        assert ix.vote_each([query, mirror], top=7) == _Exact(stored).vote_each([query, mirror], top=7)


@pytest.mark.parametrize("bits", [17, 28])
@pytest.mark.parametrize("fill", list(FILLS))
@pytest.mark.parametrize("shards", [None, 3], ids=["unsharded", "3"])
def test_longer_keys_follow_the_candidate_rule_however_stored(
    bits: int, fill: str, shards: int | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the key's length as a larger index would have it (``key_bits``), for one index and for shards alike
    for module in (descriptors, sharded):
        monkeypatch.setattr(module, "key_bits", lambda codes: bits)
    stored, query = planted(1)
    ix: DescriptorVoter = DescriptorIndex() if shards is None else ShardedDescriptorIndex(shards)
    FILLS[fill](stored, ix)  # type: ignore[arg-type]
    owner, dist = reference_nearest(stored, query, bits)
    assert (owner >= 0).sum() < (reference_nearest(stored, query)[0] >= 0).sum()  # longer keys: fewer candidates

    found, found_dist = ix.nearest(query)

    assert np.array_equal(found, owner) and np.array_equal(found_dist, dist)


def test_keys_grow_by_a_bit_each_time_the_stored_codes_double() -> None:
    full = BUCKET_CODES << 16  # a 16-bit key's buckets hold BUCKET_CODES codes on average
    assert [key_bits(n) for n in (0, 1, full)] == [16, 16, 16]
    assert [key_bits(n) for n in (full + 1, 2 * full, 2 * full + 1, 64 * full)] == [17, 17, 18, 22]
    assert key_bits(1 << 60) == MAX_KEY_BITS


class _Exact(DescriptorVoter):
    """The reference as a voter, so that ``vote_each`` is compared on the same footing."""

    def __init__(self, stored: Stored) -> None:
        self._stored = stored

    def __len__(self) -> int:
        return sum(len(c) for c in self._stored.values())

    def nearest(self, descriptors: U8) -> tuple[npt.NDArray[np.int32], npt.NDArray[np.int64]]:
        owner, dist = reference_nearest(self._stored, descriptors)
        return owner.astype(np.int32), dist


def test_the_planted_queries_exercise_the_rule() -> None:
    """Guards the test above against planting nothing: ties, misses and far finds all occur."""
    stored, query = planted(1)
    owner, dist = reference_nearest(stored, query)
    near = distances(query, np.concatenate(list(stored.values()))).min(axis=1)

    # near, but no slice within the probe radius: missed (or only a far stranger found instead)
    assert (((owner == -1) | (dist > MATCH_BITS)) & (near <= MATCH_BITS)).sum() >= 60
    assert ((owner >= 0) & (dist > MATCH_BITS)).sum() >= 10  # found however far, then not a vote
    assert len(reference_votes(stored, query)) >= OWNERS // 2


def test_a_code_with_no_slice_within_the_probe_radius_is_found_by_no_index_however_small() -> None:
    """Twelve bits away, but with every slice's two top bits changed: a one-file index finds it no
    more than a big one would; with one top bit changed per slice, every index finds it."""
    rng = np.random.default_rng(7)
    codes = random_codes(PER_OWNER, rng)
    for merged in (False, True):
        ix = DescriptorIndex()
        with merge_at(1 if merged else 1 << 40):
            ix.add(3, codes)

        assert ix.vote(top_bits_flipped(codes)) == []
        assert ix.vote(top_bits_flipped(codes, bits=PROBE_BITS)) == [(3, PER_OWNER)]
        assert ix.vote(flipped(codes, 6, rng, keep_slice=2)) == [(3, PER_OWNER)]


def test_shards_hold_what_one_index_holds() -> None:
    stored, query = planted(4)
    one, four = DescriptorIndex(), ShardedDescriptorIndex(4)
    one_at_a_time(stored, one)
    one_at_a_time(stored, four)

    assert len(four) == len(one) == OWNERS * PER_OWNER
    assert four.nbytes() >= len(four) * (32 + 4)
    four.remove(sorted(stored)[:10])
    assert {o for o, _ in four.vote(query, top=10_000)}.isdisjoint(sorted(stored)[:10])


@pytest.mark.parametrize("shards", [0, -1, True, 2.0])
def test_a_bad_number_of_shards_raises_config_error(shards: int) -> None:
    with pytest.raises(ConfigError):
        ShardedDescriptorIndex(shards)


def test_a_bad_owner_raises_config_error_in_a_sharded_index() -> None:
    ix = ShardedDescriptorIndex(3)
    for owner in (-1, 2**31 - 1, True, 1.0):
        with pytest.raises(ConfigError):
            ix.add(owner, random_codes(2, np.random.default_rng(0)))  # type: ignore[arg-type]
    assert len(ix) == 0


# ---- the second count over the most voted files (``cascade.second_count``) -------------------------


def _as_local(codes: U8) -> bytes:
    """Stored local features holding ``codes`` as their strongest descriptors."""
    points = np.zeros((len(codes), 2), np.float32)
    return LocalFeatures(points=points, descriptors=codes, aspect=1.0).to_bytes()


def test_the_second_count_finds_pairs_the_slices_miss_and_is_a_function_of_the_codes() -> None:
    """An original whose codes lie a few bits from the query's, with every slice touched, gets no
    vote from the index but every vote from the second count, which is what ``second_count`` then
    verifies; the count does not depend on the order the files are given in, and equal codes
    count for the lower owner."""
    rng = np.random.default_rng(11)
    original = random_codes(PER_OWNER, rng)
    query = top_bits_flipped(original)  # every slice touched: beyond the exact slices
    strangers = {o: random_codes(PER_OWNER, rng) for o in (2, 5, 9)}
    ix = DescriptorIndex()
    for owner, codes in {**strangers, 7: original}.items():
        ix.add(owner, codes)
    assert ix.vote(query, top=None) == []

    local = {o: _as_local(c) for o, c in {**strangers, 7: original, 8: original}.items()}
    codes = {o: LocalFeatures.from_bytes(b).descriptors for o, b in local.items()}
    counted = revoted([query], codes)
    assert counted == [(7, PER_OWNER)]  # 8 holds the same codes: ties go to the lower owner
    assert revoted([query], dict(reversed(list(codes.items())))) == counted
    assert second_count([2, 5], [2, 5, 7, 8, 9], [query], local) == [7]
    assert second_count([2, 7], [2, 5, 7, 8, 9], [query], local) == []  # 8 ties 7 and loses
    assert second_count([2, 5], [2, 5, 9], [query], local) == []  # only what the pool holds
