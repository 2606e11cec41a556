"""``undo``: put back what a ``move`` or ``trash`` manifest moved, and remove what a step that did
not finish left behind (see ``scan.actions`` for the manifest).

Each file is put back as it was moved (``fileops.move_verified``): opened at its target, its
SHA-256 read through the open descriptor and compared with the one the manifest planned, and
moved back only when they agree and its original place is free. A move killed between its copy
and the removal of its source (across file systems) left the file in both places: the copy at the
target, verified to be the source's bytes, is removed. Temporary files the manifest names (a
copy cut short by a full disk or a kill, a hard link never renamed into place) are removed for
every action, then ``delete`` and ``hardlink`` manifests say they cannot be undone.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from lookalike.errors import ConfigError, FetchError
from lookalike.scan.actions import MANIFEST_VERSION, Action, ActionReport, Step
from lookalike.scan.fileops import StepError, move_verified, open_verified
from lookalike.scan.options import is_under

__all__ = ["read_manifest", "undo"]

#: manifests this lookalike reads: 1 (before the SHA-256 of each step was kept) and the current one
_READABLE = (1, MANIFEST_VERSION)


def read_manifest(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, Any]], list[dict[str, Any]]]:
    """(header, planned steps, every later line) of a manifest.

    Raises ``FetchError`` for a file that is not one."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FetchError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    except UnicodeDecodeError as exc:
        raise FetchError(f"{path}: not a lookalike manifest (not UTF-8 text)") from exc
    try:
        objs = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise FetchError(f"{path}: not a lookalike manifest (line {exc.lineno} is not JSON)") from exc
    except RecursionError as exc:
        raise FetchError(f"{path}: not a lookalike manifest (JSON nested too deeply)") from exc
    if not objs or not isinstance(objs[0], dict) or objs[0].get("lookalike_manifest") not in _READABLE:
        raise FetchError(f"{path}: not a lookalike manifest")
    rest = [o for o in objs[1:] if isinstance(o, dict)]
    return objs[0], [o for o in rest if "step" in o], [o for o in rest if "step" not in o]


def undo(manifest: str | os.PathLike[str]) -> ActionReport:
    """Put back every file a ``move`` or ``trash`` manifest moved, newest step first, and remove
    the temporary files of steps that did not finish (see the module docstring).

    A file is moved back when it is still at its target with the bytes planned and its original
    place is free; the rest are reported as failed. Raises ``FetchError`` for an unreadable
    manifest and ``ConfigError`` for a manifest of an action that cannot be undone (delete,
    hardlink), once it has removed their temporary files."""
    header, planned, events = read_manifest(manifest)
    try:
        action = Action(header.get("action", "report"))
    except ValueError as exc:
        raise FetchError(f"{manifest}: not a lookalike manifest (unknown action)") from exc
    temps = [str(o["path"]) for o in events if "temp" in o and isinstance(o.get("path"), str)]
    for tmp in temps:
        if os.path.basename(tmp).startswith(".lookalike-") and os.path.lexists(tmp):
            os.unlink(tmp)  # a step's temporary file, left by a step that did not finish
    if not action.undoable:
        raise ConfigError(f"a {action.value} cannot be undone; {manifest} lists the files it touched")
    done = {o["done"] for o in events if "done" in o}
    report = ActionReport(manifest=str(manifest))
    dirs: set[str] = set()
    with open(manifest, "a", encoding="utf-8") as log:

        def announce(tmp: str) -> None:  # undo's own temporary files, named for the next undo
            log.write(json.dumps({"temp": "undo", "path": tmp}) + "\n")
            log.flush()
            os.fsync(log.fileno())

        for o in reversed(planned):
            s = Step(
                action, str(o["path"]), str(o["target"]), str(o.get("keeper", "")), int(o.get("size", 0)),
                sha256=str(o.get("sha256") or ""),
            )  # fmt: skip
            try:
                if _put_back(s, finished=o["step"] in done, announce=announce):
                    dirs.add(os.path.dirname(s.target))
                    report.done.append(s)
            except (StepError, OSError) as exc:
                report.failed.append((s, str(exc) if isinstance(exc, StepError) else f"{exc.strerror or exc}"))
    _prune_empty(dirs, stop=_common_target_root(planned))
    return report


def _put_back(s: Step, *, finished: bool, announce: Any) -> bool:
    """Move one step's file back; False when there is nothing to do (the step never moved it).
    Raises ``StepError`` or ``OSError`` when it cannot be put back."""
    at_target, at_source = os.path.lexists(s.target), os.path.lexists(s.path)
    if not at_target:
        if at_source:
            return False  # never moved (the run stopped before it, or it failed)
        raise StepError(f"{s.target} is missing")
    if at_source:
        if finished or not s.sha256:
            raise StepError(f"{s.path} exists again: not overwritten")
        # a move cut short after its copy was in place: the source is whole, the copy is removed
        with (
            open_verified(s.path, s.sha256, "the original") as orig,
            open_verified(s.target, s.sha256, "its copy") as copy,
        ):
            if orig.identity == copy.identity:
                raise StepError(f"{s.path} and {s.target} are one file: not removed")
            os.unlink(s.target)
        return True
    expected = s.sha256
    if not expected:  # a manifest from before the SHA-256 was kept: nothing to compare with, as then
        with open(s.target, "rb") as fh:
            expected = hashlib.file_digest(fh, "sha256").hexdigest()
    with open_verified(s.target, expected, "the moved file") as moved:
        move_verified(s.target, moved, s.path, announce)
    return True


def _common_target_root(planned: list[dict[str, Any]]) -> str:
    targets = [os.path.dirname(str(o["target"])) for o in planned if o.get("target")]
    return os.path.commonpath(targets) if targets else ""


def _prune_empty(dirs: set[str], *, stop: str) -> None:
    """Remove the folders a move made that are empty again, up to ``stop``'s parent (never above)."""
    if not stop:
        return
    for d in sorted(dirs, key=len, reverse=True):
        while is_under(d, stop):
            try:
                os.rmdir(d)
            except OSError:
                break
            if d == stop:
                break
            d = os.path.dirname(d)
