"""DescriptorIndex: ORB descriptors vote for the owners (stored files) whose descriptors they nearly copy.

The reference answer is a brute-force scan. Near copies here have at most ``TABLES - 1`` flipped bits
(or keep one slice untouched), so that at least one of the index's disjoint 16-bit LSH slices equals
the original's and the index must find them, from the delta as from a sorted part; random 256-bit
codes lie about 128 bits apart, far beyond ``MATCH_BITS``. That answers do not depend on how the
codes are stored (nor on shards) is tested against the candidate rule itself in
``test_descriptor_shards.py``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lookalike.decode import decode_image
from lookalike.errors import ConfigError
from lookalike.fingerprints.local import local_features
from lookalike.index.search import descriptors
from lookalike.index.search.descriptors import DESCRIPTOR_BYTES, MATCH_BITS, TABLES, DescriptorIndex
from tests.images import corpus_photos

U8 = npt.NDArray[np.uint8]
Stored = Mapping[int, U8]

# ---- helpers ---------------------------------------------------------------------------------------


def random_codes(n: int, rng: np.random.Generator) -> U8:
    """``n`` uniformly random 256-bit codes."""
    return rng.integers(0, 256, size=(n, DESCRIPTOR_BYTES), dtype=np.uint8)


def flipped(codes: U8, bits: int, rng: np.random.Generator, *, keep_slice: int | None = None) -> U8:
    """Each code with ``bits`` distinct random bits flipped, none of them in the 16-bit LSH slice
    ``keep_slice`` (bytes ``2 * keep_slice`` and the next), when given."""
    n = len(codes)
    mask = np.zeros((n, 8 * DESCRIPTOR_BYTES), np.uint8)
    noise = rng.random((n, 8 * DESCRIPTOR_BYTES))
    if keep_slice is not None:
        noise[:, 16 * keep_slice : 16 * keep_slice + 16] = 2.0  # sorts last: never chosen
    chosen = np.argsort(noise, axis=1)[:, :bits]
    mask[np.arange(n)[:, None], chosen] = 1
    return codes ^ np.packbits(mask, axis=1)


def distances(a: U8, b: U8) -> npt.NDArray[np.int64]:
    """(len(a), len(b)) Hamming distances in bits."""
    return np.asarray(np.bitwise_count(a[:, None, :] ^ b[None, :, :]).sum(axis=2), dtype=np.int64)


def reference_votes(stored: Stored, query: U8, *, max_bits: int = MATCH_BITS) -> list[tuple[int, int]]:
    """Brute force: each query code votes for the owner of its nearest stored code when that is within
    ``max_bits``; (owner, votes), most votes first, ties by owner."""
    live = [(owner, codes) for owner, codes in stored.items() if len(codes)]
    if not live or not len(query):
        return []
    codes = np.concatenate([c for _, c in live])
    owners = np.concatenate([np.full(len(c), o) for o, c in live])
    d = distances(query, codes)
    nearest = d.argmin(axis=1)
    hits = owners[nearest][d[np.arange(len(query)), nearest] <= max_bits]
    return sorted(Counter(int(o) for o in hits).items(), key=lambda kv: (-kv[1], kv[0]))


@contextmanager
def merge_at(n: int) -> Iterator[None]:
    """Additions merge the delta into the sorted part once it holds ``n`` descriptors (1: at once)."""
    saved = descriptors._DELTA_CODES
    descriptors._DELTA_CODES = n
    try:
        yield
    finally:
        descriptors._DELTA_CODES = saved


def build(stored: Stored, *, merged: bool, tables: int = TABLES) -> DescriptorIndex:
    """A DescriptorIndex of ``stored``: every code in the sorted part (``merged``), or all in the delta."""
    ix = DescriptorIndex(tables=tables)
    with merge_at(1 if merged else 1 << 40):
        for owner, codes in stored.items():
            ix.add(owner, codes)
    return ix


def votes_of(ix: DescriptorIndex, query: U8, **kw: int) -> list[tuple[int, int]]:
    """``ix.vote`` with room for every owner, and with no merge during the look-up."""
    kw.setdefault("top", 10_000)
    with merge_at(1 << 40):
        return ix.vote(query, **kw)


#: seed-sequence prefixes that keep stored codes and query codes apart (both drawn from seeds hypothesis picks)
STORED, QUERIES = 1, 2

stored_sets = st.builds(
    lambda counts, seed: {o: random_codes(n, np.random.default_rng([STORED, seed, o])) for o, n in counts.items()},
    st.dictionaries(st.integers(0, 3000), st.integers(1, 64), min_size=1, max_size=8),
    st.integers(0, 2**32 - 1),
)


# ---- votes -----------------------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, database=None)
@given(stored=stored_sets, pick=st.integers(0, 7), tables=st.integers(1, 16), data=st.data())
def test_near_copies_vote_for_their_owner_alone(stored: Stored, pick: int, tables: int, data: st.DataObject) -> None:
    owner = sorted(stored)[pick % len(stored)]
    bits = data.draw(st.integers(0, min(5, tables - 1)), label="flipped bits")
    merged = data.draw(st.booleans(), label="merged")
    rng = np.random.default_rng([QUERIES, data.draw(st.integers(0, 2**32 - 1), label="seed")])
    ix = build(stored, merged=merged, tables=tables)

    query = flipped(stored[owner], bits, rng)

    assert votes_of(ix, query) == [(owner, len(stored[owner]))]
    found, dist = ix.nearest(query)
    assert (found == owner).all()
    assert (dist == bits).all()


@settings(max_examples=40, deadline=None, database=None)
@given(stored=stored_sets, n=st.integers(1, 300), merged=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_unrelated_codes_get_no_votes(stored: Stored, n: int, merged: bool, seed: int) -> None:
    ix = build(stored, merged=merged)
    query = random_codes(n, np.random.default_rng([QUERIES, seed]))

    assert votes_of(ix, query) == []
    found, dist = ix.nearest(query)
    assert ((found == -1) | (dist > MATCH_BITS)).all()


@settings(max_examples=40, deadline=None, database=None)
@given(stored=stored_sets, seed=st.integers(0, 2**32 - 1), data=st.data())
def test_votes_are_the_same_from_the_delta_and_from_the_merged_part(
    stored: Stored, seed: int, data: st.DataObject
) -> None:
    """A query mixing near copies of several owners' codes (in any proportion) and strangers."""
    rng = np.random.default_rng([QUERIES, seed])
    parts = []
    for owner, codes in stored.items():
        take = data.draw(st.integers(0, len(codes)), label=f"codes of {owner} copied")
        parts.append(flipped(codes[rng.permutation(len(codes))[:take]], int(rng.integers(0, TABLES)), rng))
    parts.append(random_codes(data.draw(st.integers(0, 50), label="strangers"), rng))
    query = np.concatenate(parts)
    top = data.draw(st.integers(1, 9), label="top")

    in_delta = build(stored, merged=False)
    in_sorted = build(stored, merged=True)

    expected = reference_votes(stored, query)
    assert votes_of(in_delta, query) == expected
    assert votes_of(in_sorted, query) == expected
    assert in_sorted.vote(query, top=top) == in_delta.vote(query, top=top) == expected[:top]
    assert len(in_delta) == len(in_sorted) == sum(len(c) for c in stored.values())


