"""A person's decisions on ``find`` groups, as the HTML report exports them.

The file is JSON::

    {"lookalike_decisions": 1,
     "decisions": [{"path": "/photos/a.jpg", "decision": "keep"},
                   {"path": "/photos/b.jpg", "decision": "exclude"}]}

``keep`` makes the file its group's keeper; ``exclude`` leaves the file out of every action.
``find --decisions FILE`` appends them, in the file's order, to a log in the find cache, where
later runs apply them too: the newest decision on a path replaces older ones, and the newest
``keep`` in a group makes its keeper (keep ``c1``, later keep ``c2``: ``c2`` is kept). Paths are
compared in Unicode NFC, whatever form the file system or the file spells them in. A decision on
a path outside the scanned folders is not recorded, and one that names no file of the run is
recorded; both are reported (``record_decisions``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from lookalike.errors import ConfigError
from lookalike.scan.cache import FindCache
from lookalike.scan.cache_person import nfc
from lookalike.scan.options import is_under

__all__ = ["DECISIONS_VERSION", "read_decisions", "record_decisions"]

DECISIONS_VERSION = 1
_KINDS = ("keep", "exclude")


def read_decisions(path: str | os.PathLike[str]) -> tuple[tuple[str, str], ...]:
    """(absolute path, ``keep`` or ``exclude``) pairs from a decisions file (see the module
    docstring), in the file's order (oldest first).

    Raises ``ConfigError`` for a file that cannot be read or is not a decisions file: not UTF-8,
    not JSON, nested too deeply to read, another version, or entries of the wrong shape."""
    try:
        with open(path, encoding="utf-8") as fh:
            doc: Any = json.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the decisions file ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not a decisions file (not UTF-8 text: byte {exc.start})") from exc
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: not a decisions file (not JSON: {exc})") from exc
    except RecursionError as exc:  # JSON nested thousands deep: no decisions file is
        raise ConfigError(f"{path}: not a decisions file (JSON nested too deeply to read)") from exc
    if not isinstance(doc, dict) or "lookalike_decisions" not in doc:
        raise ConfigError(f'{path}: not a decisions file (no "lookalike_decisions": {DECISIONS_VERSION})')
    if doc["lookalike_decisions"] != DECISIONS_VERSION or isinstance(doc["lookalike_decisions"], bool):
        raise ConfigError(
            f"{path}: decisions file version {str(doc['lookalike_decisions'])[:40]!r} is not one this lookalike"
            f" reads (it reads {DECISIONS_VERSION})"
        )
    items = doc.get("decisions")
    if not isinstance(items, list):
        raise ConfigError(f'{path}: "decisions" must be a list')
    out: list[tuple[str, str]] = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str) or item.get("decision") not in _KINDS:
            raise ConfigError(f'{path}: decision {i + 1} needs a "path" and a "decision" of keep or exclude')
        if "\0" in item["path"] or not item["path"]:
            raise ConfigError(f"{path}: decision {i + 1} names no path a file can have")
        out.append((os.path.abspath(item["path"]), str(item["decision"])))
    return tuple(out)


def record_decisions(
    cache: FindCache, scope: str, decisions: Sequence[tuple[str, str]], roots: Sequence[str], files: Sequence[str]
) -> list[str]:
    """Append a run's decisions to the cache's log, but those on paths outside ``roots``; returns a
    line for each decision not recorded (outside the scanned folders) or naming none of ``files``."""
    notices: list[str] = []
    here = {nfc(f) for f in files}
    recorded: list[tuple[str, str]] = []
    for path, decision in decisions:
        if not any(is_under(nfc(path), nfc(r)) for r in roots):
            notices.append(f"decision {decision} on {path}: not recorded, it is outside the scanned folders")
            continue
        recorded.append((path, decision))
        if nfc(path) not in here:
            notices.append(f"decision {decision} on {path}: recorded, but it names no file of this run")
    if recorded:
        cache.put_decisions(scope, recorded)
    return notices
