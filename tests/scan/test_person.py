"""A person's word: decisions are a log (the newest wins, names compared in NFC, every one that
cannot apply reported), malformed decision files are refused with exit 2, and a ``not_duplicate``
mark outlives ``--rescan``, cache rebuilds and renames until ``review unmark``."""

from __future__ import annotations

import json
import os
import unicodedata
from pathlib import Path

import pytest

from lookalike.errors import ConfigError
from lookalike.scan import FindOptions, FindResult, find_groups, read_decisions
from tests.images import encode, photo


def run(tree: Path, db: Path, **opts: object) -> FindResult:
    return find_groups([tree], db=db, options=FindOptions(jobs=1, **opts))  # type: ignore[arg-type]


def decisions_file(path: Path, items: list[tuple[str, str]], version: object = 1) -> Path:
    doc = {"lookalike_decisions": version, "decisions": [{"path": p, "decision": d} for p, d in items]}
    path.write_text(json.dumps(doc), encoding="utf-8")
    return path


def group_of(result: FindResult, path: Path) -> set[str]:
    return next(
        (set(m.path for m in g.members) for g in result.groups if str(path) in {m.path for m in g.members}), set()
    )


def keeper_of(result: FindResult, path: Path) -> str:
    return next(g.keep for g in result.groups if str(path) in {m.path for m in g.members})


def test_the_newest_keep_wins_across_runs_and_within_a_file(tree: Path, tmp_path: Path) -> None:
    c1, c2 = tree / "phone" / "boat_small.jpg", tree / "phone" / "boat_mirror.jpg"
    db = tmp_path / "f.db"
    first = run(tree, db, decisions=read_decisions(decisions_file(tmp_path / "d1.json", [(str(c1), "keep")])))
    assert keeper_of(first, c1) == str(c1)
    # what the HTML report exports once c1 is the keeper and the person picks c2: keep c2
    second = run(tree, db, decisions=read_decisions(decisions_file(tmp_path / "d2.json", [(str(c2), "keep")])))
    assert keeper_of(second, c1) == str(c2)
    assert str(c2) not in {m.path for g in second.groups for m in g.removable}
    assert keeper_of(run(tree, db), c1) == str(c2)  # remembered
    # in one file, the later line is the newer decision
    both = [(str(c2), "keep"), (str(c1), "keep")]
    assert keeper_of(
        run(tree, tmp_path / "g.db", decisions=read_decisions(decisions_file(tmp_path / "d3.json", both))), c1
    ) == str(c1)


def test_an_exclude_in_nfc_protects_a_name_stored_in_nfd(tree: Path, tmp_path: Path) -> None:
    nfd = tree / "phone" / unicodedata.normalize("NFD", "café.jpg")
    os.rename(tree / "phone" / "boat_small.jpg", nfd)
    nfc = str(tree / "phone" / unicodedata.normalize("NFC", "café.jpg"))
    assert nfc != str(nfd)
    result = run(
        tree, tmp_path / "f.db", decisions=read_decisions(decisions_file(tmp_path / "d.json", [(nfc, "exclude")]))
    )
    (member,) = [m for g in result.groups for m in g.members if m.path == str(nfd)]
    assert (
        member.excluded
        and not member.eligible
        and member.path not in {m.path for g in result.groups for m in g.removable}
    )
    assert not result.notices  # it names a file of the run


