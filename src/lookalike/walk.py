"""Finding image files under the paths a user names."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["IMAGE_SUFFIXES", "FoundFile", "FoundFiles", "each_file_once", "find_files", "iter_image_files"]

_P = TypeVar("_P", str, Path)

#: file name endings taken from folders; a file named explicitly is always tried
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".apng", ".webp", ".gif", ".bmp", ".dib",
     ".tif", ".tiff", ".avif", ".heic", ".heif"}
)  # fmt: skip


def iter_image_files(
    paths: Iterable[str | os.PathLike[str]], *, on_error: Callable[[OSError], None] | None = None
) -> Iterator[Path]:
    """Each named file, and every image file (by ending) in each named folder, recursively,
    in sorted order; hidden files and folders inside a named folder are skipped.
    A path that does not exist is yielded as it is, so that reading it reports the error.
    A folder that cannot be listed is passed to ``on_error`` (its ``filename`` names it) and
    skipped; without ``on_error``, skipped silently."""
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            yield path
            continue
        for root, dirs, files in os.walk(path, onerror=on_error):
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES:
                    yield Path(root) / name


def each_file_once(paths: Iterable[_P]) -> Iterator[_P]:
    """``paths`` in order, less each path to a regular file that an earlier path already led to
    (same device and inode: a folder named twice or through a symlink, a symlink beside its
    target, a hard link), so that a command reads and reports each file once. Paths that cannot
    be looked at (missing, URLs) and special files pass through, for their reader to report."""
    seen: set[tuple[int, int]] = set()
    for p in paths:
        try:
            st = os.stat(p)
        except (OSError, ValueError):
            yield p
            continue
        if stat.S_ISREG(st.st_mode):
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
        yield p


@dataclass(frozen=True, slots=True)
class FoundFile:
    """One regular file, however many paths reached it: ``path`` stands for it (see
    ``find_files``) and ``also`` holds the other paths that lead to the same file (device and
    inode): a symlink to it, a hard link, the same folder reached twice or through a symlink."""

    path: str
    also: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class FoundFiles:
    """What ``find_files`` found: the regular files (one per file, sorted by path), and the
    paths not to read, each with its one-line reason: FIFOs, sockets, devices (``skipped``) and
    paths that cannot be looked at (a dangling symlink, no permission, a folder that cannot be
    listed: ``unreadable``)."""

    files: tuple[FoundFile, ...]
    skipped: tuple[tuple[str, str], ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()


def find_files(paths: Iterable[str | os.PathLike[str]]) -> FoundFiles:
    """The files of ``iter_image_files(paths)`` by what they are, not by the path that reached
    them: paths are made absolute (symlinks are not resolved: a link's own name is kept), each
    file is listed once however many paths lead to it, and only regular files are listed.

    The path that stands for a file is one reached without any symlink, else one that is not
    itself a symlink, else the first in sorted order: the name a person would use for it."""
    by_id: dict[tuple[int, int], list[str]] = {}
    special: dict[tuple[int, int], list[str]] = {}
    modes: dict[str, int] = {}
    skipped: list[tuple[str, str]] = []
    unreadable: list[tuple[str, str]] = []

    def folder_error(exc: OSError) -> None:  # a folder that cannot be listed is an error row, not silence
        folder = os.path.abspath(str(exc.filename))
        unreadable.append(
            (folder, f"{folder}: cannot read the folder ({exc.strerror or exc}): its files were not read")
        )

    for path in dict.fromkeys(os.path.abspath(p) for p in iter_image_files(paths, on_error=folder_error)):
        try:
            st = os.stat(path)
        except OSError as exc:
            why = "a symlink to nothing" if os.path.islink(path) else (exc.strerror or str(exc))
            unreadable.append((path, f"{path}: cannot read ({why})"))
            continue
        (by_id if stat.S_ISREG(st.st_mode) else special).setdefault((st.st_dev, st.st_ino), []).append(path)
        modes[path] = st.st_mode
    files = []
    for reached in by_id.values():
        main = _standing_path(reached)
        files.append(FoundFile(main, tuple(sorted(p for p in reached if p != main))))
    files.sort(key=lambda f: f.path)
    from lookalike.decode.source import file_kind  # here: the decode package loads NumPy and Pillow

    for reached in special.values():
        main = _standing_path(reached)
        skipped.append((main, f"{main}: {file_kind(modes[main])}, not a regular file: skipped, not read"))
    return FoundFiles(tuple(files), tuple(sorted(skipped)), tuple(sorted(unreadable)))


def _standing_path(paths: list[str]) -> str:
    if len(paths) == 1:
        return paths[0]
    ordered = sorted(paths)
    for p in ordered:
        if os.path.realpath(p) == p:
            return p
    return next((p for p in ordered if not os.path.islink(p)), ordered[0])
