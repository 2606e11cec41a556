"""A fuzz harness over the decoder: for every allowed format, valid files with bytes flipped, cut,
repeated or spliced in either decode or raise a typed ``InputError``, never anything else. A short
bounded run here (``LOOKALIKE_FUZZ_EXAMPLES`` raises it; ``scripts/fuzz-decode.sh`` runs a long one)."""

from __future__ import annotations

import io
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from lookalike.config import ALL_FORMATS, DecodeLimits
from lookalike.decode import decode_image, read_header
from lookalike.errors import InputError
from lookalike.fingerprints import analyse

EXAMPLES = int(os.environ.get("LOOKALIKE_FUZZ_EXAMPLES", "25"))
#: small limits: a mutated header that declares a huge picture is refused, not decoded
LIMITS = DecodeLimits(max_pixels=4_000_000, max_decode_bytes=64 * 1024 * 1024)


def _seed(fmt: str) -> bytes:
    """A small valid file of ``fmt``, with transparency where the format has it."""
    if fmt == "HEIF":
        pytest.importorskip("pillow_heif").register_heif_opener()
    rng = np.random.default_rng(len(fmt))
    rgba = rng.integers(0, 256, (24, 32, 4), dtype=np.uint8)
    im = Image.fromarray(rgba, "RGBA")
    if fmt in ("JPEG", "BMP"):
        im = im.convert("RGB")
    if fmt == "GIF":
        im = im.convert("P")
    buf = io.BytesIO()
    im.save(buf, fmt, **({"quality": 60} if fmt in ("JPEG", "WEBP", "AVIF", "HEIF") else {}))
    return buf.getvalue()


@st.composite
def mutated(draw: st.DrawFn, data: bytes) -> bytes:
    """``data`` with a few random edits: bytes overwritten, a cut, a repeated or inserted run."""
    out = bytearray(data)
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flip", "cut", "repeat", "insert", "zero-run"]))
        at = draw(st.integers(0, max(0, len(out) - 1)))
        if kind == "flip" and out:
            out[at] = draw(st.integers(0, 255))
        elif kind == "cut":
            del out[at:]
        elif kind == "repeat":
            out[at:at] = out[at : at + draw(st.integers(1, 64))] * draw(st.integers(1, 8))
        elif kind == "insert":
            out[at:at] = draw(st.binary(min_size=1, max_size=16))
        else:
            out[at : at + 4] = b"\xff\xff\xff\xff" if draw(st.booleans()) else b"\x00\x00\x00\x00"
    return bytes(out)


@pytest.mark.parametrize("fmt", sorted(ALL_FORMATS))
def test_mutated_files_decode_or_raise_a_typed_error(fmt: str) -> None:
    seed = _seed(fmt)
    assert decode_image(seed).format == fmt

    @settings(
        max_examples=EXAMPLES, deadline=None, derandomize=EXAMPLES <= 25, database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )  # fmt: skip
    @given(mutated(seed))
    def decodes_or_refuses(data: bytes) -> None:
        for attempt in (
            lambda: read_header(data, limits=LIMITS),
            lambda: decode_image(data, limits=LIMITS, min_side=8),
            lambda: analyse(data, limits=LIMITS, with_pixel_digest=True),
        ):
            try:
                attempt()
            except InputError:
                pass

    decodes_or_refuses()
