"""A source that grew, run again with ``resume``: only the new rows and the old rows whose
candidates changed are checked, every other row's earlier check is reused, and the answer (groups,
keepers, pairs) is the one a fresh run over the grown source gives."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from lookalike.scale import Pipeline
from lookalike.scale.reuse import digest_keys
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
    old = first.result.stats.files - first.result.stats.errors - 1  # boat.png's bytes are there twice
    assert sum(rows.values()) == old + 2
    # the new rows in full; boat's copies gained one: extended, or checked in full if it came first
    assert 2 <= rows["checked"] < old + 2 and rows["reused"] + rows["extended"] > 0
    assert (tmp_path / "run" / "groups.parquet").read_bytes() == (tmp_path / "fresh" / "groups.parquet").read_bytes()
