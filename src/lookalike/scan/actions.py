"""Acting on the copies ``find`` found — never on a keeper — with an undo manifest written first.

Actions (on the members of each group that are not kept):

* ``report``    nothing is done (the default);
* ``move``      to ``--to DIR``, keeping each file's path relative to the scanned folder;
* ``trash``     the same, into a trash folder (``.lookalike-trash/<time>/`` in the scanned folder
                unless told otherwise: hidden, so later scans skip it);
* ``hardlink``  the copy is replaced by a hard link to the keeper (same file system only);
* ``delete``    the copy is deleted.

The manifest is JSON Lines. Its first line describes the run; then comes one line per planned
step (path, target, keeper, size and mtime as read), all written and flushed to disk before the
first file is touched; then one line per finished or failed step. A crash half-way therefore
leaves a manifest that names every step that may have happened, and ``undo`` puts back each moved
or trashed file that is still at its target and whose original place is free. Deleted files and
replaced (hard-linked) copies cannot come back: their manifest says what was done.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import stat
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from lookalike.errors import ConfigError, FetchError
from lookalike.scan.options import is_under
from lookalike.scan.results import FindResult

__all__ = [
    "MANIFEST_VERSION", "Action", "ActionReport", "Step", "apply_actions", "held_back", "plan_actions", "undo",
]  # fmt: skip

MANIFEST_VERSION = 1


class Action(StrEnum):
    """What to do with the copies that are not kept. Values are typed by users and stored in manifests."""

    REPORT = "report"
    MOVE = "move"
    HARDLINK = "hardlink"
    TRASH = "trash"
    DELETE = "delete"

    @property
    def touches_files(self) -> bool:
        """Whether this action changes anything on disk."""
        return self is not Action.REPORT

    @property
    def undoable(self) -> bool:
        """Whether ``undo`` can reverse it."""
        return self in (Action.MOVE, Action.TRASH)


@dataclass(frozen=True, slots=True)
class Step:
    """One file to act on: ``target`` is where it goes (move, trash) or the keeper it is linked to (hardlink)."""

    action: Action
    path: str
    target: str
    keeper: str
    size: int
    #: why the file is acted on: how it copies the keeper (its verdict, score and evidence)
    why: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``find --dry-run --json``'s plan)."""
        return {
            "action": self.action.value, "source": self.path, "destination": self.target or None,
            "keeper": self.keeper, "bytes": self.size, "why": self.why,
        }  # fmt: skip

    def describe(self) -> str:
        """One line for a person."""
        if self.action in (Action.MOVE, Action.TRASH):
            return f"{self.action.value} {self.path} -> {self.target}"
        if self.action is Action.HARDLINK:
            return f"hardlink {self.path} -> {self.keeper}"
        return f"{self.action.value} {self.path}  (kept: {self.keeper})"


@dataclass(slots=True)
class ActionReport:
    """What ``apply_actions`` (or ``undo``) did."""

    manifest: str = ""
    done: list[Step] = field(default_factory=list)
    failed: list[tuple[Step, str]] = field(default_factory=list)


def base_folder(roots: Sequence[str]) -> str:
    """The folder paths are kept relative to: the common folder of the scanned roots."""
    dirs = [r if os.path.isdir(r) else os.path.dirname(r) for r in roots] or [os.getcwd()]
    return os.path.commonpath(dirs)


def plan_actions(
    result: FindResult, action: Action, *, to: str | os.PathLike[str] | None = None, include_edited: bool = False
) -> list[Step]:
    """The steps ``action`` would take on the non-kept members of every group: the eligible ones
    (``Member.eligible``), and with ``include_edited`` the edited copies too.

    ``to``: the destination folder of ``move`` (required) and ``trash`` (default
    ``.lookalike-trash/<time>`` in the scanned folder). Raises ``ConfigError``."""
    if action is Action.REPORT:
        return []
    base = base_folder(result.roots)
    if action is Action.MOVE and to is None:
        raise ConfigError("--action move needs --to DIR")
    if action is Action.TRASH and to is None:
        to = os.path.join(base, ".lookalike-trash", time.strftime("%Y%m%d-%H%M%S"))
    dest = os.path.abspath(to) if to is not None else ""
    kept = {m.path for g in result.groups for m in g.members if m.keep}
    held = dict(held_back(result))
    steps: list[Step] = []
    for g in result.groups:
        for m in g.actionable(include_edited=include_edited):
            if m.path in kept or m.path == g.keep or m.path in held:  # actionable never holds the first two
                continue
            if dest and is_under(m.path, dest):
                continue  # already in the destination (an earlier run's)
            target = ""
            if action in (Action.MOVE, Action.TRASH):
                rel = os.path.relpath(m.path, base)
                if rel.startswith(os.pardir):
                    rel = m.path.lstrip(os.sep)
                target = os.path.join(dest, rel)
            elif action is Action.HARDLINK:
                target = g.keep
            why = f"a copy of the keeper, {m.verdict} (score {m.score:.3f}): {m.evidence}"
            steps.append(Step(action, m.path, target, g.keep, m.byte_size, why))
    return steps


