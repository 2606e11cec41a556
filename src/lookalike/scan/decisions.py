"""A person's decisions on ``find`` groups, as the HTML report exports them.

The file is JSON::

    {"lookalike_decisions": 1,
     "decisions": [{"path": "/photos/a.jpg", "decision": "keep"},
                   {"path": "/photos/b.jpg", "decision": "exclude"}]}

``keep`` makes the file its group's keeper; ``exclude`` leaves the file out of every action.
``find --decisions FILE`` records them in the find cache, where later runs apply them too.
"""

from __future__ import annotations

import json
import os
from typing import Any

from lookalike.errors import ConfigError

__all__ = ["DECISIONS_VERSION", "read_decisions"]

DECISIONS_VERSION = 1
_KINDS = ("keep", "exclude")


def read_decisions(path: str | os.PathLike[str]) -> tuple[tuple[str, str], ...]:
    """(absolute path, ``keep`` or ``exclude``) pairs from a decisions file (see the module docstring).

    Raises ``ConfigError`` for a file that cannot be read or is not a decisions file."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc: Any = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the decisions file ({exc.strerror or exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a decisions file (not JSON: {exc})") from exc
    if not isinstance(doc, dict) or doc.get("lookalike_decisions") != DECISIONS_VERSION:
        raise ConfigError(f'{path}: not a decisions file (no "lookalike_decisions": {DECISIONS_VERSION})')
    items = doc.get("decisions")
    if not isinstance(items, list):
        raise ConfigError(f'{path}: "decisions" must be a list')
    out: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or item.get("decision") not in _KINDS:
            raise ConfigError(f'{path}: decision {i + 1} needs a "path" and a "decision" of keep or exclude')
        out[os.path.abspath(item["path"])] = str(item["decision"])
    return tuple(sorted(out.items()))
