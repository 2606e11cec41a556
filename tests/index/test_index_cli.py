"""The index commands as a user runs them: ``lookalike index``, ``check``, ``remove``, ``review``, ``stats``,
each a real subprocess on a real SQLite file."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from lookalike.index import Index
from tests.index.conftest import (
    CliRunner,
    cli_command,
    cli_env,
    jpeg,
    no_traceback,
    picture,
    png,
    similar_pair,
    with_text_chunk,
)

SUMMARY = re.compile(r"^added (\d+), copies left out (\d+), already present (\d+), failed (\d+)$", re.MULTILINE)
STATS = re.compile(r"scopes (\d+), images (\d+), files (\d+), review pending (\d+), decided (\d+)")


def summary(proc: subprocess.CompletedProcess[str]) -> tuple[int, int, int]:
    """(added, already present, failed) from ``lookalike index``'s last line (no copy left out)."""
    found = SUMMARY.findall(proc.stdout)
    assert found, f"no summary line in {proc.stdout!r} (stderr {proc.stderr!r})"
    added, left_out, present, failed = found[-1]
    assert left_out == "0", proc.stdout
    return int(added), int(present), int(failed)


def stats(run_cli: CliRunner, db: Path) -> tuple[int, ...]:
    """(scopes, images, files, review pending, decided) as ``lookalike stats`` prints them."""
    proc = run_cli("stats", "--db", db)
    assert proc.returncode == 0, proc.stderr
    found = STATS.search(proc.stdout)
    assert found, proc.stdout
    return tuple(int(g) for g in found.groups())


