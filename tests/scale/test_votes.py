"""The scale-out vote table (``scale.votes``) answers as one machine's ``DescriptorIndex``: each
query code's nearest stored candidate by the same candidate rule, whatever the key's length, where
it lies within the distance votes count."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lookalike.index.search.descriptors import MATCH_BITS
from lookalike.scale import votes
from lookalike.scale.votes import VoteTable, build_vote_table
from tests.index.test_descriptor_shards import planted, reference_nearest


@pytest.mark.parametrize("lines", [0, 4])
@pytest.mark.parametrize("bits", [16, 20, 24])
def test_the_vote_table_finds_each_codes_nearest_candidate_as_one_index_does(
    bits: int, lines: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(votes, "key_bits", lambda codes: bits)  # as a larger run would have it
    monkeypatch.setattr(votes, "_PREFETCH_LINES", lines)  # buckets' lines asked for ahead, or not
    monkeypatch.setattr(votes, "_CHUNK", 1000)  # built a few chunks at a time, as a large run is
    monkeypatch.setattr(votes, "_WINDOW_CODES", 64)  # read in many windows, each let go after
    monkeypatch.setattr(votes, "_GATHER", 50)  # the queries put in key order a few at a time
    stored, query = planted(2)
    owners = sorted(stored)
    paths = []
    for k in range(3):  # codes parts, each with some of the rows, one without codes
        mine = owners[k::3]
        codes = [stored[o].tobytes() if i else b"" for i, o in enumerate(mine)]
        paths.append(str(tmp_path / f"codes-{k}.parquet"))
        pq.write_table(pa.table({"pk": mine, "descriptors": codes}), paths[-1])
    kept = {o: c for k in range(3) for i, (o, c) in enumerate((o, stored[o]) for o in owners[k::3]) if i}

    filed = build_vote_table(paths, str(tmp_path / "votes"))
    table = VoteTable(str(tmp_path / "votes"))
    found, dist = table.nearest(query)

    assert filed == sum(len(c) for c in kept.values()) and table.bits == bits
    owner, ref_dist = reference_nearest(kept, query, bits)
    near = (owner >= 0) & (ref_dist <= MATCH_BITS)  # the answers votes count; farther ones are none
    assert near.any() and (owner < 0).any()
    assert (owner[~near] >= 0).any() or bits > 16  # short keys give candidates too far to count
    assert np.array_equal(found, np.where(near, owner, -1)) and np.array_equal(dist, np.where(near, ref_dist, 257))
