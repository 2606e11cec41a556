"""``lookalike calibrate``: thresholds measured on the user's images, read back by the commands."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
from PIL import Image

from lookalike.calibrate import calibrate_folder, groups_in, load_settings, write_settings
from lookalike.config import Thresholds
from lookalike.decode.edits import EDITS
from lookalike.errors import ConfigError
from lookalike.evaluate import Prediction, precision_cut
from tests.cli.conftest import Run
from tests.images import corpus_photos, save


@pytest.fixture(scope="module")
def photos(corpus: Path) -> list[Path]:
    """Sixteen different corpus photos."""
    return corpus_photos()[::9][:16]


def test_precision_cut_is_the_lowest_score_that_keeps_the_precision() -> None:
    truth = {"q1": "a", "q2": "b", "q3": "c", "n1": None}
    predictions = [
        Prediction("q1", "a", 0.9, True),
        Prediction("q2", "b", 0.8, True),
        Prediction("n1", "a", 0.7, True),  # a copy of an unindexed picture matched something: wrong
        Prediction("q3", "c", 0.6, True),
        Prediction("q3", "a", 0.5, False),
    ]
    assert precision_cut(predictions, truth, 3, 1.0) == (0.8, 2 / 3, True)
    assert precision_cut(predictions, truth, 3, 0.75) == (0.6, 1.0, True)
    assert precision_cut([Prediction("n1", "a", 0.9, True)], truth, 3, 0.5) == (1.0, 0.0, False)


def test_every_edit_makes_a_picture(photos: list[Path]) -> None:
    im = Image.open(photos[0])
    for name, edit in EDITS.items():
        out = edit(im, random.Random(name))
        assert min(out.size) >= 16, name
        assert out.size != im.size or name in {"recompress", "mirror", "caption", "rotate", "recolour", "grayscale",
                                                "noise", "in_page"}, name  # fmt: skip


def _scenes(corpus: Path) -> list[list[Path]]:
    """Three real pairs of the corpus: a wallpaper and the portrait version its artist made of it
    (a natural group), and a stereo pair (the same scene shot from two places), as a user's folders
    of re-shoots would hold them; and a natural group whose files are all one file at several
    names, which is no pair to find."""
    manifest = json.loads((corpus / "manifest.json").read_text())
    wallpapers = [g for g in manifest["natural_groups"] if g[0].startswith("wallpapers/")][:2]
    stereo = ["samples/motorcycle_left.png", "samples/motorcycle_right.png"]
    same_file = [g for g in manifest["natural_groups"] if g[0].startswith("natural/")][0]
    return [[corpus / p for p in g] for g in [*wallpapers, stereo, same_file]]


def test_calibration_measures_thresholds_that_keep_the_precision(
    photos: list[Path], tmp_path: Path, corpus: Path
) -> None:
    scenes = _scenes(corpus)
    result = calibrate_folder(photos, groups=scenes, precision=0.95, edits_per_image=3, jobs=1)
    assert result.references >= 4 and result.positives >= 12 and result.negatives >= 12
    assert result.reached
    t = result.thresholds
    assert 0.0 < t.similar <= t.near_duplicate <= 1.0
    assert result.recall_at_threshold > 0.5  # most copies of the user's own pictures are found
    # similar is read off the real pairs: each member checked finds the others of its scene
    assert result.pairs == 6
    assert result.recall_of_pairs > 0  # the stereo pair at least: its keypoints agree
    path = tmp_path / "settings.json"
    write_settings(result, path)
    assert load_settings(path) == t
    saved = json.loads(path.read_text())
    assert saved["measured"]["precision_asked"] == 0.95
    assert saved["measured"]["real_pairs"] == 6
    # calibrating again keeps the learned tier turned on in the file
    path.write_text(json.dumps({**saved, "learned": True, "thresholds": {"near_duplicate": 0.9, "similar": 0.5}}))
    write_settings(result, path)
    assert load_settings(path) == t and json.loads(path.read_text())["learned"] is True


def test_groups_need_two_scenes_of_two_shots(photos: list[Path], tmp_path: Path) -> None:
    (tmp_path / "one").mkdir()
    (tmp_path / "lonely").mkdir()
    for k, p in enumerate(photos[:2]):
        (tmp_path / "one" / f"{k}.jpg").write_bytes(p.read_bytes())
    (tmp_path / "lonely" / "x.jpg").write_bytes(photos[3].read_bytes())
    with pytest.raises(ConfigError, match="at least 2 of them; found 1"):
        groups_in(tmp_path)


def test_calibration_refuses_too_few_images(photos: list[Path]) -> None:
    with pytest.raises(ConfigError, match=r"each half needs at least 4: of these 3, \d fell in the indexed half"):
        calibrate_folder(photos[:3])
    with pytest.raises(ConfigError, match="precision"):
        calibrate_folder(photos, precision=1.5)


def test_a_settings_file_that_is_not_one_is_a_config_error(tmp_path: Path) -> None:
    for content in ("", "{}", '{"format": "lookalike-settings/1", "thresholds": {"near_duplicate": 0.2,'
                    ' "similar": 0.9}}', "[1, 2]"):  # fmt: skip
        path = tmp_path / "bad.json"
        path.write_text(content)
        with pytest.raises(ConfigError):
            load_settings(path)
    with pytest.raises(ConfigError):
        load_settings(tmp_path / "missing.json")


def _settings(path: Path, near: float, similar: float) -> Path:
    thresholds = {"near_duplicate": near, "similar": similar}
    path.write_text(json.dumps({"format": "lookalike-settings/1", "thresholds": thresholds}))
    return path


def test_commands_read_the_settings_file(photos: list[Path], tmp_path: Path, cli: Run) -> None:
    original = photos[0]
    copy = save(Image.open(original).resize((200, 150)), tmp_path / "small.jpg", quality=60)
    default = json.loads(cli("compare", original, copy, "--json").stdout)
    assert default["verdict"] == "near_duplicate"
    strict = _settings(tmp_path / "strict.json", 0.995, 0.99)  # above any score but equal bytes/pixels/hashes
    assert default["score"] < 0.995
    judged = cli("compare", original, copy, "--json", "--settings", strict)
    assert json.loads(judged.stdout)["verdict"] != "near_duplicate"

    db = tmp_path / "index.sqlite"
    assert cli("index", original, "--db", db).returncode == 0
    checked = cli("check", copy, "--db", db, "--json", "--settings", strict)
    assert json.loads(checked.stdout)["verdict"] in {"unique", "similar"}
    via_env = cli("check", copy, "--db", db, "--json", env={"LOOKALIKE_SETTINGS": str(strict)})
    assert json.loads(via_env.stdout)["verdict"] in {"unique", "similar"}
    assert json.loads(cli("check", copy, "--db", db, "--json").stdout)["verdict"] == "near_duplicate"


def test_a_bad_settings_file_is_one_line_and_a_failure(photos: list[Path], tmp_path: Path, cli: Run) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("not json")
    result = cli("compare", photos[0], photos[1], "--settings", bad)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "cannot read settings" in result.stderr


def test_calibrate_command_writes_settings_that_load(photos: list[Path], tmp_path: Path, cli: Run) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    for p in photos[:10]:
        (folder / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "settings.json"
    result = cli("calibrate", folder, "--precision", "0.9", "--edits", "2", "-o", out, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    assert "near_duplicate >=" in result.stdout
    assert isinstance(load_settings(out), Thresholds)
    too_few = cli("calibrate", photos[0], "-o", tmp_path / "x.json")
    assert too_few.returncode != 0 and "at least 8" in too_few.stderr


def test_compare_finds_a_crop_by_local_features(photos: list[Path], tmp_path: Path, cli: Run) -> None:
    im = Image.open(photos[2]).convert("RGB")
    w, h = im.size
    crop = save(im.crop((int(w * 0.3), int(h * 0.25), w, h)), tmp_path / "crop.jpg", quality=85)
    result = json.loads(cli("compare", photos[2], crop, "--json").stdout)
    assert result["verdict"] == "near_duplicate"
    assert result["local"]["inliers"] >= 60
    assert "cropped to" in result["evidence"]
    other = json.loads(cli("compare", photos[5], crop, "--json").stdout)
    assert other["verdict"] == "different"
