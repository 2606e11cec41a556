"""`lookalike eval`: the benchmark protocol on labelled folders."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageOps

from lookalike.errors import ConfigError
from lookalike.evaluate import Prediction, evaluate_folder, score_predictions

ROOT = Path(__file__).resolve().parents[1]
SCORER = ROOT.parent / "shared" / "bench" / "score.py"


def test_average_precision_and_recall_follow_the_ranking() -> None:
    truth = {
        "q1": {"ref": "a", "transform": "crop"},
        "q2": {"ref": "b", "transform": "flip"},
        "q3": {"ref": None, "transform": "distractor"},
    }
    report = score_predictions(
        truth,
        set(),
        [
            Prediction("q1", "a", 0.9, True),  # right: precision 1 at recall 1/2
            Prediction("q3", "a", 0.8, True),  # wrong
            Prediction("q2", "b", 0.7, False),  # right: precision 2/3 at recall 1
            Prediction("q1", "a", 0.1, True),  # repeated pair: ignored
        ],
    )
    assert report.uap == pytest.approx(0.5 * 1.0 + 0.5 * 2 / 3)
    assert report.recall_at_p90 == pytest.approx(0.5)
    assert report.recall_by_edit == {"crop": 1.0, "flip": 0.0}
    assert report.verdict_precision == pytest.approx(0.5)
    assert report.verdict_recall == pytest.approx(0.5)
    assert report.predictions == 3


def test_a_match_with_an_ambiguous_reference_is_not_counted() -> None:
    truth = {"q1": {"ref": "a", "transform": "t"}}
    report = score_predictions(truth, {("a", "a2"), ("a2", "a")}, [Prediction("q1", "a2", 0.9, True)])
    assert report.predictions == 0


def _bench(tmp_path: Path) -> Path:
    """A small benchmark folder from the committed sample pictures."""
    root = tmp_path / "bench"
    (root / "references").mkdir(parents=True)
    (root / "queries").mkdir()
    truth: dict[str, dict[str, object]] = {}
    library = sorted((ROOT / "examples" / "library").glob("*.jpg"))
    for i, path in enumerate(library[:4]):
        (root / "references" / path.name).write_bytes(path.read_bytes())
        im = Image.open(path).convert("RGB")
        edits = {
            "half": im.resize((im.width // 2, im.height // 2)),
            "mirror": ImageOps.mirror(im),
            "gray": ImageOps.grayscale(im),
        }
        for edit, picture in edits.items():
            buf = io.BytesIO()
            picture.save(buf, "JPEG", quality=80)
            name = f"q{i}_{edit}.jpg"
            (root / "queries" / name).write_bytes(buf.getvalue())
            truth[name] = {"ref": path.name, "transform": edit}
    other = library[4]
    (root / "queries" / "stranger.jpg").write_bytes(other.read_bytes())
    truth["stranger.jpg"] = {"ref": None, "transform": "distractor"}
    (root / "truth.json").write_text(json.dumps({"queries": truth, "ambiguous": []}))
    return root


def test_eval_finds_the_copies_and_agrees_with_the_public_scorer(tmp_path: Path) -> None:
    bench = _bench(tmp_path)
    report = evaluate_folder(bench, jobs=1)
    assert report.positives == 12
    assert report.uap > 0.95
    assert report.verdict_precision == 1.0
    assert set(report.recall_by_edit) == {"half", "mirror", "gray"}
    if not SCORER.is_file():
        pytest.skip("the public benchmark scorer is not beside the repo")
    db = tmp_path / "index.sqlite"
    exe = str(Path(sys.executable).with_name("lookalike"))
    subprocess.run([exe, "index", str(bench / "references"), "--db", str(db), "--scope", "references"], check=True)
    lines = subprocess.run(
        [exe, "check", str(bench / "queries"), "--db", str(db), "--scope", "references", "--json"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    (tmp_path / "pred.jsonl").write_text(lines)
    scored = subprocess.run(
        [sys.executable, str(SCORER), str(bench), str(tmp_path / "pred.jsonl"), "--format", "check", "--json"],
        check=True,
        capture_output=True,
        text=True,
    )
    public = json.loads(scored.stdout)
    assert public["uAP"] == pytest.approx(report.uap, abs=1e-4)
    assert public["verdict_precision"] == pytest.approx(report.verdict_precision, abs=1e-4)


def test_a_folder_without_the_layout_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        evaluate_folder(tmp_path)
    run = subprocess.run(
        [str(Path(sys.executable).with_name("lookalike")), "eval", str(tmp_path)], capture_output=True, text=True
    )
    assert run.returncode != 0
    assert run.stderr.startswith("lookalike: error:") and "Traceback" not in run.stderr
