"""``find_groups`` on a real folder: the groups a person expects, the keeper the policy picks,
unreadable files listed, and a second run that reads only what changed."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from PIL import Image

from lookalike.errors import ConfigError
from lookalike.index import Decision
from lookalike.scan import FindOptions, FindResult, find_groups, mark_pair, parse_keep
from lookalike.scan.cache import StoredPair
from lookalike.scan.groups import cliques, components
from lookalike.scan.linking import link_groups
from tests.images import encode, photo
from tests.scan.conftest import BAD, GROUPS, SINGLES, exif_jpeg

FAST = FindOptions(jobs=1)


def groups_of(result: FindResult, root: Path) -> list[set[str]]:
    """The groups as sets of paths relative to ``root``."""
    return [{os.path.relpath(m.path, root) for m in g.members} for g in result.groups]


def group_with(result: FindResult, path: Path) -> list[str]:
    for g in result.groups:
        if str(path) in {m.path for m in g.members}:
            return [m.path for m in g.members]
    return []


@pytest.fixture(scope="module")
def found(pristine_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> FindResult:
    return find_groups([pristine_tree], db=tmp_path_factory.mktemp("db") / "find.db", options=FAST)


def test_copies_are_grouped_and_nothing_else(found: FindResult, pristine_tree: Path) -> None:
    got = sorted(groups_of(found, pristine_tree), key=sorted)
    assert got == sorted((set(v) for v in GROUPS.values()), key=sorted)
    grouped = {m.path for g in found.groups for m in g.members}
    for single in SINGLES:
        assert str(pristine_tree / single) not in grouped


def test_every_member_says_why_it_is_there(found: FindResult) -> None:
    for g in found.groups:
        assert g.members[0].path == g.keep and g.members[0].keep
        for m in g.members[1:]:
            assert m.verdict in {"identical", "same_pixels", "near_duplicate"}
            assert 0.0 < m.score <= 1.0 and m.evidence and m.match in {x.path for x in g.members}
    boat = next(g for g in found.groups if g.keep.endswith("boat.png"))
    mirror = next(m for m in boat.members if m.path.endswith("boat_mirror.jpg"))
    assert "mirrored" in mirror.evidence


def test_keeper_policy_default(found: FindResult, pristine_tree: Path) -> None:
    keeps = {os.path.relpath(g.keep, pristine_tree) for g in found.groups}
    # boat: the original (the small and mirrored JPEGs derive from it), and of its two identical
    # files the one modified first (the tree writes originals/ first; equal times fall back on the
    # path); cat: same size, the lossless PNG before the JPEG; hill: the turned copy has as many
    # pixels, so the better-kept encoding (JPEG quality 95 over 90) wins
    boat = os.path.join(pristine_tree, "originals/boat.png"), os.path.join(pristine_tree, "backup/boat.png")
    older = min(boat, key=lambda p: (os.stat(p).st_mtime_ns, p))
    assert keeps == {os.path.relpath(older, pristine_tree), "originals/cat.png", "originals/hill.jpg"}
    for g in found.groups:
        assert [m.keep for m in g.members].count(True) == 1


def test_bad_files_are_listed_and_do_not_stop_the_run(found: FindResult, pristine_tree: Path) -> None:
    errors = {os.path.relpath(e.path, pristine_tree): e for e in found.errors}
    assert set(errors) == set(BAD)
    assert errors["phone/broken.jpg"].code in {"truncated_image", "corrupt_image"}
    assert errors["phone/empty.png"].code == "not_an_image"
    assert "empty" in errors["phone/empty.png"].message
    assert found.stats.errors == 2 and found.stats.files == 13


def test_json_document_has_the_promised_shape(found: FindResult) -> None:
    doc = found.to_dict()
    assert set(doc) == {"groups", "pairs", "stats", "errors", "aliases", "notices"}
    assert {"keep", "members"} <= set(doc["groups"][0])
    assert {"path", "score", "verdict", "evidence"} <= set(doc["groups"][0]["members"][0])
    assert {"a", "b", "score", "verdict"} == set(doc["pairs"][0])
    # one file's error in the one error shape, as `hash --json` and `check --json` print it
    assert {"path", "error"} == set(doc["errors"][0]) and {"code", "message"} == set(doc["errors"][0]["error"])
    linked = {frozenset((p["a"], p["b"])) for p in doc["pairs"]}
    boat = next(g for g in doc["groups"] if g["keep"].endswith("boat.png"))
    paths = [m["path"] for m in boat["members"]]
    assert frozenset((paths[0], paths[1])) in linked  # the identical twins


def test_keep_in_folder_is_always_kept(tree: Path, tmp_path: Path) -> None:
    opts = FindOptions(jobs=1, keep_in=(str(tree / "phone"),))
    result = find_groups([tree], db=tmp_path / "k.db", options=opts)
    for g in result.groups:
        for m in g.members:
            if m.path.startswith(str(tree / "phone") + os.sep):
                assert m.keep, m.path
        assert g.keep.startswith(str(tree / "phone"))


def test_keep_policy_is_configurable(tmp_path: Path) -> None:
    root = tmp_path / "dated"
    root.mkdir()
    im = photo(320, 240, seed=21)
    (root / "a_new.jpg").write_bytes(exif_jpeg(im, "2021:06:01 10:00:00"))
    (root / "b_old.jpg").write_bytes(exif_jpeg(im, "2009:01:02 03:04:05"))
    (root / "c_big.jpg").write_bytes(exif_jpeg(im, "2015:01:01 00:00:00", quality=98))
    db = tmp_path / "d.db"
    oldest = find_groups([root], db=db, options=FindOptions(jobs=1, keep=parse_keep("oldest")))
    assert oldest.groups[0].keep == str(root / "b_old.jpg")
    assert oldest.groups[0].members[0].taken_at == "2009-01-02T03:04:05"
    newest = find_groups([root], db=db, options=FindOptions(jobs=1, keep=parse_keep("newest")))
    assert newest.groups[0].keep == str(root / "a_new.jpg")
    for age, name in enumerate(("c_big.jpg", "b_old.jpg", "a_new.jpg")):  # a_new.jpg written first
        os.utime(root / name, (1.7e9 - 100 * age, 1.7e9 - 100 * age))
    default = find_groups([root], db=db, options=FAST)
    # same size in pixels, all lossy, no sign of which was made from which: the file written first
    # (a re-save at a higher quality setting, like c_big's 98, adds nothing back)
    assert default.groups[0].keep == str(root / "a_new.jpg")
    with pytest.raises(ConfigError, match="unknown keep criterion"):
        parse_keep("resolution,prettiest")


def test_second_run_reads_only_what_changed(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "again.db"
    first = find_groups([tree], db=db, options=FAST)
    assert first.stats.read == 13
    second = find_groups([tree], db=db, options=FAST)
    assert second.stats.read == 0 and second.stats.cached == 13
    assert groups_of(second, tree) == groups_of(first, tree)
    assert [e.path for e in second.errors] == [e.path for e in first.errors]
    # a new picture and a new copy of an old one: only those are read, and the copy joins its group
    (tree / "new").mkdir()
    (tree / "new" / "fresh.png").write_bytes(encode(photo(300, 200, seed=31), "PNG"))
    cat = Image.open(tree / "originals" / "cat.png")
    (tree / "new" / "cat_small.jpg").write_bytes(encode(cat.resize((180, 180)), "JPEG", quality=80))
    third = find_groups([tree], db=db, options=FAST)
    assert third.stats.read == 2
    assert str(tree / "new" / "cat_small.jpg") in group_with(third, tree / "phone" / "cat.jpg")
    # a deleted file leaves its group
    (tree / "phone" / "cat.jpg").unlink()
    fourth = find_groups([tree], db=db, options=FAST)
    assert fourth.stats.read == 0
    assert sorted(group_with(fourth, tree / "originals" / "cat.png")) == sorted(
        [str(tree / "originals" / "cat.png"), str(tree / "new" / "cat_small.jpg")]
    )


def test_rewritten_file_is_read_again_and_regrouped(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "rw.db"
    find_groups([tree], db=db, options=FAST)
    target = tree / "phone" / "cat.jpg"
    target.write_bytes(encode(photo(360, 360, seed=99), "JPEG", quality=88))  # another picture entirely
    os.utime(target, ns=(1_000_000_000, 1_000_000_000))
    again = find_groups([tree], db=db, options=FAST)
    assert again.stats.read == 1
    assert group_with(again, target) == []


def test_touched_file_with_same_bytes_is_not_decoded_again(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    first = find_groups([tree], db=db, options=FAST)
    os.utime(tree / "phone" / "cat.jpg", ns=(2_000_000_000, 2_000_000_000))
    (tree / "originals" / "cat.png").rename(tree / "originals" / "cat_renamed.png")
    again = find_groups([tree], db=db, options=FAST)
    assert again.stats.read == 0  # both known by their SHA-256
    assert len(again.groups) == len(first.groups)
    assert str(tree / "originals" / "cat_renamed.png") in group_with(again, tree / "phone" / "cat.jpg")


def test_not_duplicate_decision_sticks(tree: Path, tmp_path: Path) -> None:
    db = tmp_path / "dec.db"
    find_groups([tree], db=db, options=FAST)
    mark_pair(tree / "originals" / "cat.png", tree / "phone" / "cat.jpg", Decision.NOT_DUPLICATE, db=db)
    after = find_groups([tree], db=db, options=FAST)
    assert group_with(after, tree / "phone" / "cat.jpg") == []
    assert not any(
        {p.a, p.b} == {str(tree / "originals" / "cat.png"), str(tree / "phone" / "cat.jpg")} for p in after.pairs
    )
    mark_pair(tree / "originals" / "cat.png", tree / "originals" / "lonely.jpg", Decision.DUPLICATE, db=db)
    linked = find_groups([tree], db=db, options=FAST)
    assert str(tree / "originals" / "lonely.jpg") in group_with(linked, tree / "originals" / "cat.png")


def test_strict_groups_are_cliques(tree: Path, tmp_path: Path) -> None:
    result = find_groups([tree], db=tmp_path / "s.db", options=FindOptions(jobs=1, strict=True))
    # files of the same bytes are one node: listed as its first path identical to each other one
    node = {p.b: p.a for p in result.pairs if p.verdict == "identical"}
    linked = {frozenset((node.get(p.a, p.a), node.get(p.b, p.b))) for p in result.pairs if p.verdict != "similar"}
    assert result.groups
    for g in result.groups:
        paths = [node.get(m.path, m.path) for m in g.members]
        for i, a in enumerate(paths):
            for b in paths[i + 1 :]:
                assert a == b or frozenset((a, b)) in linked, (a, b)


def test_grouping_functions() -> None:
    edges = [(1, 2), (2, 3), (10, 11), (3, 99)]  # 99 is not a node: ignored
    assert components([1, 2, 3, 4, 10, 11], edges) == [[1, 2, 3], [10, 11]]
    # a chain 1-2-3 without 1-3 is not a clique: 2 goes with 1 (first in order), 3 is left alone
    assert cliques([1, 2, 3], [(1, 2), (2, 3)]) == [[1, 2]]
    assert cliques([1, 2, 3, 4], [(1, 2), (2, 3), (1, 3), (3, 4)], order=[4, 3, 2, 1]) == [[1, 2], [3, 4]]


def test_missing_folder_is_an_error_entry(tmp_path: Path) -> None:
    result = find_groups([tmp_path / "nope.jpg"], db=tmp_path / "m.db", options=FAST)
    assert result.groups == () and len(result.errors) == 1
    assert result.errors[0].code == "fetch_failed"


def test_local_links_attach_files_but_never_merge_groups() -> None:
    def pair(a: int, b: int, bits: int, score: float = 0.9) -> tuple[tuple[int, int], StoredPair]:
        return (a, b), StoredPair(a, b, score, "near_duplicate", "evidence", bits)

    links = dict([
        pair(1, 2, 3), pair(2, 3, 6),  # picture A and two edits: hash links
        pair(10, 11, 2),  # picture B and an edit
        pair(3, 11, 40, 1.0),  # A's captioned copy and B's share the caption bar: local only
        pair(20, 1, 30), pair(20, 2, 35),  # a screenshot of A: two local links to A's group
        pair(21, 1, 30), pair(21, 10, 31),  # one link to each group: left alone
        pair(30, 31, 33, 0.8), pair(31, 32, 33, 0.95),  # three files only locally linked
    ])  # fmt: skip
    groups = link_groups([1, 2, 3, 10, 11, 20, 21, 30, 31, 32], links)
    assert groups == [[1, 2, 3, 20], [10, 11], [31, 32]]


def test_groups_joined_by_several_files_merge() -> None:
    def pair(a: int, b: int, bits: int) -> tuple[tuple[int, int], StoredPair]:
        return (a, b), StoredPair(a, b, 0.9, "near_duplicate", "evidence", bits)

    # 1, 2: a picture and its resized copy; 5, 6: two crops of it, alike by hashes, far from 1 and 2
    links = dict([pair(1, 2, 2), pair(5, 6, 4), pair(1, 5, 30), pair(2, 6, 28)])
    assert link_groups([1, 2, 5, 6], links) == [[1, 2, 5, 6]]
    # one crop matched twice is not enough
    links = dict([pair(1, 2, 2), pair(5, 6, 4), pair(1, 5, 30), pair(2, 5, 28)])
    assert link_groups([1, 2, 5, 6], links) == [[1, 2], [5, 6]]
