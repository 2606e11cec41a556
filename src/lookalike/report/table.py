"""``find`` results as CSV: one row per group member, then one per unreadable file."""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable

from lookalike.errors import FetchError
from lookalike.scan import FindResult, Group

__all__ = ["CSV_COLUMNS", "write_csv"]

CSV_COLUMNS = (
    "group", "keep", "path", "score", "verdict", "evidence", "match", "width", "height", "bytes", "mime", "taken_at",
    "eligible", "eligibility",
)  # fmt: skip


def write_csv(result: FindResult, path: str | os.PathLike[str], groups: Iterable[Group] | None = None) -> None:
    """Write ``result`` to ``path``: a header, a row per member (group numbers from 1, the keeper
    first with keep=yes), and a row per unreadable file (group "error", the message as evidence).
    ``groups``, when given, stands for ``result.groups``, one at a time (a scale-out run reads its
    answer's groups from disk as it writes them).

    Raises ``FetchError`` when the file cannot be written."""
    try:
        # surrogateescape: a file name that is not UTF-8 is written back as the bytes it has, exactly
        with open(path, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
            out = csv.writer(fh)
            out.writerow(CSV_COLUMNS)
            for i, g in enumerate(result.groups if groups is None else groups, 1):
                for m in g.members:
                    out.writerow([
                        i, "yes" if m.keep else "no", m.path, f"{m.score:.4f}", m.verdict, m.evidence, m.match,
                        m.width, m.height, m.byte_size, m.mime, m.taken_at or "",
                        "yes" if m.eligible else "no", m.eligibility,
                    ])  # fmt: skip
            for e in result.errors:
                out.writerow(["error", "", e.path, "", e.code, e.message, "", "", "", "", "", "", "", ""])
    except OSError as exc:
        raise FetchError(f"{path}: cannot write the CSV report ({exc.strerror or exc})") from exc
