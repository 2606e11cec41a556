"""``lookalike find``, ``undo``, ``plot`` and ``review mark`` as a user runs them (real subprocesses)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from PIL import Image

from tests.scan.conftest import BAD, tree_digest


def test_find_json_lists_groups_pairs_stats_and_errors(tree: Path, tmp_path: Path, cli: object) -> None:
    proc = cli("find", tree, "--db", tmp_path / "c.db", "--json", "--csv", tmp_path / "r.csv")  # type: ignore[operator]
    assert proc.returncode == 1  # some files could not be read; the rest were processed
    assert "Traceback" not in proc.stderr
    doc = json.loads(proc.stdout)
    assert len(doc["groups"]) == 3 and doc["pairs"] and doc["stats"]["files"] == 13
    assert sorted(os.path.relpath(e["path"], tree) for e in doc["errors"]) == sorted(BAD)
    with open(tmp_path / "r.csv", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["group"] != "error" for r in rows) == sum(len(g["members"]) for g in doc["groups"])
    assert sum(r["keep"] == "yes" for r in rows) == 3
    assert {r["path"] for r in rows if r["group"] == "error"} == {e["path"] for e in doc["errors"]}


def test_destructive_action_without_terminal_or_yes_is_refused(tree: Path, tmp_path: Path, cli: object) -> None:
    before = tree_digest(tree)
    proc = cli("find", tree, "--db", tmp_path / "c.db", "--action", "delete")  # type: ignore[operator]
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("lookalike: error:") and "--yes" in proc.stderr
    assert tree_digest(tree) == before


def test_move_with_yes_then_undo(tree: Path, tmp_path: Path, cli: object) -> None:
    before = tree_digest(tree)
    dest = tmp_path / "dupes"
    proc = cli("find", tree, "--db", tmp_path / "c.db", "--action", "move", "--to", dest, "--yes")  # type: ignore[operator]
    assert proc.returncode == 1, proc.stderr  # the two unreadable files
    assert "undo with: lookalike undo" in proc.stdout
    manifest = proc.stdout.split("undo with: lookalike undo ")[1].split()[0]
    assert Path(manifest).is_file() and tree_digest(tree) != before
    undone = cli("undo", manifest)  # type: ignore[operator]
    assert undone.returncode == 0, undone.stderr
    assert tree_digest(tree) == before


def test_unknown_action_and_bad_keep_are_one_line_errors(tree: Path, tmp_path: Path, cli: object) -> None:
    for args in (["--action", "shred"], ["--keep", "prettiest"], ["--action", "move"]):
        proc = cli("find", tree, "--db", tmp_path / "c.db", *args)  # type: ignore[operator]
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr


def test_plot_draws_the_picture_and_its_duplicates(tree: Path, tmp_path: Path, cli: object) -> None:
    db = tmp_path / "c.db"
    cli("find", tree, "--db", db)  # type: ignore[operator]
    out = tmp_path / "boat.png"
    proc = cli("plot", tree / "originals" / "boat.png", "--db", db, "-o", out)  # type: ignore[operator]
    assert proc.returncode == 0, proc.stderr
    assert "3 duplicates" in proc.stdout
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width >= 4 * 300 and im.height >= 300
    # a picture never scanned is checked against the scope instead
    fresh = tmp_path / "fresh.jpg"
    Image.open(tree / "originals" / "cat.png").convert("RGB").resize((200, 200)).save(fresh, quality=85)
    proc = cli("plot", fresh, "--db", db, "-o", tmp_path / "cat.png")  # type: ignore[operator]
    assert proc.returncode == 0 and "2 duplicates" in proc.stdout, proc.stdout + proc.stderr


def test_review_mark_keeps_a_pair_apart(tree: Path, tmp_path: Path, cli: object) -> None:
    db = tmp_path / "c.db"
    first = json.loads(cli("find", tree, "--db", db, "--json").stdout)  # type: ignore[operator]
    cat = next(g for g in first["groups"] if g["keep"].endswith("cat.png"))
    other = cat["members"][1]["path"]
    proc = cli("review", "--db", db, "mark", cat["keep"], other, "not_duplicate")  # type: ignore[operator]
    assert proc.returncode == 0, proc.stderr
    again = json.loads(cli("find", tree, "--db", db, "--json").stdout)  # type: ignore[operator]
    assert not any(g["keep"].endswith("cat.png") for g in again["groups"])
    assert len(again["groups"]) == 2


def test_json_plan_of_a_real_run_says_what_became_of_each_step(tree: Path, tmp_path: Path, cli: object) -> None:
    proc = cli("find", tree, "--db", tmp_path / "c.db", "--action", "trash", "--yes", "--json")  # type: ignore[operator]
    assert proc.returncode == 1, proc.stderr  # the two unreadable files
    plan = json.loads(proc.stdout)["plan"]
    assert plan["action"] == "trash" and plan["dry_run"] is False and plan["manifest"]
    assert plan["steps"] and all(s["status"] == "done" for s in plan["steps"])
    for s in plan["steps"]:
        assert not os.path.exists(s["source"]) and os.path.isfile(s["destination"]) and os.path.isfile(s["keeper"])
        assert s["why"].startswith("a copy of the keeper")
    assert "trash:" in proc.stderr  # the action lines go to stderr: stdout holds the document alone
