"""Actions act only on what they have just verified: a picture swapped in for a copy or a keeper
(same size, mtime put back, as ``touch -r`` does) is never deleted or linked over, hard links join
only byte-identical files, and a move to another file system leaves nothing half-done."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.scan import Action, FindOptions, FindResult, apply_actions, fileops, find_groups, plan_actions, undo
from tests.images import encode, photo
from tests.scan.conftest import tree_digest

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def bmp(seed: int) -> bytes:
    """A picture as BMP: every picture of one size is as many bytes, so one can stand in for another."""
    return encode(photo(200, 150, seed=seed), "BMP")


@pytest.fixture()
def twins(tmp_path: Path) -> Path:
    """A folder holding one picture twice (the same bytes) and one other picture."""
    root = tmp_path / "photos"
    for rel in ("a/pic.bmp", "b/pic.bmp"):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(bmp(1))
    (root / "c" / "other.png").parent.mkdir()
    (root / "c" / "other.png").write_bytes(encode(photo(160, 120, seed=9), "PNG"))
    return root


def find(root: Path, db: Path) -> FindResult:
    return find_groups([root], db=db, options=FindOptions(jobs=1))


def swap(path: str, data: bytes) -> None:
    """Put another file with ``data`` at ``path`` (a new inode), with the old file's times put back."""
    old = os.stat(path)
    tmp = path + ".new"
    Path(tmp).write_bytes(data)
    os.replace(tmp, path)
    os.utime(path, ns=(old.st_atime_ns, old.st_mtime_ns))  # touch -r
    assert os.stat(path).st_size == old.st_size and os.stat(path).st_mtime_ns == old.st_mtime_ns


@pytest.mark.parametrize("swapped", ["copy", "keeper"])
def test_a_picture_swapped_in_after_the_scan_survives_delete_yes(
    twins: Path, tmp_path: Path, cli: object, swapped: str
) -> None:
    db = tmp_path / "f.db"
    (group,) = find(twins, db).groups  # the cache now holds both files
    victim = group.keep if swapped == "keeper" else group.members[1].path
    other = next(m.path for m in group.members if m.path != victim)
    swap(victim, bmp(2))
    proc = cli("find", twins, "--db", db, "--action", "delete", "--yes", "--json")  # type: ignore[operator]
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["stats"]["read"] >= 1  # the swapped file was read again, not trusted to the cache
    assert Path(victim).read_bytes() == bmp(2)  # the picture swapped in
    assert Path(other).read_bytes() == bmp(1)  # the original
    assert proc.returncode == 0 and not doc["groups"]


@pytest.mark.parametrize("swapped", ["copy", "keeper"])
@pytest.mark.parametrize("action", [Action.DELETE, Action.HARDLINK, Action.TRASH])
def test_a_swap_while_the_prompt_waits_is_refused_by_name(
    twins: Path, tmp_path: Path, swapped: str, action: Action
) -> None:
    (step,) = plan_actions(find(twins, tmp_path / "f.db"), action)
    victim = step.keeper if swapped == "keeper" else step.path
    swap(victim, bmp(2))
    report = apply_actions([step], manifest=tmp_path / "m.jsonl", protected=[step.keeper])
    ((failed, why),) = report.failed
    assert not report.done and victim in why and "changed since it was read" in why
    assert Path(victim).read_bytes() == bmp(2)
    assert Path(step.path if swapped == "keeper" else step.keeper).read_bytes() == bmp(1)
    assert not os.path.samefile(step.path, step.keeper)
    failed_line = json.loads((tmp_path / "m.jsonl").read_text().splitlines()[-1])
    assert failed_line["failed"] == 0 and victim in failed_line["error"]