def json_lines(proc: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """stdout of a ``--json`` command, one object per line (and nothing else on stdout)."""
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.fixture
def library(tmp_path: Path) -> Path:
    """A folder of four unrelated pictures, one of them in a subfolder."""
    root = tmp_path / "library"
    (root / "sub").mkdir(parents=True)
    (root / "a.jpg").write_bytes(jpeg(picture(1)))
    (root / "b.png").write_bytes(png(picture(2, 320, 240)))
    (root / "c.jpg").write_bytes(jpeg(picture(3)))
    (root / "sub" / "d.jpg").write_bytes(jpeg(picture(4)))
    return root


def test_index_reports_added_already_present_and_failed(run_cli: CliRunner, library: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"

    first = run_cli("index", library, "--db", db, "--jobs", "1")
    (library / "e.jpg").write_bytes(jpeg(picture(5)))
    (library / "copy-of-a.jpg").write_bytes((library / "a.jpg").read_bytes())
    # featureless: no keypoints, and with two jobs its pixels stay in the worker that found none
    (library / "flat.png").write_bytes(png(Image.new("RGB", (200, 150), (90, 140, 200))))
    second = run_cli("index", library, "--db", db, "--jobs", "2")

    assert first.returncode == 0, first.stderr
    assert summary(first) == (4, 0, 0)
    assert second.returncode == 0, second.stderr
    assert summary(second) == (2, 5, 0)
    assert stats(run_cli, db) == (1, 6, 6, 0, 0)


def test_unreadable_files_are_reported_one_by_one_and_the_rest_indexed(
    run_cli: CliRunner, library: Path, tmp_path: Path
) -> None:
    db = tmp_path / "index.sqlite"
    (library / "notes.jpg").write_text("this is a text file, not a JPEG\n")
    (library / "sub" / "empty.png").write_bytes(b"")

    proc = run_cli("index", library, "--db", db, "--jobs", "1")

    no_traceback(proc)
    assert proc.returncode == 1
    assert summary(proc) == (4, 0, 2)
    errors = proc.stderr.splitlines()
    assert len(errors) == 2, proc.stderr
    assert any("notes.jpg" in e and "error" in e for e in errors)
    assert any("empty.png" in e and "error" in e for e in errors)
    # the index is still usable
    check = run_cli("check", library / "c.jpg", "--db", db, "--json", "--jobs", "1")
    assert check.returncode == 0, check.stderr
    assert [line["verdict"] for line in json_lines(check)] == ["identical"]


def test_check_json_answers_each_input_on_one_line(run_cli: CliRunner, library: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    assert run_cli("index", library, "--db", db, "--jobs", "1").returncode == 0
    queries = tmp_path / "queries"
    queries.mkdir()
    exact = queries / "exact.jpg"
    exact.write_bytes((library / "a.jpg").read_bytes())
    smaller = queries / "smaller.jpg"
    smaller.write_bytes(jpeg(picture(1).resize((240, 180), Image.Resampling.LANCZOS), 80))
    stranger = queries / "stranger.jpg"
    stranger.write_bytes(jpeg(picture(9)))

    proc = run_cli("check", exact, smaller, stranger, "--db", db, "--json", "--jobs", "1")

    assert proc.returncode == 0, proc.stderr
    lines = json_lines(proc)
    assert [line["path"] for line in lines] == [str(exact), str(smaller), str(stranger)]
    assert [line["verdict"] for line in lines] == ["identical", "near_duplicate", "unique"]
    for line in lines:
        assert set(line) == {"path", "verdict", "matches"}
        scores = [m["score"] for m in line["matches"]]
        assert scores == sorted(scores, reverse=True)
        for m in line["matches"]:
            assert set(m) == {"id", "rendition", "score", "verdict", "evidence", "source", "path", "semantic"}
            assert 0.0 <= m["score"] <= 1.0
    a_id = lines[0]["matches"][0]["id"]
    assert lines[0]["matches"][0]["source"].endswith("a.jpg")
    assert lines[1]["matches"][0]["id"] == a_id
    assert lines[1]["matches"][0]["verdict"] == "near_duplicate"
    assert all(m["verdict"] == "different" for m in lines[2]["matches"])


def test_check_reports_an_unreachable_url_and_answers_the_rest(
    run_cli: CliRunner, library: Path, tmp_path: Path
) -> None:
    db = tmp_path / "index.sqlite"
    assert run_cli("index", library, "--db", db, "--jobs", "1").returncode == 0
    url = "http://127.0.0.1:9/x.jpg"
    missing = tmp_path / "no-such-file.jpg"

    proc = run_cli("check", library / "a.jpg", url, missing, library / "c.jpg", "--db", db, "--json", "--jobs", "1")

    no_traceback(proc)
    assert proc.returncode == 1
    lines = json_lines(proc)
    assert [line["path"] for line in lines] == [str(library / "a.jpg"), url, str(missing), str(library / "c.jpg")]
    assert lines[0]["verdict"] == lines[3]["verdict"] == "identical"
    for failed in (lines[1], lines[2]):
        assert "verdict" not in failed
        assert failed["error"]["code"] == "fetch_failed"
        assert failed["error"]["message"]


def test_check_is_confined_to_its_scope(run_cli: CliRunner, library: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    assert summary(run_cli("index", library / "a.jpg", "--db", db, "--scope", "alice", "--jobs", "1")) == (1, 0, 0)

    theirs = run_cli("check", library / "a.jpg", "--db", db, "--scope", "bob", "--json", "--jobs", "1")
    mine = run_cli("check", library / "a.jpg", "--db", db, "--scope", "alice", "--json", "--jobs", "1")

    assert json_lines(theirs) == [{"path": str(library / "a.jpg"), "verdict": "unique", "matches": []}]
    assert json_lines(mine)[0]["verdict"] == "identical"


def test_remove_and_stats(run_cli: CliRunner, library: Path, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    assert run_cli("index", library, "--db", db, "--jobs", "1").returncode == 0
    with Index(db) as ix:
        image_id = ix.check(library / "a.jpg").matches[0].image_id

    removed = run_cli("remove", image_id, "--db", db)

    assert removed.returncode == 0, removed.stderr
    assert image_id in removed.stdout
    with Index(db) as ix:
        assert ix.check(library / "a.jpg").verdict == "unique"
        assert ix.check(library / "c.jpg").verdict == "identical"
    assert stats(run_cli, db) == (1, 3, 3, 0, 0)
    again = run_cli("remove", image_id, "--db", db)
    no_traceback(again)
    assert again.returncode != 0
    assert again.stderr.count("\n") == 1 and image_id in again.stderr


def test_review_lists_a_similar_pair_and_records_a_decision(run_cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    a, b = similar_pair()
    folder = tmp_path / "scene"
    folder.mkdir()
    (folder / "1-wide.jpg").write_bytes(a)
    (folder / "2-reframed.jpg").write_bytes(b)
    assert summary(run_cli("index", folder, "--db", db, "--jobs", "1")) == (2, 0, 0)
    wide, reframed = json_lines(
        run_cli("check", folder / "1-wide.jpg", folder / "2-reframed.jpg", "--db", db, "--json", "--jobs", "1")
    )
    a_id, b_id = wide["matches"][0]["id"], reframed["matches"][0]["id"]

    listed = run_cli("review", "--db", db)

    assert listed.returncode == 0, listed.stderr
    (line,) = [line for line in listed.stdout.splitlines() if line.startswith("#")]  # one pair
    assert a_id in line and b_id in line and "pending" in line
    pair = line.split()[0].lstrip("#")

    decided = run_cli("review", "--db", db, "decide", pair, "not_duplicate")

    assert decided.returncode == 0, decided.stderr
    assert "not_duplicate" in decided.stdout
    assert run_cli("review", "--db", db).stdout.strip() == "nothing to review"
    (kept,) = json_lines(run_cli("review", "--db", db, "--all", "--json"))
    assert (str(kept["pair_id"]), kept["verdict"], kept["decision"]) == (pair, "similar", "not_duplicate")
    assert {kept["a"], kept["b"]} == {a_id, b_id}
    later = json_lines(run_cli("check", folder / "2-reframed.jpg", "--db", db, "--json", "--jobs", "1"))[0]
    assert later["verdict"] == "identical"
    assert {m["id"]: m["verdict"] for m in later["matches"]}.get(a_id, "different") == "different"
    unknown = run_cli("review", "--db", db, "decide", "999", "duplicate")
    no_traceback(unknown)
    assert unknown.returncode != 0 and "999" in unknown.stderr


def test_same_pixels_through_the_cli(run_cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    im = picture(6)
    stored = tmp_path / "stored" / "drawing.png"
    stored.parent.mkdir()
    stored.write_bytes(png(im))
    resaved = tmp_path / "resaved.png"
    resaved.write_bytes(with_text_chunk(im))
    assert run_cli("index", stored, "--db", db, "--jobs", "1").returncode == 0

    (line,) = json_lines(run_cli("check", resaved, "--db", db, "--json", "--jobs", "1"))

    assert line["verdict"] == "same_pixels"
    assert line["matches"][0]["source"].endswith("drawing.png")


def test_same_pixels_is_found_from_another_working_folder(run_cli: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    im = picture(6)
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "drawing.png").write_bytes(png(im))
    (tmp_path / "elsewhere").mkdir()
    resaved = tmp_path / "elsewhere" / "resaved.png"
    resaved.write_bytes(with_text_chunk(im))
    assert run_cli("index", "photos", "--db", db, "--jobs", "1", cwd=tmp_path).returncode == 0

    (line,) = json_lines(run_cli("check", resaved.name, "--db", db, "--json", "--jobs", "1", cwd=resaved.parent))

    assert line["verdict"] == "same_pixels"


def _bad_databases(tmp_path: Path) -> dict[str, Path]:
    folder = tmp_path / "a-folder.sqlite"
    folder.mkdir()
    text = tmp_path / "notes.sqlite"
    text.write_text("shopping list: milk, eggs, a better database\n" * 50)
    return {"folder": folder, "text": text}


def test_a_bad_database_gets_one_error_line_from_every_command(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(jpeg(picture(1)))
    commands = {
        "index": ["index", str(image), "--jobs", "1"],
        "check": ["check", str(image), "--jobs", "1"],
        "stats": ["stats"],
        "remove": ["remove", "abc"],
        "review": ["review"],
    }
    runs = {}
    for kind, db in _bad_databases(tmp_path).items():
        for name, args in commands.items():
            if kind == "text" and name in ("stats", "remove"):  # the same opening path as review: spare the CPU
                continue
            argv = [*args, "--db", str(db)]
            runs[kind, name] = subprocess.Popen(
                [*cli_command(), *argv], cwd=tmp_path, env=cli_env(), text=True,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
        runs[kind, "decide"] = subprocess.Popen(
            [*cli_command(), "review", "--db", str(db), "decide", "1", "duplicate"], cwd=tmp_path, env=cli_env(),
            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )  # fmt: skip

    for (kind, name), p in runs.items():
        out, err = p.communicate(timeout=120)
        assert "Traceback" not in out + err, (kind, name, err)
        assert p.returncode != 0, (kind, name, out)
        lines = err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("lookalike: error:"), (kind, name, err)
    assert (tmp_path / "notes.sqlite").read_text().startswith("shopping list")
