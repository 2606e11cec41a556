"""The client's grouping stage apart from a cluster: components on compact ids, and the answer
spilled, sorted in several passes and read back as the groups that were found."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lookalike.match import Verdict
from lookalike.scale import answer
from lookalike.scale.answer import GroupSpill, read_groups
from lookalike.scale.group_stage import components
from lookalike.scan.groups import components as scan_components
from lookalike.scan.results import Evidence, EvidenceKind, Group, Member


def test_components_on_compact_ids_are_the_scans_components() -> None:
    rng = np.random.default_rng(7)
    n = 3_000
    a, b = rng.integers(0, n, 2_400), rng.integers(0, n, 2_400)
    chain = np.arange(500, 900)  # a long path: the case min-label hooking must still finish
    a, b = np.concatenate([a, chain[:-1]]), np.concatenate([b, chain[1:]])
    label = components(n, a.astype(np.int64), b.astype(np.int64))
    got = {}
    for node, root in enumerate(label.tolist()):
        got.setdefault(root, []).append(node)
    expected = scan_components(list(range(n)), zip(a.tolist(), b.tolist()))
    assert sorted(g for g in got.values() if len(g) > 1) == expected


def _group(keep: str, others: list[str]) -> Group:
    def member(path: str, kept: bool) -> Member:
        reason = (
            Evidence(EvidenceKind.KEEPER, "the original: 1 copy derives from it", "256x192, lossy JPEG")
            if kept
            else Evidence(EvidenceKind.LOCAL_FEATURES, "a crop", same_picture=True)
        )
        return Member(
            path, 0.123456789, Verdict.NEAR_DUPLICATE, reason, keep, kept, 256, 192, 1_000, "image/jpeg", None,
            eligible=not kept, eligibility="the keeper" if kept else "joined by local features", sha256="ab" * 32,
        )  # fmt: skip

    return Group(keep=keep, members=(member(keep, True), *(member(p, False) for p in others)))


def test_spilled_groups_come_back_largest_first_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(answer, "SORT_GROUPS", 2)  # several passes over the spill
    batches = [
        [_group("/p/m.jpg", ["/p/n.jpg"]), _group("/p/z.jpg", ["/p/y.jpg", "/p/x.jpg"])],
        [],
        [_group("/p/a.jpg", ["/p/b.jpg"]), _group("/p/k.jpg", ["/p/l.jpg", "/p/j.jpg", "/p/i.jpg"])],
        [_group("/p/c.jpg", ["/p/d.jpg"])],
    ]
    spill = GroupSpill(str(tmp_path / "spill.tmp"))
    for batch in batches:
        spill.add(batch)
    spill.finish(str(tmp_path / "groups.parquet"))
    expected = sorted((g for b in batches for g in b), key=lambda g: (-len(g.members), g.keep))
    assert list(read_groups(str(tmp_path / "groups.parquet"))) == expected
    table = pq.read_table(tmp_path / "groups.parquet").to_pydict()
    assert table["group"] == [i for i, g in enumerate(expected) for _ in g.members]
    assert not (tmp_path / "spill.tmp").exists()


def test_an_answer_without_groups_is_an_empty_file(tmp_path: Path) -> None:
    spill = GroupSpill(str(tmp_path / "spill.tmp"))
    spill.finish(str(tmp_path / "groups.parquet"))
    assert list(read_groups(str(tmp_path / "groups.parquet"))) == []