def test_decisions_outside_the_tree_or_on_no_file_are_reported(tree: Path, tmp_path: Path) -> None:
    outside, missing = str(tmp_path / "elsewhere" / "x.jpg"), str(tree / "phone" / "gone.jpg")
    d = read_decisions(decisions_file(tmp_path / "d.json", [(outside, "keep"), (missing, "exclude")]))
    result = run(tree, tmp_path / "f.db", decisions=d)
    (out_note,) = [n for n in result.notices if outside in n]
    (missing_note,) = [n for n in result.notices if missing in n]
    assert "outside the scanned folders" in out_note and "not recorded" in out_note
    assert "names no file of this run" in missing_note


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (b"[" * 200_000 + b"]" * 200_000, "nested too deeply"),
        (b'{"lookalike_decisions": 1, "decisions": [{"path": "\xff\xfe", "decision": "keep"}]}', "not UTF-8"),
        (b'{"lookalike_decisions": 2, "decisions": []}', "version"),
        (b'{"lookalike_decisions": 1, "decisions": [{"path": "a.jpg", "decision": "burn"}]}', "keep or exclude"),
    ],
)
def test_malformed_decision_files_exit_2_with_a_clear_message(
    tree: Path, tmp_path: Path, cli: object, content: bytes, says: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(ConfigError, match=says):
        read_decisions(bad)
    proc = cli("find", tree, "--db", tmp_path / "f.db", "--decisions", bad)  # type: ignore[operator]
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("lookalike: error:") and says in proc.stderr and str(bad) in proc.stderr


def test_a_not_duplicate_mark_survives_rescan_and_rename_until_unmarked(
    tree: Path, tmp_path: Path, cli: object
) -> None:
    db = tmp_path / "f.db"
    cat, copy = tree / "originals" / "cat.png", tree / "phone" / "cat.jpg"  # a group of two
    assert str(copy) in group_of(run(tree, db), cat)
    proc = cli("review", "mark", cat, copy, "not_duplicate", "--db", db)  # type: ignore[operator]
    assert proc.returncode == 0, proc.stderr
    assert str(copy) not in group_of(run(tree, db), cat)
    rescanned = cli("find", tree, "--db", db, "--rescan", "--json")  # type: ignore[operator]
    doc = json.loads(rescanned.stdout)
    assert doc["stats"]["read"] >= 10  # everything was read again: the index rows are new
    grouped = next(
        (set(m["path"] for m in g["members"]) for g in doc["groups"] if str(cat) in {m["path"] for m in g["members"]}),
        set(),
    )
    assert str(copy) not in grouped
    renamed = tree / "phone" / "renamed.jpg"
    os.rename(copy, renamed)
    assert str(renamed) not in group_of(run(tree, db), cat)
    proc = cli("review", "unmark", cat, renamed, "--db", db)  # type: ignore[operator]
    assert proc.returncode == 0 and "mark removed" in proc.stdout, proc.stderr
    assert str(renamed) in group_of(run(tree, db), cat)


def test_an_unreadable_folder_is_an_error_row_and_counts_stay_whole(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = tmp_path / "f.db"
    first = run(tree, db)
    locked = str(tree / "phone" / "edited")
    real = os.scandir

    def scandir(path: str | os.PathLike[str]) -> object:  # as a folder without read permission answers
        if os.fspath(path) == locked:
            raise PermissionError(13, "Permission denied", locked)
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    again = run(tree, db)
    (row,) = [e for e in again.errors if e.path == locked]
    assert "cannot read the folder" in row.message and "Permission denied" in row.message
    s = again.stats
    assert first.stats.cached == 0 and s.read == 0
    assert s.cached == first.stats.read - 1  # every file but the one in the folder that cannot be read
    assert all(v >= 0 for v in (s.files, s.read, s.cached, s.errors, s.duplicates, s.reclaimable_bytes))


def test_identical_copies_are_one_node(tmp_path: Path) -> None:
    root = tmp_path / "many"
    root.mkdir()
    data = encode(photo(160, 120, seed=5), "PNG")
    for i in range(60):
        (root / f"copy{i:03d}.png").write_bytes(data)
    result = find_groups([root], db=tmp_path / "f.db", options=FindOptions(jobs=1))
    (group,) = result.groups
    assert len(group.members) == 60 and len(group.removable) == 59
    assert len(result.pairs) == 59  # one pair per other path, not 60 * 59 / 2
    assert len({p.a for p in result.pairs}) == 1 and all(p.verdict == "identical" for p in result.pairs)


def test_a_decision_on_the_review_list_survives_rescan_too(tree: Path, tmp_path: Path, cli: object) -> None:
    from lookalike.index import Index
    from lookalike.scan.cache import FindCache

    db = tmp_path / "f.db"
    cat, copy = tree / "originals" / "cat.png", tree / "phone" / "cat.jpg"
    assert str(copy) in group_of(run(tree, db), cat)
    with FindCache(db) as cache, Index(db) as index:
        rows = cache.path_rows([str(cat), str(copy)])
        facts = cache.rows(rows.values())
        a, b = (facts[rows[str(p)]].image_pk for p in (cat, copy))
        index.add_review("find", a, b, score=0.9, verdict="similar", evidence="as a person sees it on the list")
        (pair,) = [p for p in index.review(scope="find") if {p.a_pk, p.b_pk} == {a, b}]
    proc = cli("review", "decide", pair.pk, "not_duplicate", "--db", db)  # type: ignore[operator]
    assert proc.returncode == 0, proc.stderr
    assert str(copy) not in group_of(run(tree, db, rescan=True), cat)
