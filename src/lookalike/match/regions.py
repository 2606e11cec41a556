"""Pictures within a picture: the boxes of a collage's tiles, of a photo beside a caption panel, of
an image shown inside a page.

A composed picture separates its parts by flat gutters: rows or columns of one colour (a page's
background, the white between collage tiles, the margin of a caption panel). Cutting along them,
across the whole box, then again inside each part with the other axis, is the recursive X-Y cut
of document layout analysis (Nagy and Seth, "Hierarchical representation of optically scanned
documents", ICPR 1984). Parts too thin to be a picture (a line of text, a title bar) are dropped.

A collage may have no gutters at all, its tiles set edge to edge. Then the tiles of an even grid
(two or three across, two or three down) are looked for by their seams: at each inner boundary of
the grid, the mean step between neighbouring lines of pixels stands far above the steps around it,
as it does where two unrelated pictures meet and rarely along a whole line within one picture.

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
#: grey levels within which a flat line has the background's level (a gutter, not a flat stretch
#: of the picture)
_BACKGROUND_LEVELS = 6.0

#: a seam: the mean step across a line (two lines wide, for a seam softened by resizing) this many
#: times the median step of the lines around it, and at least ``_SEAM_LEVELS`` grey levels
_SEAM_RATIO = 4.0
_SEAM_LEVELS = 8.0
#: lines either side of an even grid's boundary where its seam may lie (rounding, a resize)
_SEAM_SLACK = 3

Line = npt.NDArray[np.float32]


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


def _background(row_std: Line, row_mean: Line, col_std: Line, col_mean: Line) -> float | None:
    """The grey level of a box's background: that of its flat edge lines (top, bottom, left, right)
    shared by most of its flat lines, else that of most of its flat lines; None when none is flat."""
    levels = np.concatenate([row_mean[row_std <= _FLAT_STD], col_mean[col_std <= _FLAT_STD]])
    if not len(levels):
        return None
    edges = [m[i] for s, m in ((row_std, row_mean), (col_std, col_mean)) for i in (0, -1) if s[i] <= _FLAT_STD]
    candidates = edges or list(levels)
    return float(max(candidates, key=lambda v: int(np.count_nonzero(np.abs(levels - v) <= _BACKGROUND_LEVELS))))


def _cut(gray: npt.NDArray[np.float32], box: Box, level: float, depth: int, out: list[Box]) -> None:
    """X-Y cut of ``box`` along gutters: flat lines of the whole picture's background ``level`` (a
    gradient's rows or a dark sky's are flat too, but belong to the picture; the level is the whole
    picture's, since inside a picture its own flat stretches would pass for a background)."""
    x0, y0, x1, y1 = box
    sub = gray[y0:y1, x0:x1]
    row_std, row_mean, col_std, col_mean = sub.std(axis=1), sub.mean(axis=1), sub.std(axis=0), sub.mean(axis=0)
    rows = _segments((row_std <= _FLAT_STD) & (np.abs(row_mean - level) <= _BACKGROUND_LEVELS))
    cols = _segments((col_std <= _FLAT_STD) & (np.abs(col_mean - level) <= _BACKGROUND_LEVELS))
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
            _cut(gray, tight, level, depth + 1, out)
        else:
            out.append(tight)
        return
    for piece in pieces:
        if depth < _MAX_DEPTH:
            _cut(gray, piece, level, depth + 1, out)
        else:
            out.append(piece)


def _seam_steps(gray: npt.NDArray[np.float32], axis: int) -> Line:
    """Mean step across each boundary between lines (columns for ``axis`` 1, rows for 0), over two
    lines: ``steps[i]`` is that of the boundary before line ``i + 1``, with the next one."""
    step = np.abs(np.diff(gray, axis=axis)).mean(axis=1 - axis)
    return np.asarray(step[:-1] + step[1:], dtype=np.float32)


def _is_seam(steps: Line, at: int) -> bool:
    """Whether some boundary within ``_SEAM_SLACK`` lines of ``at`` is a seam (see the module docstring)."""
    n = len(steps)
    for i in range(max(0, at - _SEAM_SLACK), min(n, at + _SEAM_SLACK + 1)):
        around = np.concatenate([steps[max(0, i - 12) : max(0, i - 2)], steps[i + 3 : i + 13]])
        if len(around) >= 6 and steps[i] >= _SEAM_LEVELS and steps[i] >= _SEAM_RATIO * float(np.median(around)):
            return True
    return False


def _even_grid(gray: npt.NDArray[np.float32]) -> list[Box]:
    """The tiles of an even grid of two or three across and/or down whose every inner boundary is a
    seam (``_is_seam``), the finest such grid on each axis; none when there is no such grid."""
    h, w = gray.shape
    splits = []
    for axis, size in ((1, w), (0, h)):
        steps = _seam_steps(gray, axis)
        found = [0, size]
        for k in (3, 2):
            cuts = [round(i * size / k) for i in range(1, k)]
            if all(_is_seam(steps, c - 1) for c in cuts):
                found = [0, *cuts, size]
                break
        splits.append(found)
    xs, ys = splits
    if len(xs) == len(ys) == 2:
        return []
    return [(xs[i], ys[j], xs[i + 1], ys[j + 1]) for j in range(len(ys) - 1) for i in range(len(xs) - 1)]


def picture_regions(pixels: npt.NDArray[np.uint8], *, most: int = _MAX_PARTS) -> list[Box]:
    """Boxes of the pictures that flat gutters separate within (h, w, 3) uint8 ``pixels``, largest
    first, at most ``most``; none when the picture is one piece (no flat line crosses it)."""
    h, w = pixels.shape[:2]
    if h < 32 or w < 32:
        return []
    cv2 = opencv()
    gray = np.asarray(cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY), dtype=np.float32)
    level = _background(gray.std(axis=1), gray.mean(axis=1), gray.std(axis=0), gray.mean(axis=0))
    found: list[Box] = []
    if level is None:  # no flat line crosses it: a collage's tiles may still meet at seams
        found = _even_grid(gray)
    else:
        _cut(gray, (0, 0, w, h), level, 0, found)
    kept = [
        b for b in found
        if (b[2] - b[0]) >= _MIN_SIDE * w and (b[3] - b[1]) >= _MIN_SIDE * h
        and (b[2] - b[0]) * (b[3] - b[1]) >= _MIN_AREA * w * h
        and (b[2] - b[0]) * (b[3] - b[1]) < 0.9 * w * h
    ]  # fmt: skip
    return sorted(kept, key=lambda b: -(b[2] - b[0]) * (b[3] - b[1]))[:most]