@settings(max_examples=40, deadline=None, database=None)
@given(seed=st.integers(0, 2**32 - 1), bits=st.integers(0, 80), max_bits=st.integers(0, 80), merged=st.booleans())
def test_a_vote_counts_only_within_max_bits(seed: int, bits: int, max_bits: int, merged: bool) -> None:
    rng = np.random.default_rng(seed)
    stored = {3: random_codes(40, rng), 4: random_codes(40, rng)}
    ix = build(stored, merged=merged)
    # LSH finds a copy however far it lies, as long as one slice is untouched
    query = flipped(stored[3], bits, rng, keep_slice=int(rng.integers(0, TABLES)))

    votes = votes_of(ix, query, max_bits=max_bits)

    assert votes == ([(3, 40)] if bits <= max_bits else [])


def test_ties_go_to_the_lower_owner_and_top_keeps_the_best() -> None:
    rng = np.random.default_rng(5)
    stored = {9: random_codes(3, rng), 2: random_codes(3, rng), 5: random_codes(7, rng), 7: random_codes(1, rng)}
    ix = build(stored, merged=False)
    query = np.concatenate(list(stored.values()))

    assert ix.vote(query, top=10) == [(5, 7), (2, 3), (9, 3), (7, 1)]
    assert ix.vote(query, top=2) == [(5, 7), (2, 3)]


