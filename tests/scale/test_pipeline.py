"""The scale-out ``find`` gives the groups and keepers of one-machine ``find``, with one or two
Dask workers and any partition size, and its files say so too.

The scale-out path does not yet gather the evidence that picks each group's *source* as keeper
(spectra, margins, JPEG tables, local features against the keeper: ``scan.find.RunEvidence``), so
both sides here keep by the explicit quality policy ``DEFAULT_KEEP``, and members' evidence texts,
which one-machine ``find`` rewrites against the keeper, are not compared."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lookalike.scale import Pipeline
from lookalike.scan import find_duplicates
from lookalike.scan.keeper import DEFAULT_KEEP
from lookalike.scan.options import FindOptions
from tests.scale.conftest import groups_of, start_cluster


@pytest.fixture(scope="module")
def one_machine(tree: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``find --json`` of the tree on one machine, with a fresh database."""
    options = FindOptions(keep=DEFAULT_KEEP)
    return find_duplicates([tree], db=tmp_path_factory.mktemp("find") / "find.db", options=options).to_dict()


@pytest.mark.parametrize("partition_size", [1, 4, 256])
def test_two_workers_find_the_groups_and_keepers_of_one_machine(
    client: Any, tree: Path, one_machine: dict[str, Any], tmp_path: Path, partition_size: int
) -> None:
    run = Pipeline(partition_size=partition_size).run([str(tree)], out=tmp_path / "run", cluster=client)
    doc = run.result.to_dict()
    assert groups_of(doc) == groups_of(one_machine)
    assert _verdicts(doc) == _verdicts(one_machine)
    assert doc["pairs"] == one_machine["pairs"]
    assert doc["errors"] == one_machine["errors"]
    files = len(list(tree.rglob("*.*")))
    assert run.stats.fingerprint_partitions == -(-files // partition_size)


def test_one_worker_finds_the_same(tree: Path, one_machine: dict[str, Any], tmp_path: Path) -> None:
    cluster, client = start_cluster(1)
    try:
        run = Pipeline(partition_size=3).run([str(tree)], out=tmp_path / "run", cluster=client)
    finally:
        client.close()
        cluster.close()
    assert groups_of(run.result.to_dict()) == groups_of(one_machine)


def _verdicts(doc: dict[str, Any]) -> list[list[tuple[str, float, str, bool]]]:
    """Each group's members with their score, verdict and whether an action may touch them."""
    return [[(m["path"], m["score"], m["verdict"], m["eligible"]) for m in g["members"]] for g in doc["groups"]]


def test_groups_parquet_lists_every_member_with_its_keeper(client: Any, tree: Path, tmp_path: Path) -> None:
    run = Pipeline(partition_size=5).run([str(tree)], out=tmp_path / "run", cluster=client)
    table = pq.read_table(run.groups_path).to_pylist()
    assert len(table) == sum(len(g.members) for g in run.result.groups)
    for i, g in enumerate(run.result.groups):
        rows = [r for r in table if r["group"] == i]
        assert [r["path"] for r in rows] == [m.path for m in g.members]
        assert {r["keeper"] for r in rows} == {g.keep}
        assert [r["path"] for r in rows if r["keep"]][0] == g.keep


def test_unreadable_files_are_error_rows_naming_them(client: Any, tree: Path, tmp_path: Path) -> None:
    run = Pipeline().run([str(tree)], out=tmp_path / "run", cluster=client)
    assert {Path(e.path).name for e in run.result.errors} == {"broken.jpg", "empty.png"}
    fingerprints = pq.read_table(next((tmp_path / "run" / "fingerprints").glob("*.parquet"))).to_pylist()
    bad = [r for r in fingerprints if r["error_code"]]
    assert sorted(Path(r["url"]).name for r in bad) == ["broken.jpg", "empty.png"]
    assert all(r["sha256"] is None and r["error"] for r in bad)


def test_a_folder_holding_a_run_is_not_mixed_with_another(client: Any, tree: Path, tmp_path: Path) -> None:
    from lookalike.errors import ConfigError

    Pipeline().run([str(tree / "originals")], out=tmp_path / "run", cluster=client)
    with pytest.raises(ConfigError, match="--resume"):
        Pipeline().run([str(tree)], out=tmp_path / "run", cluster=client)


def test_resume_with_other_sources_recomputes_only_what_changed(client: Any, tree: Path, tmp_path: Path) -> None:
    first = Pipeline(partition_size=2).run([str(tree)], out=tmp_path / "run", cluster=client)
    again = Pipeline(partition_size=2).run([str(tree)], out=tmp_path / "run", cluster=client, resume=True)
    assert again.stats.fingerprint_partitions == 0 and again.stats.verify_partitions == 0
    assert again.result.to_dict()["groups"] == first.result.to_dict()["groups"]
    (tree / "phone" / "other.png").rename(tree / "phone" / "zz_other.png")  # last in path order
    try:
        moved = Pipeline(partition_size=2).run([str(tree)], out=tmp_path / "run", cluster=client, resume=True)
    finally:
        (tree / "phone" / "zz_other.png").rename(tree / "phone" / "other.png")
    assert 0 < moved.stats.fingerprint_partitions < first.stats.fingerprint_partitions
    assert groups_of(moved.result.to_dict()) == groups_of(first.result.to_dict())


def test_hash_writes_the_fingerprint_stage_alone(client: Any, tree: Path, tmp_path: Path) -> None:
    run = Pipeline(partition_size=4).hash([str(tree)], out=tmp_path / "h", cluster=client)
    rows = [r for p in run.parts for r in pq.read_table(p).to_pylist()]
    assert run.files == len(rows) == len(list(tree.rglob("*.*")))
    assert sorted(r["url"] for r in rows) == [r["url"] for r in rows]
    assert not (tmp_path / "h" / "groups.parquet").exists()