def held_back(result: FindResult) -> list[tuple[str, str]]:
    """The copies no action touches although they are not kept, each with the reason: a copy
    that other scanned paths reach by symlink (acting on it would leave those links pointing at
    nothing) or by hard link (removing one of its names frees nothing and keeps the copy).
    A file reached twice through a folder (named twice, or through a symlink to it) is not held
    back: it is one file, in one place."""
    also = {a.path: a.also for a in result.aliases}
    out: list[tuple[str, str]] = []
    for g in result.groups:
        for m in g.removable:
            links = [p for p in also.get(m.path, ()) if os.path.islink(p)]
            names = [p for p in also.get(m.path, ()) if p not in links and not _same_place(p, m.path)]
            if links:
                out.append((m.path, f"symlinks point to it ({', '.join(links)}): acting on it would break them"))
            elif names:
                out.append(
                    (m.path, f"it has other names (hard links: {', '.join(names)}): acting on one frees nothing")
                )
    return out


def _same_place(a: str, b: str) -> bool:
    """Whether two paths name one directory entry (through symlinked folders), not two hard links."""
    return os.path.realpath(a) == os.path.realpath(b)


def _line(fh: Any, obj: dict[str, Any]) -> None:
    fh.write(json.dumps(obj, separators=(",", ":")) + "\n")
    fh.flush()
    os.fsync(fh.fileno())