# ---- real ORB descriptors --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def orb_codes(corpus: Path) -> dict[int, U8]:
    """The 64 strongest ORB descriptors (what the index keeps per file) of 8 corpus photos."""
    photos = corpus_photos()[::47][:8]
    return {
        owner: local_features(decode_image(path.read_bytes()).pixels).descriptors[:64]
        for owner, path in enumerate(photos)
    }


@settings(max_examples=25, deadline=None, database=None)
@given(pick=st.integers(0, 7), bits=st.integers(0, 12), merged=st.booleans(), seed=st.integers(0, 2**32 - 1))
def test_orb_descriptors_of_a_photo_with_flipped_bits_vote_for_that_photo(
    orb_codes: dict[int, U8], pick: int, bits: int, merged: bool, seed: int
) -> None:
    assert len(orb_codes) == 8 and all(len(c) == 64 for c in orb_codes.values())
    ix = build(orb_codes, merged=merged)

    votes = votes_of(ix, flipped(orb_codes[pick], bits, np.random.default_rng(seed)))

    assert votes[0][0] == pick
    if bits < TABLES:
        assert votes[0][1] == 64
    else:  # LSH may miss a few copies with TABLES or more bits flipped
        assert votes[0][1] >= 56
    assert sum(v for _, v in votes[1:]) <= 2


# ---- removal and merging ---------------------------------------------------------------------------


@settings(max_examples=40, deadline=None, database=None)
@given(stored=stored_sets, data=st.data())
def test_removed_owners_never_get_votes(stored: Stored, data: st.DataObject) -> None:
    owners = sorted(stored)
    gone = data.draw(st.sets(st.sampled_from(owners)), label="removed")
    when = data.draw(st.sampled_from(["in the delta", "before a merge", "after a merge"]), label="when")
    query = np.concatenate([stored[o] for o in owners])
    filler = 5000  # an owner added afterwards, whose codes nothing in the query resembles

    ix = build(stored, merged=when == "after a merge")
    ix.remove(sorted(gone))
    with merge_at(1 if when == "before a merge" else 1 << 40):
        ix.add(filler, random_codes(3, np.random.default_rng([QUERIES, filler])))

    expected = [(o, len(stored[o])) for o in owners if o not in gone]
    assert votes_of(ix, query) == sorted(expected, key=lambda kv: (-kv[1], kv[0]))
    found, _ = ix.nearest(query)
    assert not set(found.tolist()) & gone


def test_removal_before_and_after_a_real_merge_past_merge_at() -> None:
    """Enough descriptors to cross the real ``_DELTA_CODES``: one owner removed while its codes sit in the
    delta, another once they are in the sorted part; a look-alike query, merged or not, agrees."""
    rng = np.random.default_rng(11)
    per_owner = 64
    n_owners = descriptors._DELTA_CODES // per_owner + 2
    stored = {o: random_codes(per_owner, rng) for o in range(n_owners)}
    targets = [0, 1, 2, n_owners - 1]  # the last is added after the merge, and stays in the delta
    ix = DescriptorIndex()
    for o in range(n_owners):
        ix.add(o, stored[o])
        if o == n_owners // 2:
            ix.remove([1])  # in the delta, merged away later
    ix.remove([2])  # merged already
    assert len(ix) == n_owners * per_owner - per_owner  # owner 1's codes were dropped by the merge
    query = np.concatenate([flipped(stored[o], 4, rng) for o in targets])

    votes = ix.vote(query, top=10)

    assert votes == [(0, per_owner), (n_owners - 1, per_owner)]
    exhaustive = build({o: c for o, c in stored.items() if o not in (1, 2)}, merged=False)
    assert votes_of(exhaustive, query)[:10] == votes


def test_an_owner_removed_and_added_again_has_only_its_new_descriptors() -> None:
    rng = np.random.default_rng(2)
    old, new = random_codes(10, rng), random_codes(10, rng)
    for merged in (False, True):
        ix = build({7: old}, merged=merged)
        ix.remove([7])
        with merge_at(1 if merged else 1 << 40):
            ix.add(7, new)

        assert votes_of(ix, new) == [(7, 10)], merged
        assert votes_of(ix, old) == [], f"forgotten descriptors vote again ({'merged' if merged else 'delta'})"