def test_an_edit_swapped_in_place_is_caught_though_the_inode_stays(twins: Path, tmp_path: Path) -> None:
    (step,) = plan_actions(find(twins, tmp_path / "f.db"), Action.DELETE)
    old = os.stat(step.path)
    with open(step.path, "r+b") as fh:  # the same file, rewritten: same inode, size and (put back) mtime
        fh.write(bmp(2))
    os.utime(step.path, ns=(old.st_atime_ns, old.st_mtime_ns))
    report = apply_actions([step], manifest=tmp_path / "m.jsonl")
    assert report.failed and Path(step.path).read_bytes() == bmp(2)


def test_hardlink_include_edited_leaves_an_edited_copy_alone(tmp_path: Path, cli: object) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    for name, folder in (("coffee.jpg", "library"), ("coffee_small.webp", "uploads")):
        shutil.copy(EXAMPLES / folder / name, root / name)
    webp = (root / "coffee_small.webp").read_bytes()
    proc = cli(  # type: ignore[operator]
        "find", root, "--db", tmp_path / "f.db", "--action", "hardlink", "--yes", "--include-edited", "--json"
    )
    doc = json.loads(proc.stdout)
    assert len(doc["groups"]) == 1 and doc["groups"][0]["keep"].endswith("coffee.jpg")  # they are copies
    assert (root / "coffee_small.webp").read_bytes() == webp
    assert not os.path.samefile(root / "coffee_small.webp", root / "coffee.jpg")
    (held,) = doc["plan"]["held_back"]
    assert held["path"].endswith("coffee_small.webp") and "not the keeper's" in held["why"]
    assert doc["plan"]["steps"] == []


