"""Local features: ORB keypoints and their 256-bit binary descriptors.

Global hashes describe the whole frame, so they break when the frame changes
(a crop, a border, a caption bar, a picture shown inside a page). Local
features describe small patches around corners and survive all of these:
two pictures that share a region share many descriptors, and their keypoints
agree on one geometric transform. (Rublee et al., "ORB: an efficient
alternative to SIFT or SURF", ICCV 2011.)

The picture is brought to ``LOCAL_SIDE`` pixels on its long side first, so
that descriptor scales are comparable between pictures of any resolution.
Keypoint positions are stored relative to the picture's size (0..1), and
the strongest ``max_features`` keypoints are kept, in ``spread_order``: each
region's strongest first, so that whatever keeps only the first few keeps
some of every part of the picture.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import FingerprintError

__all__ = [
    "LOCAL_SIDE",
    "SPREAD_CELLS",
    "LocalFeatures",
    "local_features",
    "no_features",
    "opencv",
    "query_views",
    "spread_order",
    "too_thin",
]

#: long side, in pixels, that pictures are resized to before keypoints are found
LOCAL_SIDE = 512
_MAGIC = b"LKO1"


@dataclass(frozen=True, slots=True, eq=False)
class LocalFeatures:
    """Keypoints (n, 2) as (x, y) fractions of width and height, in ``spread_order``, with their
    ORB descriptors (n, 32) uint8 and the aspect ratio (width / height) of the picture."""

    points: npt.NDArray[np.float32]
    descriptors: npt.NDArray[np.uint8]
    aspect: float

    def __len__(self) -> int:
        return int(self.descriptors.shape[0])

    def to_bytes(self) -> bytes:
        """Compact form: positions as 16-bit fractions, descriptors as they are (36 bytes a keypoint)."""
        xy = np.clip(np.rint(self.points * 65535.0), 0, 65535).astype(">u2")
        return b"".join([_MAGIC, struct.pack(">If", len(self), self.aspect), xy.tobytes(), self.descriptors.tobytes()])

    @classmethod
    def from_bytes(cls, data: bytes) -> LocalFeatures:
        """Read back ``to_bytes``. Raises ``FingerprintError`` on anything else."""
        if data[:4] != _MAGIC or len(data) < 12:
            raise FingerprintError("not serialised lookalike local features")
        n, aspect = struct.unpack_from(">If", data, 4)
        if len(data) != 12 + 36 * n:
            raise FingerprintError("serialised local features have the wrong length")
        xy = np.frombuffer(data, dtype=">u2", count=2 * n, offset=12).astype(np.float32).reshape(n, 2) / 65535.0
        desc = np.frombuffer(data, dtype=np.uint8, count=32 * n, offset=12 + 4 * n).reshape(n, 32).copy()
        return cls(points=xy.astype(np.float32), descriptors=desc, aspect=float(aspect))


def opencv() -> Any:
    """OpenCV, imported where used, with its own thread pool off: every call here works on one
    small picture, where the pool's hand-offs cost more than they save, and callers already run
    one process per core."""
    import cv2

    if cv2.getNumThreads() != 1:
        cv2.setNumThreads(1)
    return cv2


#: ORB's border, in pixels (its ``edgeThreshold``): no keypoint is kept nearer to an edge
_EDGE = 15


def too_thin(width: int, height: int, side: int = LOCAL_SIDE) -> bool:
    """Whether a picture of this size is too thin for any keypoint: brought to ``side`` pixels on
    its long side, its short side is within ORB's border on both edges (at ``LOCAL_SIDE``, an
    aspect of about 17:1)."""
    return round(min(width, height) * side / max(width, height, 1)) <= 2 * _EDGE


def no_features(aspect: float) -> LocalFeatures:
    """The features of a picture where none were found (blank, or too thin for any)."""
    return LocalFeatures(points=np.zeros((0, 2), np.float32), descriptors=np.zeros((0, 32), np.uint8), aspect=aspect)


def _resized(gray: npt.NDArray[np.uint8], side: int) -> npt.NDArray[np.uint8]:
    """``gray`` brought to ``side`` pixels on its long side (area averaging down, linear up)."""
    cv2 = opencv()
    h, w = gray.shape[:2]
    scale = side / max(h, w)
    if scale == 1.0:
        return gray
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    method = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    return np.asarray(cv2.resize(gray, size, interpolation=method), dtype=np.uint8)


def _grey(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    cv2 = opencv()
    return np.asarray(cv2.cvtColor(np.ascontiguousarray(pixels), cv2.COLOR_RGB2GRAY), dtype=np.uint8)


def _detect(gray: npt.NDArray[np.uint8], max_features: int, aspect: float) -> LocalFeatures:
    """ORB keypoints of a grey picture already at the size to search, in ``spread_order``."""
    cv2 = opencv()
    orb = cv2.ORB_create(nfeatures=max_features, fastThreshold=10, edgeThreshold=_EDGE, patchSize=31)
    keypoints, descriptors = orb.detectAndCompute(gray, None)
    if descriptors is None or not keypoints:
        return no_features(aspect)
    response = np.fromiter((k.response for k in keypoints), np.float32, len(keypoints))
    order = np.argsort(-response, kind="stable")[:max_features]
    gh, gw = gray.shape[:2]
    pts = np.asarray(cv2.KeyPoint_convert(keypoints), dtype=np.float32).reshape(-1, 2)
    xy = (pts[order] / np.array([gw, gh], np.float32)).astype(np.float32)
    spread = spread_order(xy)
    return LocalFeatures(
        points=np.ascontiguousarray(xy[spread], dtype=np.float32),
        descriptors=np.ascontiguousarray(descriptors[order][spread]),
        aspect=aspect,
    )


def local_features(pixels: npt.NDArray[np.uint8], *, max_features: int = 500, side: int = LOCAL_SIDE) -> LocalFeatures:
    """The strongest ORB keypoints of (h, w, 3) uint8 pixels, at most ``max_features``, in
    ``spread_order``, found with the picture brought to ``side`` pixels on its long side
    (``LOCAL_SIDE`` unless asked)."""
    h, w = pixels.shape[:2]
    if too_thin(w, h, side):
        # too thin for any keypoint: ORB keeps none within _EDGE pixels of a border, and its
        # pyramid's resize fails outright on a level less than a pixel high (aspect about 175:1
        # and beyond); such a picture is checked by the signals that apply (exact, pixels, hashes)
        return no_features(w / h)
    return _detect(_resized(_grey(pixels), side), max_features, w / h)


def query_views(
    pixels: npt.NDArray[np.uint8], *, max_features: int, coarse_side: int, coarse_features: int
) -> tuple[LocalFeatures, LocalFeatures, LocalFeatures]:
    """``local_features`` of (h, w, 3) uint8 pixels and of their mirror image (``max_features``
    each), and at ``coarse_side`` (``coarse_features``), from one grey picture brought to
    ``LOCAL_SIDE``: converting and resizing a large query once instead of three times (a mirror
    commutes with both; the coarse view is resized from the ``LOCAL_SIDE`` one)."""
    h, w = pixels.shape[:2]
    aspect = w / h
    grey = _resized(_grey(pixels), LOCAL_SIDE)
    if too_thin(w, h):
        return no_features(aspect), no_features(aspect), no_features(aspect)
    direct = _detect(grey, max_features, aspect)
    mirrored = _detect(np.ascontiguousarray(grey[:, ::-1]), max_features, aspect)
    coarse = (
        no_features(aspect)
        if too_thin(w, h, coarse_side)
        else _detect(_resized(grey, coarse_side), coarse_features, aspect)
    )
    return direct, mirrored, coarse


#: cells a side of the grid that ``spread_order`` deals keypoints from: 64 cells, one for each of
#: the crop tier's ``LOCAL_CODES`` vote keys. The public benchmark's portrait re-crop of a landscape
#: wallpaper met 3 of its original's 64 strongest keys and 27 of these (its natural variants
#: 20/21 -> 21/21 found); with the query's coarse view (``match.local``), 150 stand-in 60-70 %
#: centre crops: 0.873 -> 0.913 found as duplicates.
SPREAD_CELLS = 8


def spread_order(points: npt.NDArray[np.float32]) -> npt.NDArray[np.int64]:
    """The order in which to keep keypoints given strongest first (``points`` as fractions of the
    frame): the strongest of each cell of a ``SPREAD_CELLS`` x ``SPREAD_CELLS`` grid first (the
    cells' strongest, strongest first), then each cell's second strongest, and so on.

    Whatever keeps only the first few (the crop tier's ``LOCAL_CODES`` vote keys, a query's voting
    descriptors) then holds keypoints from all over the picture, not the few corners where the
    strongest bunch, so that a copy showing only part of the picture (a tight crop, a portrait cut
    of a landscape) still meets some of them. The grid-bucketing of keypoints by Mur-Artal,
    Montiel and Tardós, "ORB-SLAM", IEEE T-RO 2015, does this for the same reason."""
    if not len(points):
        return np.zeros(0, np.int64)
    cell = np.clip((points * SPREAD_CELLS).astype(np.int64), 0, SPREAD_CELLS - 1)
    key = cell[:, 1] * SPREAD_CELLS + cell[:, 0]
    by_cell = np.argsort(key, kind="stable")  # each cell's keypoints together, strongest first
    first = np.searchsorted(key[by_cell], key[by_cell])  # where each one's cell starts
    rank = np.empty(len(points), np.int64)  # each keypoint's rank within its cell, strongest 0
    rank[by_cell] = np.arange(len(points)) - first
    return np.lexsort((np.arange(len(points)), rank)).astype(np.int64)
