"""A source that grew, run again with ``resume``: only the new rows and the old rows whose
candidates changed are checked, every other row's earlier check is reused, and the answer (groups,
keepers, pairs) is the one a fresh run over the grown source gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lookalike.scale import Pipeline
from lookalike.scale.reuse import RowReuse, digest_keys
from lookalike.scale.schema import PAIRS
from tests.images import encode, photo
from tests.scale.conftest import groups_of
from tests.scan.conftest import make_tree


def test_a_digest_of_candidate_sets_is_the_sets_whatever_their_order() -> None:
    sig = digest_keys(b"s", [1, 2], [3], [], [4, 5])
    assert sig == digest_keys(b"s", [2, 1], [3], [], [5, 4, 4])
    assert sig != digest_keys(b"s", [1, 2, 9], [3], [], [4, 5])  # a new row voted for
    assert sig != digest_keys(b"s", [1, 2], [], [3], [4, 5])  # the same row, in another set
    assert sig != digest_keys(b"t", [1, 2], [3], [], [4, 5])  # other settings


def _pairs(doc: dict[str, Any]) -> list[tuple[str, str, str, float]]:
    return sorted((p["a"], p["b"], p["verdict"], p["score"]) for p in doc["pairs"])


def _rows(run: Path) -> dict[str, int]:
    """Rows reused as they were, extended and checked in full by the last run's matching tasks."""
    out = {"reused": 0, "extended": 0, "checked": 0}
    for path in (run / "pairs").glob("part-*.parquet"):
        for k, n in json.loads(pq.read_schema(path).metadata[b"rows"]).items():
            out[k] += n
    return out


def test_a_grown_source_checks_its_new_rows_and_the_old_rows_they_change(client: Any, tmp_path: Path) -> None:
    src = make_tree(tmp_path / "src")
    held = tmp_path / "held"
    held.mkdir()
    boat = src / "originals" / "boat.png"
    (held / "boat_copy.jpg").write_bytes(encode(photo(480, 360, seed=11), "JPEG", quality=80))  # a copy of boat
    (held / "new_single.png").write_bytes(encode(photo(330, 250, seed=41), "PNG"))
    pipeline = Pipeline(partition_size=3)
    first = pipeline.run([str(src)], out=tmp_path / "run", cluster=client)
    for f in held.iterdir():
        shutil.copy2(f, src / "phone" / f.name)
    grown = pipeline.run([str(src)], out=tmp_path / "run", cluster=client, resume=True)
    fresh = pipeline.run([str(src)], out=tmp_path / "fresh", cluster=client)
    a, b = grown.result.to_dict(), fresh.result.to_dict()
    assert groups_of(a) == groups_of(b) and _pairs(a) == _pairs(b)
    assert any(str(src / "phone" / "boat_copy.jpg") in m for _, m in groups_of(a) if str(boat) in m)
    rows = _rows(tmp_path / "run")
    assert dict(grown.stats.rows) == rows  # what the command prints after a grown resume
    old = first.result.stats.files - first.result.stats.errors - 1  # boat.png's bytes are there twice
    assert sum(rows.values()) == old + 2
    # the new rows in full; boat's copies gained one: extended, or checked in full if it came first
    assert 2 <= rows["checked"] < old + 2 and rows["reused"] + rows["extended"] > 0
    assert (tmp_path / "run" / "groups.parquet").read_bytes() == (tmp_path / "fresh" / "groups.parquet").read_bytes()


def _pair(pk: int, peer: int, rank: int, score: float) -> dict[str, Any]:
    return {
        "file_pk": pk, "peer_pk": peer, "rank": rank, "score": score, "verdict": "near_duplicate", "evidence": "e",
        "phash_bits": 0, "by_local_features": False, "same_pixels": None, "decoded_pixels": None,
    }  # fmt: skip


def _match(pk: int, score: float) -> Any:
    return SimpleNamespace(score=score, file=SimpleNamespace(pk=pk))


