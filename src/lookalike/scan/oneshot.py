"""``lookalike.find_duplicates``: the library's one-call entry to ``lookalike find``, with no
database to manage unless one is asked for."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from lookalike.scan.find import find_groups
from lookalike.scan.options import FindOptions, Progress
from lookalike.scan.results import FindResult

__all__ = ["find_duplicates"]

#: ``db`` values that mean "nothing kept after the call" (SQLite's own name for an in-memory database)
_EPHEMERAL = (":memory:", "")


def find_duplicates(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
    *,
    db: str | os.PathLike[str] | None = None,
    options: FindOptions | None = None,
    progress: Progress | None = None,
) -> FindResult:
    """Groups of copies among the image files under ``paths`` (a folder, a file, or a list of them).

    ``db``: an SQLite file that keeps the fingerprints between calls (a second call reads only new
    or changed files); ``None`` or ``":memory:"`` keeps nothing (a temporary file, deleted on return).
    Files that cannot be read are listed in ``FindResult.errors``; the rest go on.
    Raises ``StoreError`` when the database is unusable, ``ConfigError`` for bad options.
    """
    roots = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    if db is None or os.fspath(db) in _EPHEMERAL:
        with tempfile.TemporaryDirectory(prefix="lookalike-find-") as tmp:
            return find_groups(roots, db=Path(tmp) / "find.db", options=options, progress=progress)
    return find_groups(roots, db=db, options=options, progress=progress)
