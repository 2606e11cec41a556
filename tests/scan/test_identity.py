"""Files are what they are (device and inode), not the path that reached them: a file reached
through several paths is one file, never its own duplicate, and no action takes a file's last
copy, even when the paths change between the plan and the act."""

from __future__ import annotations

import json
import os
from pathlib import Path

from lookalike.scan import Action, FindOptions, FindResult, apply_actions, find_groups, held_back, plan_actions
from tests.scan.conftest import tree_digest


def find(paths: list[Path], tmp_path: Path) -> FindResult:
    return find_groups(paths, db=tmp_path / "id.db", options=FindOptions(jobs=1))


def inode(path: str) -> tuple[int, int]:
    st = os.stat(path)
    return st.st_dev, st.st_ino


def test_a_folder_named_twice_or_through_a_symlink_is_read_once(tree: Path, tmp_path: Path) -> None:
    alias = tmp_path / "alias"
    os.symlink(tree, alias)
    alone = find([tree], tmp_path)
    twice = find([tree, alias, tree], tmp_path)
    assert [[m.path for m in g.members] for g in twice.groups] == [[m.path for m in g.members] for g in alone.groups]
    assert twice.stats.files == alone.stats.files and twice.stats.duplicates == alone.stats.duplicates
    also = {a.path: a.also for a in twice.aliases}
    for g in twice.groups:
        for m in g.members:
            assert also[m.path] == (str(alias / os.path.relpath(m.path, tree)),)
    for s in plan_actions(twice, Action.DELETE):
        assert inode(s.path) != inode(s.keeper)
    # only the alias named: the files are listed by the paths the user gave
    through = find([alias], tmp_path)
    assert all(m.path.startswith(str(alias) + os.sep) for g in through.groups for m in g.members)


def test_a_symlink_and_a_hard_link_beside_their_file_are_that_file(tree: Path, tmp_path: Path) -> None:
    lonely = tree / "originals" / "lonely.jpg"
    os.symlink("lonely.jpg", tree / "originals" / "a_link.jpg")
    os.link(lonely, tree / "originals" / "lonely_again.jpg")
    result = find([tree], tmp_path)
    assert not any(str(lonely) in {m.path for m in g.members} for g in result.groups)  # not its own copy
    also = {a.path: set(a.also) for a in result.aliases}
    assert also[str(lonely)] == {str(tree / "originals" / "a_link.jpg"), str(tree / "originals" / "lonely_again.jpg")}


def test_the_target_of_a_symlink_is_held_back_and_never_deleted(tree: Path, tmp_path: Path) -> None:
    first = find([tree], tmp_path)
    twin = next(s.path for s in plan_actions(first, Action.DELETE) if s.path.endswith("boat.png"))
    link = Path(twin).parent / "boat_link.png"
    link.symlink_to(Path(twin).name)  # a link beside the copy that is not kept
    result = find([tree], tmp_path)
    assert twin in dict(held_back(result)) and "symlinks point to it" in dict(held_back(result))[twin]
    steps = plan_actions(result, Action.DELETE)
    assert twin not in {s.path for s in steps} and str(link) not in {s.path for s in steps}
    report = apply_actions(steps, manifest=tmp_path / "d.jsonl")
    assert report.done and not report.failed
    assert link.resolve().is_file()


def test_a_copy_that_became_its_keeper_after_the_plan_is_refused(tree: Path, tmp_path: Path) -> None:
    result = find([tree], tmp_path)
    steps = plan_actions(result, Action.DELETE)
    twin = next(s for s in steps if s.path.endswith("boat.png"))  # the same bytes as its keeper
    os.unlink(twin.path)
    os.link(twin.keeper, twin.path)  # now another name of the keeper itself
    report = apply_actions([twin], manifest=tmp_path / "d.jsonl")
    assert not report.done and "same file as its keeper" in report.failed[0][1]
    assert os.path.samefile(twin.path, twin.keeper)


def test_a_copy_whose_keeper_is_gone_is_kept(tree: Path, tmp_path: Path) -> None:
    result = find([tree], tmp_path)
    steps = plan_actions(result, Action.DELETE)
    step = steps[0]
    os.rename(step.keeper, tmp_path / "elsewhere")
    before = tree_digest(tree)
    report = apply_actions([step], manifest=tmp_path / "d.jsonl")
    assert not report.done and "keeper" in report.failed[0][1] and "gone" in report.failed[0][1]
    assert tree_digest(tree) == before


def test_a_symlink_is_never_kept_over_a_real_file_and_deleting_it_removes_only_the_link(
    tree: Path, tmp_path: Path
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "cat.png"
    os.rename(tree / "originals" / "cat.png", target)
    (tree / "originals" / "cat.png").symlink_to(target)  # the best copy, reached only through a link
    result = find([tree], tmp_path)
    group = next(g for g in result.groups if any(m.path.endswith("cat.png") for m in g.members))
    assert not os.path.islink(group.keep)
    report = apply_actions(plan_actions(result, Action.DELETE), manifest=tmp_path / "d.jsonl")
    assert str(tree / "originals" / "cat.png") in {s.path for s in report.done}
    assert target.is_file() and not os.path.lexists(tree / "originals" / "cat.png")


def test_hash_index_and_check_read_a_file_reached_twice_once(tree: Path, tmp_path: Path, cli: object) -> None:
    alias = tmp_path / "alias"
    os.symlink(tree, alias)
    os.symlink("lonely.jpg", tree / "originals" / "a_link.jpg")
    hashed = cli("hash", tree, alias, "--json")  # type: ignore[operator]
    lines = [json.loads(line) for line in hashed.stdout.splitlines()]
    assert len(lines) == len({inode(d["path"]) for d in lines}) == 13  # 13 files, 2 of them unreadable
    assert not any(d["path"].startswith(str(alias)) for d in lines)
    db = tmp_path / "i.db"
    indexed = cli("index", tree, alias, "--db", db, "--on-duplicate", "store")  # type: ignore[operator]
    assert "added 10, copies left out 0, already present 1, failed 2" in indexed.stdout, indexed.stdout  # same bytes
    checked = cli("check", alias, tree, "--db", db, "--json")  # type: ignore[operator]
    assert len(checked.stdout.splitlines()) == 13