def apply_actions(
    steps: Sequence[Step], *, manifest: str | os.PathLike[str], protected: Sequence[str] = ()
) -> ActionReport:
    """Carry out ``steps``, writing the manifest (see the module docstring) before the first.

    A step fails alone, the others going on, when its file changed size since it was read, when
    its target exists, or when it would lose a picture: its file is, right before acting (device
    and inode, whatever path reaches it), the same file as its keeper or as any file in
    ``protected`` (keepers, keep-in folders), or its keeper is gone. A step on a symlink acts on
    the link alone, never on the file it points to.
    Raises ``FetchError`` when the manifest cannot be written (then nothing was done)."""
    report = ActionReport(manifest=str(manifest))
    if not steps:
        return report
    keep = set(protected)
    path = Path(manifest)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(path, "x", encoding="utf-8")  # noqa: SIM115 - kept open while acting
    except OSError as exc:
        raise FetchError(f"{path}: cannot write the undo manifest ({exc.strerror or exc})") from exc
    with fh:
        _line(fh, {"lookalike_manifest": MANIFEST_VERSION, "action": steps[0].action.value,
                   "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "steps": len(steps)})  # fmt: skip
        stats: list[os.stat_result | None] = []
        for i, s in enumerate(steps):
            try:
                st: os.stat_result | None = os.stat(s.path)
            except OSError:
                st = None
            stats.append(st)
            planned = {
                "step": i, "action": s.action.value, "path": s.path, "target": s.target, "keeper": s.keeper,
                "size": s.size, "mtime_ns": st.st_mtime_ns if st else None, "why": s.why,
            }  # fmt: skip
            fh.write(json.dumps(planned, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
        kept_files = {_identity(p) for p in keep} - {None}
        for i, (s, st) in enumerate(zip(steps, stats)):
            try:
                if s.path in keep or s.path == s.keeper:
                    raise _StepError("refused: the file is kept")
                if st is None:
                    raise _StepError("the file is gone")
                if st.st_size != s.size:
                    raise _StepError("the file changed since it was read")
                _check_not_kept(s, kept_files)
                _act(s)
            except (_StepError, OSError) as exc:
                message = str(exc) if isinstance(exc, _StepError) else (exc.strerror or str(exc))
                report.failed.append((s, message))
                _line(fh, {"failed": i, "error": message})
            else:
                report.done.append(s)
                _line(fh, {"done": i})
    return report


class _StepError(Exception):
    """A step refused before touching anything."""


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` leads to, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _check_not_kept(s: Step, kept_files: set[tuple[int, int] | None]) -> None:
    """Refuse a step that would lose a picture, judged by what the paths lead to *now*: a
    symlink, hard link or folder alias made or changed since the plan is caught here."""
    try:
        target = os.stat(s.path)
    except OSError as exc:
        raise _StepError("the file is gone") from exc
    if not stat.S_ISREG(target.st_mode):
        raise _StepError("refused: not a regular file")
    keeper = _identity(s.keeper)
    if keeper is None:
        raise _StepError(f"refused: its keeper {s.keeper} is gone, so this may be the last copy")
    if (target.st_dev, target.st_ino) == keeper:
        raise _StepError("refused: the same file as its keeper (reached through another path)")
    if (target.st_dev, target.st_ino) in kept_files:
        raise _StepError("refused: the same file as a kept file (reached through another path)")


def _act(s: Step) -> None:
    if s.action in (Action.MOVE, Action.TRASH):
        if os.path.lexists(s.target):
            raise _StepError(f"{s.target} already exists")
        os.makedirs(os.path.dirname(s.target), exist_ok=True)
        _move(s.path, s.target)
    elif s.action is Action.HARDLINK:
        if os.path.samefile(s.path, s.keeper):
            return
        tmp = f"{s.path}.lookalike-link"
        try:
            os.link(s.keeper, tmp)
        except OSError as exc:
            if exc.errno == errno.EXDEV:
                raise _StepError("cannot hard-link across file systems") from exc
            raise
        os.replace(tmp, s.path)
    elif s.action is Action.DELETE:
        os.unlink(s.path)


def _move(src: str, dst: str) -> None:
    try:
        os.rename(src, dst)
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
        shutil.move(src, dst)  # another file system: copy (with times) and remove


def read_manifest(path: str | os.PathLike[str]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(header, planned steps) of a manifest. Raises ``FetchError`` for a file that is not one."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise FetchError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    try:
        objs = [json.loads(line) for line in lines if line.strip()]
    except json.JSONDecodeError as exc:
        raise FetchError(f"{path}: not a lookalike manifest (line {exc.lineno} is not JSON)") from exc
    if not objs or not isinstance(objs[0], dict) or objs[0].get("lookalike_manifest") != MANIFEST_VERSION:
        raise FetchError(f"{path}: not a lookalike manifest")
    return objs[0], [o for o in objs[1:] if isinstance(o, dict) and "step" in o]


def undo(manifest: str | os.PathLike[str]) -> ActionReport:
    """Put back every file a ``move`` or ``trash`` manifest moved, newest step first.

    A file is moved back when it is still at its target and its original place is free; the
    rest are reported as failed. Raises ``FetchError`` for an unreadable manifest and
    ``ConfigError`` for a manifest of an action that cannot be undone (delete, hardlink)."""
    header, planned = read_manifest(manifest)
    action = Action(header.get("action", "report"))
    if not action.undoable:
        raise ConfigError(f"a {action.value} cannot be undone; {manifest} lists the files it touched")
    report = ActionReport(manifest=str(manifest))
    dirs: set[str] = set()
    for o in reversed(planned):
        s = Step(action, str(o["path"]), str(o["target"]), str(o.get("keeper", "")), int(o.get("size", 0)))
        if not os.path.lexists(s.target):
            if os.path.lexists(s.path):
                continue  # never moved (the run stopped before it, or it failed)
            report.failed.append((s, f"{s.target} is missing"))
            continue
        if os.path.lexists(s.path):
            report.failed.append((s, f"{s.path} exists again: not overwritten"))
            continue
        os.makedirs(os.path.dirname(s.path), exist_ok=True)
        _move(s.target, s.path)
        dirs.add(os.path.dirname(s.target))
        report.done.append(s)
    _prune_empty(dirs, stop=_common_target_root(planned))
    return report


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
