"""What a decoding process runs for the service (``service.decoding``), in a module that imports
only the fingerprinting stack: a worker process that unpickles these functions imports this module
and what it needs (NumPy, Pillow, OpenCV), not the web framework, so a new worker starts in about
a third of the time ``lookalike.service`` takes to import."""

from __future__ import annotations

import struct
import zlib
from dataclasses import replace

from lookalike.config import DecodeLimits
from lookalike.fingerprints.compute import Analysis, analyse

__all__ = ["analyse_for_check", "analyse_for_storing", "sample_png", "warm_up"]


def analyse_for_check(data: bytes, limits: DecodeLimits) -> Analysis:
    """What a check needs, the pixel digest included (a check would decode again for it), without
    the bytes (the caller has them)."""
    return replace(analyse(data, name="upload", limits=limits, with_pixel_digest=True), data=b"")


def analyse_for_storing(data: bytes, limits: DecodeLimits) -> Analysis:
    """Every signal of an upload, local features and the full-resolution pixel digest included,
    without the bytes."""
    return replace(analyse(data, name="upload", limits=limits, local=True, with_pixel_digest=True), data=b"")


def _png(width: int, height: int) -> bytes:
    """A grey gradient PNG, made without an image library."""
    rows = b"".join(b"\0" + bytes((x * 4 + y) % 256 for x in range(width)) for y in range(height))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def sample_png() -> bytes:
    """A small picture to run the analysis on once, so that its kernels are loaded (``warm_up``)."""
    return _png(64, 48)


def warm_up() -> None:
    """Import and run everything an upload's analysis uses once (OpenCV included), in a new worker."""
    analyse_for_storing(sample_png(), DecodeLimits())