def test_names_of_241_to_255_bytes_can_be_hard_linked(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    names = ["k" * 241 + ".bmp", "c" * 251 + ".bmp"]  # 245 and 255 bytes: no room to add a suffix
    for n in names:
        (root / n).write_bytes(bmp(3))
    steps = plan_actions(find(root, tmp_path / "f.db"), Action.HARDLINK)
    report = apply_actions(steps, manifest=tmp_path / "m.jsonl")
    assert len(report.done) == 1 and not report.failed
    assert os.path.samefile(root / names[0], root / names[1])
    assert sorted(os.listdir(root)) == sorted(names)  # no temporary left beside them


@pytest.fixture()
def other_fs() -> Iterator[Path]:
    """A folder on another file system than the tests' temporary folder (tmpfs), if there is one."""
    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm")
    where = Path(tempfile.mkdtemp(dir="/dev/shm", prefix="lookalike-test-"))
    try:
        if os.stat(where).st_dev == os.stat(tempfile.gettempdir()).st_dev:
            pytest.skip("/dev/shm is on the same file system as the temporary folder")
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


def test_a_move_across_file_systems_and_its_undo_restore_the_tree(twins: Path, tmp_path: Path, other_fs: Path) -> None:
    before = tree_digest(twins)
    (step,) = plan_actions(find(twins, tmp_path / "f.db"), Action.MOVE, to=other_fs / "moved")
    mtime = os.stat(step.path).st_mtime_ns
    report = apply_actions([step], manifest=tmp_path / "m.jsonl")
    assert report.done and not os.path.exists(step.path)
    assert Path(step.target).read_bytes() == bmp(1) and os.stat(step.target).st_mtime_ns == mtime
    assert [n for n in os.listdir(os.path.dirname(step.target)) if n.startswith(".lookalike-")] == []
    restored = undo(tmp_path / "m.jsonl")
    assert len(restored.done) == 1 and not restored.failed
    assert tree_digest(twins) == before


def test_a_full_disk_during_a_cross_file_system_move_leaves_the_source_whole(
    twins: Path, tmp_path: Path, other_fs: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = tree_digest(twins)
    (step,) = plan_actions(find(twins, tmp_path / "f.db"), Action.MOVE, to=other_fs / "moved")
    written: list[int] = []

    def full_disk(fd: int, data: memoryview) -> int:
        if written:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written.append(os.write(fd, data[:1000]))
        return 1000

    monkeypatch.setattr(fileops, "_write", full_disk)
    report = apply_actions([step], manifest=tmp_path / "m.jsonl")
    ((_, why),) = report.failed
    assert "No space left" in why
    assert tree_digest(twins) == before
    assert not os.path.exists(step.target)
    assert os.listdir(os.path.dirname(step.target)) == []  # the truncated copy was removed


_KILLED_MOVE = """
import os, signal, sys
from lookalike.scan import Action, FindOptions, apply_actions, find_groups, plan_actions
from lookalike.scan import fileops
root, db, dest, manifest = sys.argv[1:]
result = find_groups([root], db=db, options=FindOptions(jobs=1))
steps = plan_actions(result, Action.MOVE, to=dest)
def killed(fd, data):
    os.write(fd, data[:1000])
    os.kill(os.getpid(), signal.SIGKILL)  # kill -9 half-way through the copy
fileops._write = killed
apply_actions(steps, manifest=manifest)
"""


def test_undo_removes_what_a_killed_cross_file_system_move_left(twins: Path, tmp_path: Path, other_fs: Path) -> None:
    before = tree_digest(twins)
    dest, manifest = other_fs / "moved", tmp_path / "m.jsonl"
    proc = subprocess.run(
        [sys.executable, "-c", _KILLED_MOVE, str(twins), str(tmp_path / "f.db"), str(dest), str(manifest)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == -9, proc.stderr
    (left,) = [p for p in dest.rglob(".lookalike-*")]  # a truncated copy under a temporary name
    assert left.stat().st_size == 1000
    assert tree_digest(twins) == before
    report = undo(manifest)
    assert not report.failed and not report.done  # nothing was moved, so nothing is put back
    assert not left.exists()
    assert tree_digest(twins) == before


def test_held_back_names_are_not_counted_as_reclaimable(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "keep").mkdir(parents=True)
    (root / "keep" / "pic.bmp").write_bytes(bmp(4))
    (root / "copy.bmp").write_bytes(bmp(4))
    os.link(root / "copy.bmp", root / "copy-link.bmp")  # the copy has another name: deleting one frees nothing
    result = find_groups([root], db=tmp_path / "f.db", options=FindOptions(jobs=1, keep_in=(str(root / "keep"),)))
    assert len(result.groups) == 1 and len(result.groups[0].members) == 2
    assert result.stats.reclaimable_bytes == 0 and result.stats.duplicates == 0


def test_undo_refuses_a_moved_file_that_changed_at_its_target(twins: Path, tmp_path: Path) -> None:
    (step,) = plan_actions(find(twins, tmp_path / "f.db"), Action.MOVE, to=tmp_path / "moved")
    apply_actions([step], manifest=tmp_path / "m.jsonl")
    swap(step.target, bmp(2))
    report = undo(tmp_path / "m.jsonl")
    ((_, why),) = report.failed
    assert step.target in why and "changed since it was read" in why
    assert not os.path.exists(step.path) and Path(step.target).read_bytes() == bmp(2)


def test_undo_finishes_a_move_killed_between_its_copy_and_the_removal_of_its_source(
    twins: Path, tmp_path: Path
) -> None:
    before = tree_digest(twins)
    (step,) = plan_actions(find(twins, tmp_path / "f.db"), Action.MOVE, to=tmp_path / "moved")
    manifest = tmp_path / "m.jsonl"
    apply_actions([step], manifest=manifest)
    # as a kill -9 after the copy's rename and before the source's removal leaves it: in both
    # places, and the manifest without the step's "done" line
    shutil.copy2(step.target, step.path)
    lines = manifest.read_text().splitlines()
    manifest.write_text("\n".join(line for line in lines if '"done"' not in line) + "\n")
    report = undo(manifest)
    assert len(report.done) == 1 and not report.failed
    assert not os.path.exists(step.target) and tree_digest(twins) == before
