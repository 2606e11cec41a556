"""Image-making functions for tests: generated fixtures instead of committed binaries.

Every picture here is deterministic (seeded), so golden values computed from
them stay put as long as Pillow's encoders and lookalike's code do.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

U8 = npt.NDArray[np.uint8]

#: the repository root (tests/ is one level below it)
REPO = Path(__file__).resolve().parents[1]
#: committed sample pictures
EXAMPLES = REPO / "examples"
#: the public benchmark corpus, checked out beside the repository in CI
CORPUS = (REPO / ".." / "shared" / "bench" / "corpus").resolve()


def photo(width: int = 320, height: int = 240, *, seed: int = 0) -> Image.Image:
    """A photo-like RGB picture: smooth colour gradients, a few filled shapes and mild noise.

    Different seeds give clearly different pictures (shapes, colours and gradient directions all move).
    """
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    angle = rng.uniform(0, 2 * np.pi, size=3)
    # each channel ramps in its own direction across the frame
    base = np.stack([0.5 + 0.45 * (np.cos(a) * (u - 0.5) + np.sin(a) * (v - 0.5)) for a in angle], axis=-1)
    base += 0.12 * np.sin(2 * np.pi * (u * rng.uniform(1, 3) + v * rng.uniform(0.5, 2)))[..., None]
    # filled ellipses and rectangles, drawn with NumPy masks so that Pillow's drawing code
    # (which has changed between releases) cannot move the golden values
    for _ in range(6):
        x0, x1 = sorted(rng.integers(0, width, size=2))
        y0, y1 = sorted(rng.integers(0, height, size=2))
        x1, y1 = max(x1, x0 + width // 10), max(y1, y0 + height // 10)
        colour = rng.integers(0, 256, size=3) / 255.0
        if rng.random() < 0.5:
            cx, cy, rx, ry = (x0 + x1) / 2, (y0 + y1) / 2, (x1 - x0) / 2, (y1 - y0) / 2
            mask = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2 <= 1.0
        else:
            mask = (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)
        base[mask] = colour
    arr = np.rint(base * 255) + rng.normal(0, 4, size=(height, width, 3))
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def gradient(
    width: int = 256, height: int = 192, *, start: int = 0, stop: int = 255, vertical: bool = False
) -> Image.Image:
    """A plain grey ramp from ``start`` to ``stop``: a featureless picture."""
    ramp = np.linspace(start, stop, height if vertical else width)
    plane = np.repeat(ramp[:, None], width, axis=1) if vertical else np.repeat(ramp[None, :], height, axis=0)
    return Image.fromarray(np.rint(plane).astype(np.uint8), "L").convert("RGB")


def flat(colour: tuple[int, int, int], width: int = 200, height: int = 150) -> Image.Image:
    """One colour everywhere."""
    return Image.new("RGB", (width, height), colour)


def stamp(size: int = 200, *, seed: int = 0) -> Image.Image:
    """A transparent RGBA graphic: opaque shapes, soft (partly transparent) edges and a fully clear
    background whose hidden colour is arbitrary (not white), as editors leave it."""
    rng = np.random.default_rng(seed)
    rgb = rng.integers(0, 256, size=(size, size, 3), dtype=np.uint8)  # garbage under the clear pixels
    y, x = np.mgrid[0:size, 0:size].astype(np.float64)
    r = np.hypot(x - size / 2, y - size / 2)
    alpha = np.clip((size * 0.4 - r) * 8, 0, 255)  # a disc with a soft rim
    alpha[size // 3 : size // 2, :] = np.where(alpha[size // 3 : size // 2, :] > 0, 128, 0)  # a half-clear band
    rgb[r < size * 0.4] = (200, 40, 30)
    inner = r < size * 0.2
    rgb[inner] = (20, 90, 220)
    rgb[(np.abs(x - y) < 6) & (r < size * 0.4)] = (250, 220, 0)
    rgba = np.dstack([rgb, alpha.astype(np.uint8)])
    return Image.fromarray(rgba, "RGBA")


def on_white(im: Image.Image) -> Image.Image:
    """``im`` (with alpha) composited onto white: how a web page shows it."""
    rgba = im.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def encode(im: Image.Image, fmt: str, **params: object) -> bytes:
    """``im`` saved in Pillow format ``fmt`` (e.g. "PNG", "JPEG", "WEBP", "HEIF") to bytes.
    PNGs are written with light compression unless told otherwise: the same pixels, much sooner."""
    if fmt.upper() == "PNG":
        params.setdefault("compress_level", 1)
    buf = io.BytesIO()
    im.save(buf, fmt, **params)
    return buf.getvalue()


def save(im: Image.Image, path: Path, fmt: str | None = None, **params: object) -> Path:
    """``im`` written to ``path`` (format from the ending unless ``fmt`` is given)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    im.save(path, fmt, **params)
    return path


