"""Finding image files under the paths a user names."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from pathlib import Path

__all__ = ["IMAGE_SUFFIXES", "iter_image_files"]

#: file name endings taken from folders; a file named explicitly is always tried
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".bmp", ".dib",
     ".tif", ".tiff", ".avif", ".heic", ".heif"}
)  # fmt: skip


def iter_image_files(paths: Iterable[str | os.PathLike[str]]) -> Iterator[Path]:
    """Each named file, and every image file (by ending) in each named folder, recursively,
    in sorted order; hidden files and folders inside a named folder are skipped.
    A path that does not exist is yielded as it is, so that reading it reports the error."""
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        for root, dirs, files in os.walk(path):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    yield Path(root) / name
