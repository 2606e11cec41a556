"""Pictures within a picture: the boxes of a collage's tiles, of a photo beside a caption panel, of
an image shown inside a page.

A composed picture separates its parts by flat gutters: rows or columns of one colour (a page's
background, the white between collage tiles, the margin of a caption panel). Cutting along them,
across the whole box, then again inside each part with the other axis, is the recursive X-Y cut
of document layout analysis (Nagy and Seth, "Hierarchical representation of optically scanned
documents", ICPR 1984). Parts too thin to be a picture (a line of text, a title bar) are dropped.

Why it matters: a query's strongest corners are where its contrast is highest, which in a
screenshot or beside a caption is the text; the picture's own keypoints never make the cut of the
strongest. Features taken from each part on its own give the picture its full share.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints.local import opencv

__all__ = ["Box", "picture_regions"]

#: (left, top, right, bottom) in pixels, right and bottom exclusive
Box = tuple[int, int, int, int]

#: a row or column is a gutter when its grey levels vary by at most this standard deviation
_FLAT_STD = 4.0
#: a part is kept when both its sides reach this share of the picture's and it is not the whole
_MIN_SIDE = 0.2
_MIN_AREA = 0.06
_MAX_DEPTH = 3
_MAX_PARTS = 4


def _segments(flat: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Runs of non-flat lines, as (start, stop)."""
    out: list[tuple[int, int]] = []
    start = None
    for i, f in enumerate(flat):
        if not f and start is None:
            start = i
        elif f and start is not None:
            out.append((start, i))
            start = None
    if start is not None:
        out.append((start, len(flat)))
    return out


def _cut(gray: npt.NDArray[np.float32], box: Box, depth: int, out: list[Box]) -> None:
    x0, y0, x1, y1 = box
    sub = gray[y0:y1, x0:x1]
    rows = _segments(sub.std(axis=1) <= _FLAT_STD)
    cols = _segments(sub.std(axis=0) <= _FLAT_STD)
    if not rows or not cols:
        return
    # the box without its flat margins, then split along the axis with more parts
    tight = (x0 + cols[0][0], y0 + rows[0][0], x0 + cols[-1][1], y0 + rows[-1][1])
    pieces = (
        [(x0 + a, tight[1], x0 + b, tight[3]) for a, b in cols]
        if len(cols) >= len(rows)
        else [(tight[0], y0 + a, tight[2], y0 + b) for a, b in rows]
    )
    if len(pieces) == 1:  # no gutter across it: a picture, unless trimming its margins lets one through
        if tight != box and depth < _MAX_DEPTH:
            _cut(gray, tight, depth + 1, out)
        else:
            out.append(tight)
        return
    for piece in pieces:
        if depth < _MAX_DEPTH:
            _cut(gray, piece, depth + 1, out)
        else:
            out.append(piece)


def picture_regions(pixels: npt.NDArray[np.uint8]) -> list[Box]:
    """Boxes of the pictures that flat gutters separate within (h, w, 3) uint8 ``pixels``, largest
    first, at most four; none when the picture is one piece (no flat line crosses it)."""
    h, w = pixels.shape[:2]
    if h < 32 or w < 32:
        return []
    cv2 = opencv()
    gray = np.asarray(cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY), dtype=np.float32)
    found: list[Box] = []
    _cut(gray, (0, 0, w, h), 0, found)
    kept = [
        b for b in found
        if (b[2] - b[0]) >= _MIN_SIDE * w and (b[3] - b[1]) >= _MIN_SIDE * h
        and (b[2] - b[0]) * (b[3] - b[1]) >= _MIN_AREA * w * h
        and (b[2] - b[0]) * (b[3] - b[1]) < 0.9 * w * h
    ]  # fmt: skip
    return sorted(kept, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:_MAX_PARTS]
