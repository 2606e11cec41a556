"""Acting on the copies ``find`` found — never on a keeper — with an undo manifest written first.

Actions (on the members of each group that are not kept):

* ``report``    nothing is done (the default);
* ``move``      to ``--to DIR``, keeping each file's path relative to the scanned folder;
* ``trash``     the same, into a trash folder (``.lookalike-trash/<time>/`` in the scanned folder
                unless told otherwise: hidden, so later scans skip it);
* ``hardlink``  the copy is replaced by a hard link to the keeper (same file system only), and
                only when its bytes are the keeper's: an edited or re-encoded copy is held back,
                ``--include-edited`` or not, since a link would lose its bytes for good;
* ``delete``    the copy is deleted.

Each step verifies, then acts on the same open file (``fileops``): right before it changes
anything it reads the SHA-256 of its file and of its keeper through open descriptors, compares
them with what the plan was built from, and refuses, naming the file, when either changed (a
picture swapped in while the prompt waited, a keeper replaced); ``--yes`` runs and plans built
from the cache alike.

The manifest is JSON Lines. Its first line describes the run; then comes one line per planned
step (path, target, keeper, size, mtime and the SHA-256 of file and keeper as read), all written
and flushed to disk before the first file is touched; then, per step, a line naming each
temporary file before it is made, and one line when the step is done or failed. A crash half-way
therefore leaves a manifest that names every step that may have happened and every file it may
have left, and ``undo`` (``scan.undo``) puts back each moved or trashed file that is still at its
target, unchanged, and whose original place is free, and removes what an unfinished step left.
Deleted files and replaced (hard-linked) copies cannot come back: their manifest says what was done.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any

from lookalike.errors import ConfigError, FetchError
from lookalike.scan.fileops import Opened, StepError, link_verified, move_verified, open_verified, still_at
from lookalike.scan.options import is_under
from lookalike.scan.results import FindResult, Group
from lookalike.walk import FoundFile

__all__ = [
    "MANIFEST_VERSION", "Action", "ActionReport", "Step", "apply_actions", "held_back", "held_by_names",
    "plan_actions",
]  # fmt: skip

#: 2: steps carry the SHA-256 of file and keeper, and temporary files are named before they exist
MANIFEST_VERSION = 2


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
    #: the SHA-256 (hex) of the file and of its keeper as the plan read them: what the step verifies
    sha256: str = ""
    keeper_sha256: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``find --dry-run --json``'s plan)."""
        return {
            "action": self.action.value, "source": self.path, "destination": self.target or None,
            "keeper": self.keeper, "bytes": self.size, "why": self.why, "sha256": self.sha256,
            "keeper_sha256": self.keeper_sha256,
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
    held = dict(held_back(result, action, include_edited=include_edited))
    steps: list[Step] = []
    for g in result.groups:
        keeper_sha = _keeper_sha(g)
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
            steps.append(Step(action, m.path, target, g.keep, m.byte_size, why, m.sha256, keeper_sha))
    return steps


def _keeper_sha(g: Group) -> str:
    return next((m.sha256 for m in g.members if m.path == g.keep), "")


def held_back(
    result: FindResult, action: Action = Action.REPORT, *, include_edited: bool = False
) -> list[tuple[str, str]]:
    """The copies ``action`` does not touch although they are not kept, each with the reason:
    those of ``held_by_names``, and for ``hardlink`` every copy whose bytes are not the
    keeper's (an edited or re-encoded copy: a link would replace it, and its edit would be lost
    for good), with ``include_edited`` or without."""
    out = held_by_names(result.groups, result.aliases)
    if action is not Action.HARDLINK:
        return out
    named = {p for p, _ in out}
    for g in result.groups:
        keeper_sha = _keeper_sha(g)
        for m in g.actionable(include_edited=include_edited):
            if m.path not in named and (not m.sha256 or m.sha256 != keeper_sha):
                out.append((m.path, "its bytes are not the keeper's (an edited or re-saved copy): a hard link would"
                            " replace it for good, so only byte-identical copies are linked"))  # fmt: skip
    return out


def held_by_names(groups: Sequence[Group], aliases: Sequence[FoundFile]) -> list[tuple[str, str]]:
    """The copies no action touches although they are not kept, each with the reason: a copy
    that other scanned paths reach by symlink (acting on it would leave those links pointing at
    nothing) or by hard link (removing one of its names frees nothing and keeps the copy).
    A file reached twice through a folder (named twice, or through a symlink to it) is not held
    back: it is one file, in one place. Such copies free no space (``FindStats``)."""
    also = {a.path: a.also for a in aliases}
    out: list[tuple[str, str]] = []
    for g in groups:
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


def _temp_line(fh: Any, step: int, tmp: str) -> None:
    """Name a temporary file in the manifest before it is made (``undo`` removes it if it stays)."""
    _line(fh, {"temp": step, "path": tmp})


def apply_actions(
    steps: Sequence[Step], *, manifest: str | os.PathLike[str], protected: Sequence[str] = ()
) -> ActionReport:
    """Carry out ``steps``, writing the manifest (see the module docstring) before the first.

    A step fails alone, the others going on, when its file or its keeper is not, right before
    acting, the bytes the plan read (SHA-256 through the open file), when its target exists, or
    when it would lose a picture: its file is (device and inode, whatever path reaches it) the
    same file as its keeper or as any file in ``protected`` (keepers, keep-in folders), its keeper
    is gone, or (``hardlink``) its bytes are not its keeper's. A step on a symlink acts on the link
    alone, never on the file it points to.
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
        for i, s in enumerate(steps):
            try:
                mtime: int | None = os.stat(s.path).st_mtime_ns
            except OSError:
                mtime = None
            planned = {
                "step": i, "action": s.action.value, "path": s.path, "target": s.target, "keeper": s.keeper,
                "size": s.size, "mtime_ns": mtime, "sha256": s.sha256, "keeper_sha256": s.keeper_sha256,
                "why": s.why,
            }  # fmt: skip
            fh.write(json.dumps(planned, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
        kept_files = {_identity(p) for p in keep} - {None}
        for i, s in enumerate(steps):
            try:
                _step(s, keep, kept_files, partial(_temp_line, fh, i))
            except (StepError, OSError) as exc:
                message = str(exc) if isinstance(exc, StepError) else f"{exc.strerror or exc}"
                report.failed.append((s, message))
                _line(fh, {"failed": i, "error": message})
            else:
                report.done.append(s)
                _line(fh, {"done": i})
    return report


def _step(s: Step, keep: set[str], kept_files: set[tuple[int, int] | None], announce: Callable[[str], None]) -> None:
    """Verify one step's file and keeper through open descriptors, then act (see ``apply_actions``).
    Raises ``StepError`` or ``OSError``."""
    if s.path in keep or s.path == s.keeper:
        raise StepError("refused: the file is kept")
    if s.action is Action.HARDLINK and s.sha256 != s.keeper_sha256:
        raise StepError("refused: its bytes are not its keeper's; a hard link would lose them")
    if not os.path.lexists(s.keeper):
        raise StepError(f"refused: its keeper {s.keeper} is gone, so this may be the last copy")
    with (
        open_verified(s.path, s.sha256, "the file") as copy,
        open_verified(s.keeper, s.keeper_sha256, "its keeper") as keeper,
    ):
        if copy.identity == keeper.identity:
            raise StepError("refused: the same file as its keeper (reached through another path)")
        if copy.identity in kept_files:
            raise StepError("refused: the same file as a kept file (reached through another path)")
        _act(s, copy, keeper, announce)


def _identity(path: str) -> tuple[int, int] | None:
    """(device, inode) of the file ``path`` leads to, or None when there is none."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _act(s: Step, copy: Opened, keeper: Opened, announce: Callable[[str], None]) -> None:
    """Carry out a verified step, each change made only once its path still leads to the file verified."""
    if s.action in (Action.MOVE, Action.TRASH):
        move_verified(s.path, copy, s.target, announce)
    elif s.action is Action.HARDLINK:
        link_verified(s.path, copy, s.keeper, keeper, announce)
    elif s.action is Action.DELETE:
        still_at(s.keeper, keeper, "its keeper")
        still_at(s.path, copy, "the file")
        os.unlink(s.path)