def pixels(im: Image.Image) -> U8:
    """(h, w, 3) uint8 RGB array of ``im``."""
    return np.asarray(im.convert("RGB"), dtype=np.uint8)


def mean_abs_diff(a: U8 | Image.Image, b: U8 | Image.Image) -> float:
    """Mean absolute difference of two same-sized pictures, in grey levels (0..255)."""
    x = pixels(a) if isinstance(a, Image.Image) else a
    y = pixels(b) if isinstance(b, Image.Image) else b
    assert x.shape == y.shape, f"shapes differ: {x.shape} vs {y.shape}"
    return float(np.abs(x.astype(np.int16) - y.astype(np.int16)).mean())


def with_orientation(upright: Image.Image, orientation: int, *, quality: int = 95) -> bytes:
    """A JPEG whose stored pixels are ``upright`` transformed so that a viewer applying EXIF
    ``orientation`` shows ``upright`` again."""
    # Image.Transpose that *undoes* what each orientation asks a viewer to do
    stored_from_upright = {
        1: None,
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_90,  # viewer turns it 90° clockwise, so store it turned counter-clockwise
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_270,
    }[orientation]
    stored = upright if stored_from_upright is None else upright.transpose(stored_from_upright)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return encode(stored, "JPEG", quality=quality, exif=exif.tobytes())


def png_chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk with its length and CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A tiny PNG that declares ``width`` x ``height`` RGB pixels (valid IHDR and CRCs) but carries
    only a few bytes of image data: a decompression bomb's calling card."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", idat) + png_chunk(b"IEND", b"")


def animated(fmt: str, colours: list[tuple[int, int, int]], size: tuple[int, int] = (64, 48)) -> bytes:
    """An animation (GIF, PNG for APNG, or WEBP) whose frames are flat ``colours`` in order."""
    frames = [Image.new("RGB", size, c) for c in colours]
    return encode(frames[0], fmt, save_all=True, append_images=frames[1:], duration=100, loop=0)


def corpus_photos() -> list[Path]:
    """The benchmark corpus's photos, sorted (empty when the corpus is absent)."""
    folder = CORPUS / "photos"
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def scan_bomb(side: int = 7000, repeats: int = 12_000) -> bytes:
    """A progressive grey JPEG of ``side`` x ``side`` whose last AC scan is repeated ``repeats``
    times (issue 26's scan bomb: 7000 x 7000 and 12,000 repeats make 1.1 MB that a decoder without
    a scan limit spends minutes on). Built from Pillow's own progressive encoding of a flat grey
    picture: its segments up to the last scan, that scan again and again, then EOI."""
    data = encode(Image.new("L", (side, side), 128), "JPEG", progressive=True, quality=75)
    scans: list[tuple[int, int]] = []  # (start, end) of each SOS segment with its entropy data
    pos = 2
    while pos < len(data) - 1:
        marker = data[pos + 1]
        if marker == 0xD9:
            break
        end = pos + 2 + int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:
            nxt = end
            while not (data[nxt] == 0xFF and data[nxt + 1] not in (0x00, *range(0xD0, 0xD8))):
                nxt += 1
            scans.append((pos, nxt))
            end = nxt
        pos = end
    start, stop = scans[-1]
    return data[:stop] + data[start:stop] * repeats + b"\xff\xd9"