def test_old_rows_are_reused_extended_in_the_cascades_order_or_checked_again(tmp_path: Path) -> None:
    salt, urls = b"settings", ["/a", "/b", "/c"]
    earlier = RowReuse(None, salt, np.arange(1, 8, dtype=np.uint64) * 1000, top=200)  # row pk's key: 1000 pk
    assert earlier.split([1, 2, 3], urls, [{2, 3, 4}, {1, 5}, {1}]) == [0, 1, 2]  # nothing to reuse
    todo, extend = earlier.settle({0: ([], [6]), 1: ([5], [5, 6]), 2: ([], [6])})
    assert todo == [0, 1, 2] and not extend  # every row checked
    earlier.saw(1, [_match(2, 0.9), _match(3, 0.7), _match(4, 0.1)], _match(2, 0.9), False)
    earlier.saw(2, [_match(5, 0.4)], _match(5, 0.4), True)  # its best was no sure duplicate: step 5 ran
    earlier.saw(3, [_match(1, 0.9)], _match(1, 0.9), False)
    checked = pa.Table.from_pylist(
        [_pair(1, 2, 0, 0.9), _pair(1, 3, 1, 0.7), _pair(2, 5, 0, 0.4), _pair(3, 1, 0, 0.9)], schema=PAIRS
    )  # row 1's match with row 4 was "different": not among its pairs, counted in its total
    pq.write_table(earlier.tables(checked)[1], tmp_path / "checks.parquet")

    # grown: every old row renumbered (pk + 10), a new row (key 9000, pk 5) among their candidates
    keys = np.zeros(20, np.uint64)
    keys[10:17] = np.arange(1, 8) * 1000
    keys[4] = 9000
    grown = RowReuse(str(tmp_path / "checks.parquet"), salt, keys, top=200)
    hashes = [{12, 13, 14, 5}, {11, 15}, {11}]
    assert grown.split([11, 12, 13], urls, hashes) == [1]  # the votes of the row whose check went to step 5
    todo, extend = grown.settle({1: ([15], [15, 16, 5])})
    assert todo == [1]  # its votes changed
    assert extend == {0: {5}}  # its hash candidates gained row 5; row 3 is as it was (votes unused)
    grown.saw(11, [_match(5, 0.8)], _match(5, 0.8), False)
    assert grown.first_stays(11, 0)  # 0.8 sorts after its first match (0.9): steps 4 and 5 go as before
    grown.saw(12, [_match(15, 0.5)], _match(15, 0.5), True)
    pairs, checks = grown.tables(pa.Table.from_pylist([_pair(11, 5, 0, 0.8), _pair(12, 15, 0, 0.5)], schema=PAIRS))
    got = [(p["file_pk"], p["peer_pk"], p["rank"], p["score"]) for p in pairs.to_pylist()]
    assert got == [(11, 12, 0, 0.9), (11, 5, 1, 0.8), (11, 13, 2, 0.7), (12, 15, 0, 0.5), (13, 11, 0, 0.9)]
    assert checks.column("total").to_pylist() == [4, 1, 1]

    # a gained candidate that would come first: the row is checked in full after all
    again = RowReuse(str(tmp_path / "checks.parquet"), salt, keys, top=200)
    again.split([11, 12, 13], urls, hashes)
    again.settle({1: ([15], [15, 16, 5])})
    again.saw(11, [_match(5, 0.95)], _match(5, 0.95), False)
    assert not again.first_stays(11, 0)
    # a candidate lost (pushed out of its nearest) is taken out; losing its first match means a full check
    lost = RowReuse(str(tmp_path / "checks.parquet"), salt, keys, top=200)
    assert lost.split([11, 12, 13], urls, [{12, 14, 5}, {11, 15}, set()]) == [1, 2]
    todo, extend = lost.settle({1: ([15], [15, 16]), 2: ([], [])})
    assert todo == [2] and extend == {0: {5}}  # row 12's votes are what they were (renumbered): reused
    lost.saw(11, [_match(5, 0.8)], _match(5, 0.8), False)
    lost.saw(13, [], None, True)
    pairs, _ = lost.tables(pa.Table.from_pylist([_pair(11, 5, 0, 0.8)], schema=PAIRS))
    assert [(p["peer_pk"], p["rank"]) for p in pairs.to_pylist() if p["file_pk"] == 11] == [(12, 0), (5, 1)]
