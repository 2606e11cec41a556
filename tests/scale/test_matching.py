"""The matching stage's candidates (the join, the nearest pHashes, the descriptor votes asked of
shards in turn) give one machine's pairs, whatever the size of the vote shards, of what a worker
keeps between tasks, of the batches of rows checked together and of the fingerprint parts' row
groups, on a tree where only the crop tier finds some copies."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from lookalike.index import cascade
from lookalike.scale import Pipeline, faults, matching
from lookalike.scan import find_groups
from tests.images import encode, photo
from tests.scan.conftest import make_tree


@pytest.fixture(scope="module")
def cropped_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``find``'s test tree, and photos with tight crops of them that hashes alone cannot reach."""
    root = make_tree(tmp_path_factory.mktemp("matching") / "tree")
    for seed in (31, 32, 33):
        im = photo(640, 480, seed=seed)
        (root / "crops").mkdir(exist_ok=True)
        (root / "crops" / f"full{seed}.jpg").write_bytes(encode(im, "JPEG", quality=92))
        w, h = im.size
        crop = im.crop((w // 5, h // 6, w - w // 4, h - h // 5)).resize((400, 300), Image.Resampling.LANCZOS)
        (root / "crops" / f"part{seed}.jpg").write_bytes(encode(crop, "JPEG", quality=85))
    return root


@pytest.fixture(scope="module")
def one_machine(cropped_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return find_groups([cropped_tree], db=tmp_path_factory.mktemp("one") / "find.db").to_dict()


@pytest.mark.parametrize(("verify_candidates", "group_rows"), [(1, 2), (10_000, 16)])
def test_any_batch_size_gives_the_pairs_of_one_machine(
    cropped_tree: Path,
    one_machine: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    verify_candidates: int,
    group_rows: int,
) -> None:
    crops = [p for p in one_machine["pairs"] if "/crops/part" in p["a"] + p["b"]]
    assert crops, "the tree must hold copies only the crop tier finds"
    # rows checked one at a time or all at once, their candidates read by row groups of fingerprint parts
    monkeypatch.setattr(matching, "VERIFY_CANDIDATES", verify_candidates)
    monkeypatch.setattr(faults, "FINGERPRINT_GROUP_ROWS", group_rows)
    matching._kept.clear()  # nothing kept from another case's run
    run = Pipeline(partition_size=3).run([str(cropped_tree)], out=tmp_path / "run")
    doc = run.result.to_dict()
    assert doc["pairs"] == one_machine["pairs"]
    assert [sorted(m["path"] for m in g["members"]) for g in doc["groups"]] == [
        sorted(m["path"] for m in g["members"]) for g in one_machine["groups"]
    ]


def test_past_a_small_index_both_engines_look_at_the_nearest_only_within_the_radius(
    cropped_tree: Path, one_machine: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The nearest few pHashes beyond the retrieval radius are looked at within ``NEAREST_RADIUS``
    only once an index holds more than ``NEAREST_ANY_UP_TO`` rows (made 2 here): one machine and
    the cluster still give one answer (the far rows are no candidates of either), and the crops are
    still found (by their votes)."""
    monkeypatch.setattr(cascade, "NEAREST_ANY_UP_TO", 2)
    monkeypatch.setattr(matching, "NEAREST_ANY_UP_TO", 2)
    matching._kept.clear()
    bounded = find_groups([cropped_tree], db=tmp_path / "find.db").to_dict()
    run = Pipeline(partition_size=3).run([str(cropped_tree)], out=tmp_path / "run").result.to_dict()

    assert run["pairs"] == bounded["pairs"]
    assert [p for p in bounded["pairs"] if "/crops/part" in p["a"] + p["b"]], "the crops are still found"
    assert bounded["pairs"] == one_machine["pairs"]  # on this tree no pair needed a far nearest
