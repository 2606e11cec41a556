"""How ``find`` runs: ``FindOptions``, the progress callback, and the folder test of ``--keep-in``."""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass

from lookalike.config import DecodeLimits, Thresholds
from lookalike.errors import ConfigError
from lookalike.match import DUPLICATE_VERDICTS, Verdict
from lookalike.scan.keeper import KeepCriterion

__all__ = ["FIND_SCOPE", "FindOptions", "Progress", "is_under", "steps"]

#: the index scope ``find`` keeps its files in unless told otherwise
FIND_SCOPE = "find"

#: ``progress(total, label)`` returns a context manager yielding a function called once per item
#: done: per file read ("reading"), then per new picture checked ("matching")
Progress = Callable[[int, str], AbstractContextManager[Callable[[], None]]]


@dataclass(frozen=True, slots=True, kw_only=True)
class FindOptions:
    """How ``find_groups`` works (see ``scan.find``).

    ``keep``: an explicit keeper policy (``keeper.py``); None keeps each group's source
    (``source.py``). ``decisions``: (path, ``keep`` or ``exclude``) pairs a person made, recorded
    in the cache and applied to this run and every later one. ``link``: the verdicts that put
    two files in one group. ``rescan``: read every file again and rebuild the scope's cache.
    ``similar``: list semantic neighbours with the learned tier (``scan.similar``), embedding with
    ``model`` (an ONNX encoder; None: the built-in EfficientNet-Lite0)."""

    scope: str = FIND_SCOPE
    jobs: int = 0
    strict: bool = False
    keep: tuple[KeepCriterion, ...] | None = None
    keep_in: tuple[str, ...] = ()
    decisions: tuple[tuple[str, str], ...] = ()
    link: frozenset[Verdict] = DUPLICATE_VERDICTS
    rescan: bool = False
    limits: DecodeLimits | None = None
    thresholds: Thresholds | None = None
    similar: bool = False
    model: str | None = None

    def __post_init__(self) -> None:
        if not self.scope:
            raise ConfigError("the scope name must not be empty")
        if Verdict.DIFFERENT in self.link:
            raise ConfigError("'different' pairs cannot link files into groups")


def steps(progress: Progress | None, total: int, label: str) -> AbstractContextManager[Callable[[], None]]:
    """``progress(total, label)``, or a context whose callback does nothing when there is no ``progress``."""
    return progress(total, label) if progress else nullcontext(lambda: None)


def is_under(path: str, folder: str) -> bool:
    """Whether absolute ``path`` is ``folder`` or inside it."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)
