"""Canonical 8-bit RGB from whatever a codec decoded: modes, the alpha policy, reductions and
orientation (the policies themselves are told in ``lookalike.decode.image``'s docstring, which
decides when each of these runs).

Integer arithmetic throughout, so that the pixels are the same on every machine.
"""

from __future__ import annotations

from typing import cast

import numpy as np
import numpy.typing as npt
from PIL import Image

__all__ = [
    "BLANK_LEVELS", "TRANSPOSING_ORIENTATIONS", "apply_orientation", "band_pixels", "band_rgb", "box_reduce",
    "extrema", "flatten", "halve", "has_alpha", "onto_black",
]  # fmt: skip

#: Orientation values 5..8 swap width and height.
TRANSPOSING_ORIENTATIONS = frozenset({5, 6, 7, 8})


def box_reduce(rgb: npt.NDArray[np.uint8], factor: int) -> npt.NDArray[np.uint8]:
    """Mean of each ``factor`` x ``factor`` block, rounded half up (Pillow's ``reduce``; edge rows
    and columns that do not fill a block are averaged over what they have)."""
    return np.asarray(Image.fromarray(rgb).reduce(factor), dtype=np.uint8)


def halve(rgb: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """Exact 2 x 2 box average, ``(a + b + c + d + 2) >> 2``, of (h, w, 3) uint8 pixels (an odd last
    row or column is dropped). Integer arithmetic: the same on every machine and version."""
    h, w = rgb.shape[0] // 2 * 2, rgb.shape[1] // 2 * 2
    return box_reduce(np.ascontiguousarray(rgb[:h, :w]), 2)


def apply_orientation(rgb: npt.NDArray[np.uint8], orientation: int) -> npt.NDArray[np.uint8]:
    """Turn stored pixels upright as EXIF Orientation 1..8 says (TIFF 6.0 / Exif 2.32 semantics)."""
    turned: npt.NDArray[np.uint8] = rgb
    if orientation == 2:
        turned = rgb[:, ::-1]
    elif orientation == 3:
        turned = rgb[::-1, ::-1]
    elif orientation == 4:
        turned = rgb[::-1, :]
    elif orientation == 5:
        turned = rgb.transpose(1, 0, 2)
    elif orientation == 6:
        turned = np.rot90(rgb, k=-1)
    elif orientation == 7:
        turned = np.rot90(rgb, k=1)[:, ::-1]
    elif orientation == 8:
        turned = np.rot90(rgb, k=1)
    return turned


def has_alpha(im: Image.Image) -> bool:
    """Whether the picture has transparency: an alpha channel, a palette entry or a colour key."""
    return im.mode in ("RGBA", "RGBa", "LA", "La", "PA") or (im.mode in ("P", "RGB", "L") and "transparency" in im.info)


def band_pixels(band: Image.Image) -> npt.NDArray[np.uint8]:
    """(h, w, 4) straight RGBA when the picture has transparency, else (h, w, 3) RGB, under the mode
    policy above, of one band of a picture."""
    mode = band.mode
    if has_alpha(band):
        if mode == "LA":
            la = np.asarray(band, dtype=np.uint8)
            return np.concatenate([np.repeat(la[..., :1], 3, axis=2), la[..., 1:]], axis=2)
        if mode == "La":
            return band_pixels(band.convert("LA"))
        return np.asarray(band if mode == "RGBA" else band.convert("RGBA"), dtype=np.uint8)
    if mode == "P":
        return np.asarray(band.convert("RGB"), dtype=np.uint8)
    if mode == "RGB":
        return np.asarray(band, dtype=np.uint8)
    if mode in ("L", "1"):
        gray = np.asarray(band if mode == "L" else band.convert("L"), dtype=np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode.startswith("I;16") or mode == "I":
        wide = np.asarray(band).astype(np.int64)
        gray = ((np.clip(wide, 0, 65535) * 255 + 32767) // 65535).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    if mode == "F":
        gray = np.clip(np.rint(np.asarray(band, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=2)
    # CMYK, YCbCr, LAB, HSV and any other mode Pillow can turn into RGB
    return np.asarray(band.convert("RGB"), dtype=np.uint8)


def band_rgb(im: Image.Image, box: tuple[int, int, int, int], onto_black: bool) -> npt.NDArray[np.uint8]:
    """Canonical 8-bit RGB pixels of the ``box`` of ``im``: transparency composited onto white (onto
    black when ``onto_black``)."""
    whole = box == (0, 0, *im.size)
    pixels = band_pixels(im if whole else im.crop(box))  # a crop is a copy: the whole needs none
    if pixels.shape[2] == 3:
        return pixels
    if pixels.size and int(pixels[..., 3].min()) == 255:  # opaque here: compositing changes nothing
        return np.ascontiguousarray(pixels[..., :3])
    return flatten(pixels, onto_black)


#: grey levels within which a composite counts as blank (see the alpha policy in ``lookalike.decode.image``)
BLANK_LEVELS = 2


def flatten(rgba: npt.NDArray[np.uint8], onto_black: bool) -> npt.NDArray[np.uint8]:
    """Composite straight (non-premultiplied) RGBA onto white (or black), rounding to nearest, in
    uint16: ``(c*a + 255*(255 - a) + 127) // 255`` is ``(65152 - (255 - c)*a) // 255``, no
    intermediate exceeds 65407, and ``x // 255`` is ``(x + 1 + ((x + 1) >> 8)) >> 8`` for every
    x below 65535 (checked exhaustively), which spares a division."""
    alpha = rgba[..., 3:4].astype(np.uint16)
    if onto_black:
        x = rgba[..., :3].astype(np.uint16)
        x *= alpha
        x += 128  # x + 127, plus the 1 of the division below
    else:
        x = np.subtract(255, rgba[..., :3], dtype=np.uint16)
        x *= alpha
        np.subtract(65153, x, out=x)
    x += x >> 8
    x >>= 8
    return x.astype(np.uint8)


def onto_black(im: Image.Image, *, band_pixels_max: int) -> bool:
    """True when the picture on white is blank (every channel within ``BLANK_LEVELS``) while its
    alpha varies: it is drawn in the alpha channel alone (see ``lookalike.decode.image``). The alpha's
    range comes first (for RGBA and LA one pass over the alpha alone); only a varying alpha calls
    for the picture on white, looked at a band at a time up to the first band that is not blank."""
    if not has_alpha(im):
        return False
    w, h = im.size
    step = max(1, band_pixels_max // max(1, w))
    if im.mode in ("RGBA", "LA"):
        ((low, high),) = extrema(im.getchannel("A"))  # one band copied (1 byte a pixel), not all
        if high - low <= BLANK_LEVELS:
            return False
    ranges = [(255, 0)] * 4  # (lowest, highest) of the picture on white's R, G, B, then of alpha
    for top in range(0, h, step):
        rgba = band_pixels(im.crop((0, top, w, min(h, top + step))))
        band = extrema(Image.fromarray(flatten(rgba, False), "RGB"))
        band += extrema(Image.fromarray(np.ascontiguousarray(rgba[..., 3]), "L"))
        ranges = [(min(lo, blo), max(hi, bhi)) for (lo, hi), (blo, bhi) in zip(ranges, band)]
        if max(hi - lo for lo, hi in ranges[:3]) > BLANK_LEVELS:
            return False
    return ranges[3][1] - ranges[3][0] > BLANK_LEVELS


def extrema(im: Image.Image) -> list[tuple[int, int]]:
    """(lowest, highest) of each band of an 8-bit picture, in one pass of Pillow's C (numpy's
    ``min(axis=0)`` over interleaved channels took ten times as long)."""
    found = im.getextrema()
    pairs = [found] if im.mode == "L" else list(cast("tuple[tuple[int, int], ...]", found))
    return [(int(lo), int(hi)) for lo, hi in cast("list[tuple[int, int]]", pairs)]
