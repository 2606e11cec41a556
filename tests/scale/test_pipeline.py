"""The scale-out ``find`` gives the groups and keepers of one-machine ``find``, with one or two
Dask workers and any partition size, and its files say so too.

Both sides choose each group's keeper by ``find``'s default, the source evidence (the original a
person would keep: not the enlarged, recompressed or losslessly re-saved copy), on a tree where the
quality policy alone would keep another file. Members' evidence texts, which one-machine ``find``
rewrites against the keeper from the local features in its index, are not compared."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from lookalike.scale import Pipeline, fact_spill, group_stage
from lookalike.scale.stages import exact_groups
from lookalike.scan import find_groups
from lookalike.scan.keeper import DEFAULT_KEEP
from lookalike.scan.options import FindOptions
from tests.scale.conftest import add_family, groups_of, start_cluster
from tests.scan.conftest import make_tree


@pytest.fixture(scope="module")
def family_tree(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Path]]:
    """``find``'s test tree with a photo, an enlarged, a recompressed and a lossless copy of it."""
    root = make_tree(tmp_path_factory.mktemp("scale-family") / "tree")
    return root, add_family(root / "family")


@pytest.fixture(scope="module")
def one_machine(family_tree: tuple[Path, dict[str, Path]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``find --json`` of the tree on one machine, with a fresh database and the default keeper choice."""
    return find_groups([family_tree[0]], db=tmp_path_factory.mktemp("find") / "find.db").to_dict()


@pytest.fixture(scope="module")
def one_worker() -> Iterator[Any]:
    """A client of a one-worker local cluster."""
    cluster, c = start_cluster(1)
    yield c
    c.close()
    cluster.close()


def _family_keeper(doc: dict[str, Any], family: dict[str, Path]) -> str:
    [group] = [g for g in doc["groups"] if str(family["original"]) in {m["path"] for m in g["members"]}]
    assert {m["path"] for m in group["members"]} == {str(p) for p in family.values()}
    return str(group["keep"])


def test_one_machine_keeps_the_original_where_the_quality_policy_would_not(
    family_tree: tuple[Path, dict[str, Path]], one_machine: dict[str, Any], tmp_path: Path
) -> None:
    root, family = family_tree
    assert _family_keeper(one_machine, family) == str(family["original"])
    by_policy = find_groups([root], db=tmp_path / "policy.db", options=FindOptions(keep=DEFAULT_KEEP)).to_dict()
    assert _family_keeper(by_policy, family) == str(family["enlarged"])


@pytest.mark.parametrize(("workers", "partition_size"), [(2, 1), (2, 4), (2, 256), (1, 3), (1, 256)])
def test_the_cluster_finds_the_groups_and_keepers_of_one_machine(
    client: Any,
    one_worker: Any,
    family_tree: tuple[Path, dict[str, Path]],
    one_machine: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    workers: int,
    partition_size: int,
) -> None:
    root, family = family_tree
    cluster = client if workers == 2 else one_worker
    if partition_size < 4:  # many grouping batches, spilled facts in several buckets, spectra asked batch by batch
        monkeypatch.setattr(group_stage, "BATCH_ROWS", 2)
        monkeypatch.setattr(fact_spill, "BUCKET_BATCHES", 2)
    run = Pipeline(partition_size=partition_size).run([str(root)], out=tmp_path / "run", cluster=cluster)
    doc = run.result.to_dict()
    assert _family_keeper(doc, family) == str(family["original"])
    assert groups_of(doc) == groups_of(one_machine)
    assert _verdicts(doc) == _verdicts(one_machine)
    assert _keep_reasons(doc) == _keep_reasons(one_machine)
    assert doc["pairs"] == one_machine["pairs"]
    assert doc["errors"] == one_machine["errors"]
    files = len(list(root.rglob("*.*")))
    step = min(partition_size, -(-files // workers))  # too few files to fill one each: one a worker
    assert run.stats.fingerprint_partitions == -(-files // step)


def _keep_reasons(doc: dict[str, Any]) -> list[str]:
    """Why each group's keeper was kept (the keeper is its group's first member)."""
    return [g["members"][0]["evidence"] for g in doc["groups"]]


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
    parts = sorted((tmp_path / "run" / "fingerprints").glob("*.parquet"))  # a small tree: a part a worker
    bad = [r for part in parts for r in pq.read_table(part).to_pylist() if r["error_code"]]
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


def _profiler(dask_worker: Any) -> tuple[bool, int]:
    return "profile" in dask_worker.periodic_callbacks, len(dask_worker.profile_history)


def test_workers_keep_no_profile_of_the_run(client: Any, tree: Path, tmp_path: Path) -> None:
    """Dask's profiler keeps a call tree a second for 1,000 seconds: a worker that ran the run's
    tasks has it stopped and its history dropped, so its memory does not grow with the run."""
    Pipeline(partition_size=4).hash([str(tree)], out=tmp_path / "h", cluster=client)
    states = client.run(_profiler)
    assert states and all(state == (False, 0) for state in states.values()), states


def test_the_verify_stage_says_which_lossless_copies_hold_the_pixels_of_a_lossy_file(
    family_tree: tuple[Path, dict[str, Path]], tmp_path: Path
) -> None:
    root, family = family_tree
    run = Pipeline().run([str(root / "family")], out=tmp_path / "run")
    rows = pq.read_table(tmp_path / "run" / "fingerprints").to_pylist()
    order = exact_groups([r["url"] for r in rows], [r["sha256"] for r in rows])
    pk_of = {url: pk for pk, urls in enumerate(order.values(), 1) for url in urls}
    pairs = pq.read_table(tmp_path / "run" / "pairs").to_pylist()
    assert run.result.groups
    role = {pk_of[str(path)]: r for r, path in family.items()}
    said = {(role[p["file_pk"]], role[p["peer_pk"]]): (p["verdict"], p["same_pixels"]) for p in pairs}
    lossless = {"lossless", "lossless2"}
    for (a, b), (verdict, same) in said.items():
        one_lossless = len(lossless & {a, b}) == 1
        if one_lossless and verdict == "near_duplicate" and "original" in (a, b):
            assert same is True, (a, b)  # the original's pixels, stored losslessly
        elif one_lossless and verdict == "near_duplicate":
            assert not same, (a, b)  # other pixels, or another size (not compared)
        else:
            assert same is None, (a, b)  # nothing to settle
    assert any(same for _, same in said.values())
