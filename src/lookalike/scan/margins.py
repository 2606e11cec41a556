"""The margins around a picture: the bars, page, frame or caption area a copy adds around the
picture it was made from (``scan.source``: a picture with margins around another's content is
derived from it). Measured on the working-size pixels the fingerprint is computed from.

From each edge, rows (then columns, between them) that are flat run in first (letterbox bars, a
page, a window frame); a margin that starts flat goes on as a plain ground with marks on it:
clean lines of the edge's level with lines of text (a caption area beside or below the picture)
or a thin line (a mat's) between them.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

__all__ = ["margins"]

#: a margin row or column is flat when its grey levels vary less than this (standard deviation)
_FLAT_STD = 2.5
#: grey levels between two flat lines from which they are not one margin (a frame, then a plain background)
_LEVEL_JUMP = 12.0
#: a margin's plain ground: pixels within this many grey levels of the edge's level
_GROUND_LEVELS = 8.0
#: grey levels a clean ground line's median may differ from the edge's (compression noise)
_SAME_LEVEL = 2.0
#: a clean ground line, and the least ground a line of text on it keeps (glyphs never fill a line)
_CLEAN = 0.97
_MARKED = 0.35
#: lines of a thin line drawn round the picture (a mat's), crossed whatever they cover
_THIN_LINE = 3


def margins(pixels: npt.NDArray[np.uint8]) -> tuple[float, float]:
    """(share of the picture's area in margins, width / height of what they frame): rows (then
    columns, between them) running in from the edges that are flat (letterbox bars, a page or a
    window frame), or mostly of the edge's own level (a caption area of text on a plain ground,
    a mat with a thin line in it: added around a picture, not part of it)."""
    h, w = pixels.shape[:2]
    if h < 4 or w < 4:
        return 0.0, w / max(1, h)

    def grey(block: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return block.astype(np.float32).mean(axis=2) if block.ndim == 3 else block.astype(np.float32)

    def run(lines: npt.NDArray[np.uint8]) -> int:
        # lines are looked at from the edge in growing blocks: most pictures have no margin, and
        # their first line ends the run (the whole picture's grey levels cost ~7 ms at 640 x 400)
        start, size = 0, 8
        previous: float | None = None
        while start < len(lines):
            block = grey(lines[start : start + size])
            level = np.median(block, axis=1)
            before = np.concatenate([[level[0] if previous is None else previous], level[:-1]])
            # flat, and of the level of the line before: a frame ends where the picture's own
            # plain background (another level) begins
            flat = (block.std(axis=1) < _FLAT_STD) & (np.abs(level - before) <= _LEVEL_JUMP)
            if not flat.all():
                return _ground(lines, start + int(np.argmin(flat)), grey)
            previous, start, size = float(level[-1]), start + size, 2 * size
        return len(lines)

    top = run(pixels)
    bottom = run(pixels[::-1]) if top < h else 0
    inner = pixels[top : h - bottom]
    if inner.shape[0] == 0:
        return 1.0, w / h
    columns = inner.swapaxes(0, 1)  # (w, rows, channels): each column a line
    left = run(columns)
    right = run(columns[::-1]) if left < w else 0
    ih, iw = max(1, h - top - bottom), max(1, w - left - right)
    return 1.0 - ih * iw / (h * w), iw / ih


def _ground(
    lines: npt.NDArray[np.uint8], flat: int, grey: Callable[[npt.NDArray[np.uint8]], npt.NDArray[np.float32]]
) -> int:
    """Where a margin that starts flat (``flat`` lines from the edge, at least one) goes on as a
    plain ground with marks on it: clean lines (``_CLEAN`` of their pixels within
    ``_GROUND_LEVELS`` of the edge's level) with lines of text or a thin line between them. The
    ground ends where the picture starts; a picture's own edge (sky, a plain backdrop) rarely
    runs on that evenly, and when it does its copies share it."""
    if flat == 0 or flat >= len(lines):
        return flat
    level = float(np.median(grey(lines[:1])))
    # look at most half-way in, a block at a time
    limit = len(lines) // 2
    levels = grey(lines[flat:limit])
    share = (np.abs(levels - level) <= _GROUND_LEVELS).mean(axis=1)
    if not len(share):
        return flat
    # runs of clean ground lines, joined across lines of text (marks, but no less than
    # ``_MARKED`` ground) or a thin line, up to the next clean one
    # a clean line is of the edge's very level: a picture's own plain area (a sky) drifts
    clean = (share >= _CLEAN) & (np.abs(np.median(levels, axis=1) - level) <= _SAME_LEVEL)
    stop = -1
    while stop != (stop := _extend(stop, share, clean)):
        pass
    return flat + stop


def _extend(start: int, share: npt.NDArray[np.float64], clean: npt.NDArray[np.bool_]) -> int:
    """How far a ground from line ``max(start, 0)`` reaches: on through clean lines, then across
    marked lines (``share`` of ground at least ``_MARKED``) or a thin line up to the next clean one."""
    stop = max(start, 0)
    ends = np.flatnonzero(~clean[stop:])
    stop = stop + int(ends[0]) if len(ends) else len(share)
    after = stop + np.flatnonzero(clean[stop:])
    gap = int(after[0]) - stop if len(after) else len(share)
    # a thin line drawn round the picture (a mat's) is crossed whatever it covers
    if len(after) and (gap <= _THIN_LINE or share[stop : stop + gap].min(initial=1.0) >= _MARKED):
        return int(after[0]) + 1
    return stop
