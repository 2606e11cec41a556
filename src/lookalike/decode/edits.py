"""Edited copies of a picture, for calibration: re-encodes, resizes, crops, captions, borders,
flips, turns, colour changes, noise, the picture shown inside a larger page, and a mixture. Here
because this package is the only one that touches Pillow."""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image, ImageDraw, ImageEnhance, ImageOps

__all__ = ["EDITS", "Edit", "write_edited_copy"]

Edit = Callable[[Image.Image, random.Random], Image.Image]


def _jpeg(im: Image.Image, quality: int) -> Image.Image:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return Image.open(io.BytesIO(buf.getvalue()))


def _resized(im: Image.Image, factor: float) -> Image.Image:
    return im.resize((max(16, round(im.width * factor)), max(16, round(im.height * factor))), Image.Resampling.LANCZOS)


def _cropped(im: Image.Image, rng: random.Random, most: float) -> Image.Image:
    """Cut up to ``most`` of the width and height, unevenly between the sides."""
    cut_w, cut_h = rng.uniform(0.05, most) * im.width, rng.uniform(0.05, most) * im.height
    left, top = rng.uniform(0, 1) * cut_w, rng.uniform(0, 1) * cut_h
    return im.crop((round(left), round(top), round(im.width - (cut_w - left)), round(im.height - (cut_h - top))))


def _caption(im: Image.Image, rng: random.Random) -> Image.Image:
    """A band of text across the top or bottom, drawn over the picture."""
    out = im.convert("RGB")
    draw = ImageDraw.Draw(out)
    band = max(12, out.height // rng.choice([6, 8, 10]))
    y = 0 if rng.random() < 0.5 else out.height - band
    draw.rectangle((0, y, out.width, y + band), fill=(0, 0, 0) if rng.random() < 0.5 else (255, 255, 255))
    words = " ".join(rng.choice(["WHEN", "YOU", "FINALLY", "SEE", "IT", "MONDAY", "AGAIN", "LOL"]) for _ in range(5))
    draw.text((out.width // 20, y + band // 3), words, fill=(128, 128, 128))
    return out


def _bordered(im: Image.Image, rng: random.Random) -> Image.Image:
    """Padded to another aspect ratio with a flat colour."""
    w, h = im.size
    side = max(w, h)
    canvas = Image.new("RGB", (side, side), tuple(rng.randrange(256) for _ in range(3)))
    canvas.paste(im.convert("RGB"), ((side - w) // 2, (side - h) // 2))
    return canvas


def _in_page(im: Image.Image, rng: random.Random) -> Image.Image:
    """The picture shown at a smaller size inside a larger page with bars and text."""
    w, h = im.size
    scale = rng.uniform(0.4, 0.8)
    page = Image.new("RGB", (w, h), (245, 245, 245))
    draw = ImageDraw.Draw(page)
    draw.rectangle((0, 0, w, h // 12), fill=(40, 40, 60))
    draw.text((w // 30, h // 40), "photos - viewer", fill=(220, 220, 220))
    small = _resized(im.convert("RGB"), scale)
    x, y = rng.randrange(0, max(1, w - small.width)), h // 12 + rng.randrange(0, max(1, h - h // 12 - small.height))
    page.paste(small, (x, y))
    return page


def _rotated(im: Image.Image, rng: random.Random) -> Image.Image:
    return im.convert("RGB").rotate(rng.uniform(2, 8) * rng.choice([-1, 1]), resample=Image.Resampling.BICUBIC)


def _recoloured(im: Image.Image, rng: random.Random) -> Image.Image:
    out = ImageEnhance.Brightness(im.convert("RGB")).enhance(rng.uniform(0.7, 1.3))
    out = ImageEnhance.Contrast(out).enhance(rng.uniform(0.7, 1.3))
    return ImageEnhance.Color(out).enhance(rng.uniform(0.5, 1.6))


def _noisy(im: Image.Image, rng: random.Random) -> Image.Image:
    pixels = np.asarray(im.convert("RGB"), dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, rng.uniform(4, 12), pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


#: the edits calibration draws from, by name
EDITS: dict[str, Edit] = {
    "recompress": lambda im, r: _jpeg(im, r.randrange(15, 90)),
    "resize": lambda im, r: _resized(im, r.uniform(0.2, 0.8)),
    "crop": lambda im, r: _cropped(im, r, 0.45),
    "caption": _caption,
    "border": _bordered,
    "mirror": lambda im, r: ImageOps.mirror(im),
    "quarter_turn": lambda im, r: im.transpose(r.choice([Image.Transpose.ROTATE_90, Image.Transpose.ROTATE_270])),
    "rotate": _rotated,
    "recolour": _recoloured,
    "grayscale": lambda im, r: ImageOps.grayscale(im),
    "noise": _noisy,
    "in_page": _in_page,
    "crop_recolour_resize": lambda im, r: _resized(_recoloured(_cropped(im, r, 0.3), r), r.uniform(0.4, 0.9)),
}


def write_edited_copy(pixels: npt.NDArray[np.uint8], edit: str, rng: random.Random, stem: Path) -> Path:
    """Save the edit ``edit`` of ``pixels`` (decoded RGB) next to ``stem``: as PNG three times in
    ten (drawn from ``rng`` after the edit), else as JPEG of quality 90. Returns the file written."""
    copy = EDITS[edit](Image.fromarray(pixels), rng).convert("RGB")
    target = stem.with_name(f"{stem.name}.{'png' if rng.random() < 0.3 else 'jpg'}")
    if target.suffix == ".jpg":
        copy.save(target, quality=90)
    else:
        copy.save(target)
    return target
