"""Which copy of a picture to keep: a documented, configurable order of criteria.

The default order, each criterion breaking the ties of the ones before it:

1. ``resolution``  most pixels (width x height) first: the least reduced copy;
2. ``lossless``    a lossless encoding (PNG, BMP, GIF, TIFF, lossless WebP) before a lossy one;
3. ``bytes``       the larger file first: at equal size in pixels, the less compressed copy;
4. ``oldest``      the earliest EXIF date taken (DateTimeOriginal, else DateTime) first;
                   files without a date come after dated ones;
5. ``path``        the path that sorts first, so the choice is always the same.

``newest`` (latest EXIF date first) and ``shortest-path`` can replace or join these. Files in a
``--keep-in`` folder are always kept, whatever the order says; the group's keeper is then the
best of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from lookalike.errors import ConfigError

__all__ = ["DEFAULT_KEEP", "Candidate", "KeepCriterion", "keep_order", "parse_keep"]


class KeepCriterion(StrEnum):
    """One criterion of the keeper policy (see the module docstring). Values are typed by users."""

    RESOLUTION = "resolution"
    LOSSLESS = "lossless"
    BYTES = "bytes"
    OLDEST = "oldest"
    NEWEST = "newest"
    SHORTEST_PATH = "shortest-path"
    PATH = "path"


DEFAULT_KEEP: tuple[KeepCriterion, ...] = (
    KeepCriterion.RESOLUTION,
    KeepCriterion.LOSSLESS,
    KeepCriterion.BYTES,
    KeepCriterion.OLDEST,
    KeepCriterion.PATH,
)


@dataclass(frozen=True, slots=True)
class Candidate:
    """What the policy looks at in a file."""

    path: str
    width: int
    height: int
    byte_size: int
    lossless: bool
    taken_at: str | None


def parse_keep(text: str) -> tuple[KeepCriterion, ...]:
    """``"resolution,bytes"`` to criteria; ``path`` is appended when missing so that ties always break.

    Raises ``ConfigError`` for an unknown or repeated criterion."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    known = {c.value: c for c in KeepCriterion}
    out: list[KeepCriterion] = []
    for name in names:
        if name not in known:
            raise ConfigError(f"unknown keep criterion {name!r} (choose from {', '.join(known)})")
        if known[name] in out:
            raise ConfigError(f"keep criterion {name!r} given twice")
        out.append(known[name])
    if not out:
        raise ConfigError("--keep needs at least one criterion")
    if KeepCriterion.PATH not in out:
        out.append(KeepCriterion.PATH)
    return tuple(out)


def _key(c: Candidate, criteria: Sequence[KeepCriterion]) -> tuple[object, ...]:
    parts: list[object] = []
    for k in criteria:
        if k is KeepCriterion.RESOLUTION:
            parts.append(-(c.width * c.height))
        elif k is KeepCriterion.LOSSLESS:
            parts.append(not c.lossless)
        elif k is KeepCriterion.BYTES:
            parts.append(-c.byte_size)
        elif k is KeepCriterion.OLDEST:
            parts.append((c.taken_at is None, c.taken_at or ""))
        elif k is KeepCriterion.NEWEST:
            # later dates first: compare the negated characters of the ISO date
            parts.append((c.taken_at is None, tuple(-ord(ch) for ch in (c.taken_at or ""))))
        elif k is KeepCriterion.SHORTEST_PATH:
            parts.append(len(c.path))
        else:
            parts.append(c.path)
    return tuple(parts)


def keep_order(candidates: Sequence[Candidate], criteria: Sequence[KeepCriterion] = DEFAULT_KEEP) -> list[Candidate]:
    """``candidates`` best first by ``criteria``."""
    return sorted(candidates, key=lambda c: _key(c, criteria))
