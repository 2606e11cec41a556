"""One settings file, one answer: ``compare``, ``check``, ``find`` (with ``--settings`` or
``$LOOKALIKE_SETTINGS``) and a real ``lookalike serve`` read the same thresholds through one loader,
and give the sample crop (``rocket_cropped.png``, a crop of ``rocket.jpg`` to 68 %) one score."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from lookalike.cli.settings import settings_from, thresholds_from
from lookalike.config import LearnedSettings, Thresholds
from lookalike.errors import ConfigError
from tests.cli.conftest import Run
from tests.images import EXAMPLES

ORIGINAL = EXAMPLES / "library" / "rocket.jpg"
CROP = EXAMPLES / "uploads" / "rocket_cropped.png"
DUPLICATES = {"near_duplicate", "same_pixels", "exact"}


def _settings(path: Path, near: float, similar: float) -> Path:
    thresholds = {"near_duplicate": near, "similar": similar}
    path.write_text(json.dumps({"format": "lookalike-settings/1", "thresholds": thresholds}))
    return path


def _one(result: Any) -> dict[str, Any]:
    assert result.returncode in (0, 1), result.stderr
    (line,) = [json.loads(x) for x in result.stdout.splitlines()]
    return line  # type: ignore[no-any-return]


def _pair(cli: Run, folder: Path, db: Path, *extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """``find``'s JSON document for the folder holding the pair."""
    result = cli("find", folder, "--db", db, "--json", "--jobs", "1", *extra, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_a_strict_settings_file_turns_the_crop_into_similar_in_every_command(cli: Run, tmp_path: Path) -> None:
    strict = _settings(tmp_path / "strict.json", 0.95, 0.30)
    by_default = _one(cli("compare", ORIGINAL, CROP, "--json"))
    assert by_default["verdict"] == "near_duplicate" and 0.30 <= by_default["score"] < 0.95
    score = by_default["score"]

    judged = _one(cli("compare", ORIGINAL, CROP, "--json", "--settings", strict))
    assert (judged["verdict"], round(judged["score"], 4)) == ("similar", round(score, 4))

    db = tmp_path / "index.sqlite"
    assert cli("index", ORIGINAL, "--db", db, "--jobs", "1").returncode == 0
    checked_default = _one(cli("check", CROP, "--db", db, "--json", "--jobs", "1"))
    assert checked_default["verdict"] == "near_duplicate"
    for extra, env in ((("--settings", str(strict)), None), ((), {"LOOKALIKE_SETTINGS": str(strict)})):
        checked = _one(cli("check", CROP, "--db", db, "--json", "--jobs", "1", *extra, env=env))
        assert checked["verdict"] == "similar"
        assert abs(checked["matches"][0]["score"] - score) <= 0.01

    folder = tmp_path / "pair"
    folder.mkdir()
    for picture in (ORIGINAL, CROP):
        shutil.copy(picture, folder / picture.name)
    grouped = _pair(cli, folder, tmp_path / "find.sqlite")
    assert len(grouped["groups"]) == 1
    (pair,) = grouped["pairs"]
    # find compares the two files' stored features; compare and check also fit the query's coarse
    # view (features at 0.6 of its side), which may add an inlier or two: a point of score at most
    assert pair["verdict"] == "near_duplicate" and abs(pair["score"] - score) <= 0.02
    # the same cache, now with the strict file: no group; the pair is similar, at the same score
    for extra, env in ((("--settings", str(strict)), None), ((), {"LOOKALIKE_SETTINGS": str(strict)})):
        apart = _pair(cli, folder, tmp_path / "find.sqlite", *extra, env=env)
        assert apart["groups"] == []
        assert [(p["verdict"], abs(p["score"] - score) <= 0.02) for p in apart["pairs"]] == [("similar", True)]


def test_serve_refuses_a_bad_settings_file_in_one_line(cli: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "lookalike-settings/1", "thresholds": {"near_duplicate": 0.2, "similar": 0.9}}')
    result = cli("serve", "--db", tmp_path / "s.sqlite", "--storage", tmp_path / "files", "--settings", bad)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "similar <= near_duplicate" in result.stderr


def test_the_loader_reads_the_option_before_the_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _settings(tmp_path / "a.json", 0.9, 0.4), _settings(tmp_path / "b.json", 0.8, 0.2)
    monkeypatch.delenv("LOOKALIKE_SETTINGS", raising=False)
    assert thresholds_from(None) is None
    monkeypatch.setenv("LOOKALIKE_SETTINGS", str(b))
    assert thresholds_from(None) == Thresholds(near_duplicate=0.8, similar=0.2)
    assert thresholds_from(a) == Thresholds(near_duplicate=0.9, similar=0.4)
    monkeypatch.setenv("LOOKALIKE_SETTINGS", str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError, match="missing.json: cannot read settings"):
        thresholds_from(None)


def test_the_learned_keys_of_a_settings_file_and_the_commands_options_which_win(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    only_tier = folder / "learned.json"
    only_tier.write_text(json.dumps({"format": "lookalike-settings/1", "learned": True}))
    found = settings_from(only_tier)
    assert found.learned == LearnedSettings(on=True) and found.thresholds == Thresholds()
    with_model = folder / "model.json"
    with_model.write_text(json.dumps({"format": "lookalike-settings/1", "learned_model": "enc.onnx"}))
    tier = settings_from(with_model).learned
    assert tier == LearnedSettings(on=True, model=str(folder / "enc.onnx"))  # beside the settings file
    assert tier.chosen(None, None) == tier and tier.chosen(False, None) == LearnedSettings(on=False)
    assert LearnedSettings().chosen(None, Path("/m.onnx")) == LearnedSettings(on=True, model="/m.onnx")
    assert settings_from(_settings(tmp_path / "plain.json", 0.9, 0.4)).learned == LearnedSettings()
    bad = folder / "bad.json"
    bad.write_text(json.dumps({"format": "lookalike-settings/1", "learned": "yes"}))
    with pytest.raises(ConfigError, match='"learned" must be true or false'):
        settings_from(bad)


def test_index_on_duplicate_replace_puts_the_new_file_in_the_stored_copys_place(cli: Run, tmp_path: Path) -> None:
    from PIL import Image

    small = tmp_path / "rocket-small.jpg"
    Image.open(ORIGINAL).resize((240, 160)).save(small, quality=85)
    db = tmp_path / "index.sqlite"
    (first,) = [json.loads(x) for x in cli("index", small, "--db", db, "--json", "--jobs", "1").stdout.splitlines()]
    stored_id = first["id"]

    done = cli("index", ORIGINAL, "--db", db, "--json", "--jobs", "1", "--on-duplicate", "replace")

    (line,) = [json.loads(x) for x in done.stdout.splitlines()]
    assert done.returncode == 0, done.stderr
    assert (line["outcome"], line["id"], line["verdict"]) == ("replaced", stored_id, "near_duplicate")
    stats = json.loads(cli("stats", "--db", db, "--json").stdout)
    assert (stats["images"], stats["files"]) == (1, 1)
    # the stored copy is now the original's file: checking the original finds it byte for byte
    checked = _one(cli("check", ORIGINAL, "--db", db, "--json", "--jobs", "1"))
    assert (checked["verdict"], checked["matches"][0]["id"]) == ("identical", stored_id)
    assert checked["matches"][0]["path"] == str(ORIGINAL.resolve())
    readable = cli("index", small, "--db", db, "--jobs", "1", "--on-duplicate", "replace")
    assert f"replaced {ORIGINAL.resolve()} of {stored_id} (near_duplicate" in readable.stdout
    assert "copies replaced 1" in readable.stdout
