"""Acting on copies: a dry run changes nothing, keepers and keep-in files are never touched, and the
undo manifest puts a move or a trash back exactly — even after a crash half-way."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from lookalike.errors import ConfigError
from lookalike.scan import (
    Action,
    FindOptions,
    FindResult,
    apply_actions,
    find_groups,
    held_back,
    plan_actions,
    undo,
)
from lookalike.scan import actions as actions_module
from lookalike.scan.fileops import Opened
from tests.scan.conftest import tree_digest


def find(tree: Path, tmp_path: Path, **opts: object) -> FindResult:
    return find_groups([tree], db=tmp_path / "act.db", options=FindOptions(jobs=1, **opts))  # type: ignore[arg-type]


def kept_paths(result: FindResult) -> set[str]:
    return {m.path for g in result.groups for m in g.members if m.keep}


def copies(result: FindResult) -> set[str]:
    return {m.path for g in result.groups for m in g.removable}


@pytest.mark.parametrize("action", [Action.MOVE, Action.TRASH, Action.HARDLINK, Action.DELETE])
def test_plan_touches_only_copies(tree: Path, tmp_path: Path, action: Action) -> None:
    result = find(tree, tmp_path, keep_in=(str(tree / "originals"),))
    steps = plan_actions(result, action, to=tmp_path / "moved" if action is Action.MOVE else None)
    if action is Action.HARDLINK:  # only byte-identical copies; the others held back, saying why
        identical = {m.path for g in result.groups for m in g.removable if m.sha256 == g.members[0].sha256}
        assert identical and {s.path for s in steps} == identical
        held = dict(held_back(result, action))
        assert set(held) == copies(result) - identical and all("not the keeper's" in w for w in held.values())
    else:
        assert {s.path for s in steps} == copies(result)
    assert not {s.path for s in steps} & kept_paths(result)
    assert not any(s.path.startswith(str(tree / "originals") + os.sep) for s in steps)


def test_dry_run_changes_nothing(tree: Path, tmp_path: Path, cli: object) -> None:
    before = tree_digest(tree)
    for action in ("move", "trash", "hardlink", "delete"):
        extra = ["--to", str(tmp_path / "moved")] if action == "move" else []
        proc = cli("find", tree, "--db", tmp_path / "dry.db", "--action", action, "--dry-run", *extra)  # type: ignore[operator]
        assert proc.returncode == 1, proc.stderr  # 1: the tree holds two unreadable files
        assert "would " in proc.stdout and "nothing was changed" in proc.stdout
        assert tree_digest(tree) == before
    assert not (tmp_path / "moved").exists()


def test_move_and_undo_restore_the_tree_exactly(tree: Path, tmp_path: Path) -> None:
    before = tree_digest(tree)
    result = find(tree, tmp_path)
    keepers = {p: Path(p).read_bytes() for p in kept_paths(result)}
    dest = tmp_path / "moved"
    steps = plan_actions(result, Action.MOVE, to=dest)
    report = apply_actions(steps, manifest=tmp_path / "m.jsonl")
    assert len(report.done) == len(steps) and not report.failed
    for s in steps:
        assert not os.path.exists(s.path) and os.path.isfile(s.target)
        assert s.target == str(dest / os.path.relpath(s.path, tree))  # relative paths kept
    assert all(Path(p).read_bytes() == data for p, data in keepers.items())
    restored = undo(tmp_path / "m.jsonl")
    assert len(restored.done) == len(steps) and not restored.failed
    assert tree_digest(tree) == before


def test_trash_goes_to_a_hidden_folder_and_comes_back(tree: Path, tmp_path: Path) -> None:
    before = tree_digest(tree)
    result = find(tree, tmp_path)
    steps = plan_actions(result, Action.TRASH)
    assert all(f"{os.sep}.lookalike-trash{os.sep}" in s.target for s in steps)
    manifest = Path(os.path.commonpath([s.target for s in steps])) / "manifest.jsonl"
    apply_actions(steps, manifest=manifest)
    # a later scan does not see the trash (hidden folder) and finds no copies left
    again = find(tree, tmp_path)
    assert again.groups == ()
    undo(manifest)
    after = {k: v for k, v in tree_digest(tree).items() if ".lookalike-trash" not in k}
    assert after == before


def test_delete_and_hardlink_spare_keepers(tree: Path, tmp_path: Path) -> None:
    result = find(tree, tmp_path, keep_in=(str(tree / "backup"),))
    keepers = {p: Path(p).read_bytes() for p in kept_paths(result)}
    links = plan_actions(result, Action.HARDLINK)
    assert [s.path for s in links] == [str(tree / "originals" / "boat.png")]  # the one byte-identical copy
    report = apply_actions(links, manifest=tmp_path / "h.jsonl")
    assert not report.failed, report.failed
    assert os.path.samefile(links[0].path, links[0].keeper)
    assert not [p for p in os.listdir(tree / "originals") if p.startswith(".lookalike-")]  # no temporary left
    result = find(tree, tmp_path, keep_in=(str(tree / "backup"),))
    report = apply_actions(plan_actions(result, Action.DELETE), manifest=tmp_path / "d.jsonl")
    assert report.done and not report.failed
    for p, data in keepers.items():
        assert Path(p).read_bytes() == data
    assert not any(os.path.exists(s.path) for s in report.done)
    with pytest.raises(ConfigError, match="cannot be undone"):
        undo(tmp_path / "d.jsonl")


def test_a_step_on_a_kept_or_changed_file_is_refused(tree: Path, tmp_path: Path) -> None:
    result = find(tree, tmp_path)
    steps = plan_actions(result, Action.DELETE)
    with open(steps[0].path, "ab") as fh:
        fh.write(b"changed")
    report = apply_actions(steps, manifest=tmp_path / "x.jsonl", protected=[steps[1].path])
    failed = {s.path: why for s, why in report.failed}
    assert "changed since it was read" in failed[steps[0].path]
    assert "kept" in failed[steps[1].path]
    assert os.path.exists(steps[0].path) and os.path.exists(steps[1].path)


def test_crash_half_way_leaves_a_manifest_undo_can_use(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(tree)
    steps = plan_actions(find(tree, tmp_path), Action.MOVE, to=tmp_path / "moved")
    real_move, calls = actions_module.move_verified, []

    def crashing_move(src: str, opened: Opened, dst: str, announce: Callable[[str], None]) -> None:
        if len(calls) == 2:
            raise KeyboardInterrupt  # the process dies here
        calls.append(src)
        real_move(src, opened, dst, announce)

    monkeypatch.setattr(actions_module, "move_verified", crashing_move)
    with pytest.raises(KeyboardInterrupt):
        apply_actions(steps, manifest=tmp_path / "crash.jsonl")
    monkeypatch.undo()
    assert len(calls) == 2 and tree_digest(tree) != before
    report = undo(tmp_path / "crash.jsonl")
    assert len(report.done) == 2 and not report.failed
    assert tree_digest(tree) == before


def test_undo_never_overwrites(tree: Path, tmp_path: Path) -> None:
    steps = plan_actions(find(tree, tmp_path), Action.MOVE, to=tmp_path / "moved")
    apply_actions(steps, manifest=tmp_path / "m.jsonl")
    Path(steps[0].path).write_bytes(b"a new file in the old place")
    report = undo(tmp_path / "m.jsonl")
    assert [s.path for s, _ in report.failed] == [steps[0].path]
    assert Path(steps[0].path).read_bytes() == b"a new file in the old place"
    assert os.path.isfile(steps[0].target)