# ---- empty indexes and bad input -------------------------------------------------------------------


def test_an_empty_index_votes_nothing() -> None:
    rng = np.random.default_rng(0)
    query = random_codes(20, rng)
    ix = DescriptorIndex()
    assert len(ix) == 0
    assert ix.vote(query) == []
    found, _ = ix.nearest(query)
    assert (found == -1).all()

    ix.add(4, np.zeros((0, DESCRIPTOR_BYTES), np.uint8))  # a file without keypoints
    assert ix.vote(query) == []

    ix.add(5, query)
    ix.remove([5])
    assert ix.vote(query) == []
    ix.add(6, random_codes(3, rng))
    assert ix.vote(np.zeros((0, DESCRIPTOR_BYTES), np.uint8)) == []


GOOD = np.random.default_rng(1).integers(0, 256, size=(5, DESCRIPTOR_BYTES), dtype=np.uint8)


@pytest.mark.parametrize(
    ("owner", "codes"),
    [
        (-1, GOOD),
        (2**31 - 1, GOOD),
        (2**40, GOOD),
        (1, GOOD.astype(np.float64)),
        (1, GOOD.astype(np.uint16)),
        (1, GOOD.astype(np.int8)),
        (1, GOOD[:, :31]),
        (1, np.concatenate([GOOD, GOOD[:, :1]], axis=1)),
        (1, GOOD[0]),
        (1, GOOD[:, :, None]),
    ],
    ids=["negative", "2**31-1", "huge", "float64", "uint16", "int8", "31 bytes", "33 bytes", "1-D", "3-D"],
)
def test_bad_additions_raise_config_error_and_change_nothing(owner: int, codes: U8) -> None:
    ix = DescriptorIndex()
    ix.add(0, GOOD[:2])

    with pytest.raises(ConfigError):
        ix.add(owner, codes)

    assert len(ix) == 2
    assert votes_of(ix, GOOD) == [(0, 2)]


@pytest.mark.parametrize(
    "query",
    [GOOD.astype(np.float64), GOOD.astype(np.uint16), GOOD.reshape(10, DESCRIPTOR_BYTES // 2), GOOD[:, :31]],
    ids=["float64", "uint16", "16 bytes a row", "31 bytes"],
)
def test_bad_queries_raise_config_error(query: U8) -> None:
    """As ``add`` does: a query of the wrong type or width is refused, not reinterpreted."""
    ix = DescriptorIndex()
    ix.add(0, GOOD)

    with pytest.raises(ConfigError):
        ix.vote(query)
    with pytest.raises(ConfigError):
        ix.nearest(query)


@pytest.mark.parametrize("tables", [0, 17, -1])
def test_a_bad_number_of_tables_raises_config_error(tables: int) -> None:
    with pytest.raises(ConfigError):
        DescriptorIndex(tables=tables)


def test_non_contiguous_descriptor_arrays_are_read_correctly() -> None:
    rng = np.random.default_rng(4)
    codes = random_codes(12, rng)
    ix = DescriptorIndex()
    ix.add(1, np.asfortranarray(codes))
    ix.add(2, random_codes(24, rng)[::2])

    assert votes_of(ix, codes[::-1]) == [(1, 12)]
    assert votes_of(ix, np.asfortranarray(codes)) == [(1, 12)]


# ---- memory ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("merged", [False, True], ids=["delta", "merged"])
def test_memory_is_about_the_codes_the_owners_and_the_tables(merged: bool) -> None:
    """The module's promise: 32 bytes of code, 4 of owner and 4 to 4.5 per table for each descriptor."""
    empty = DescriptorIndex().nbytes()
    n = 2000
    stored = {o: random_codes(n // 20, np.random.default_rng(o)) for o in range(20)}

    ix = build(stored, merged=merged)

    grown = ix.nbytes() - empty
    assert 36 * n <= grown <= (36 + 4.5 * TABLES) * n + 8192  # plus a few hundred bytes a part


@pytest.mark.parametrize("probe_bits", [-1, 3])
def test_a_bad_probe_radius_raises_config_error(probe_bits: int) -> None:
    with pytest.raises(ConfigError):
        DescriptorIndex(probe_bits=probe_bits)
