"""The file operations of actions, each on a file verified through the descriptor it acts on.

An action's step opens its file and its keeper, reads the SHA-256 of both through those open
descriptors, and goes on only when both are the bytes the plan was built from (``open_verified``).
Right before it changes anything it checks that the path still leads to the file it hashed
(``still_at``): a file swapped at that path since (a same-size picture with its mtime put back,
a new symlink or hard link) is refused, not touched.

A move to another file system (``move_verified``) copies the verified descriptor's bytes to a
temporary name in the target folder, fsyncs it, renames it into place and only then removes the
source, so that a full disk or a kill leaves the source whole and at worst a temporary file,
which the manifest names before it exists (``undo`` removes it). Temporary names are short
(``.lookalike-<12 hex>.tmp``) so that a name of 241-255 bytes can still be moved or linked.
"""

from __future__ import annotations

import errno
import hashlib
import os
import secrets
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["Opened", "StepError", "link_verified", "move_verified", "open_verified", "still_at", "temp_name"]

#: bytes copied at a time across file systems
_CHUNK = 1 << 20
#: how a copy writes (a name of its own, so that a test can fill the disk)
_write = os.write


class StepError(Exception):
    """A step refused before touching anything (or undone before it finished)."""


@dataclass(frozen=True, slots=True)
class Opened:
    """A file opened for a step: its descriptor, its status when hashed and its SHA-256 (hex)."""

    fd: int
    st: os.stat_result
    sha256: str

    @property
    def identity(self) -> tuple[int, int]:
        """(device, inode) of the open file."""
        return self.st.st_dev, self.st.st_ino


def _sha256(fd: int) -> str:
    digest = hashlib.sha256()
    offset = 0
    while chunk := os.pread(fd, _CHUNK, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


@contextmanager
def open_verified(path: str, expected: str, what: str) -> Iterator[Opened]:
    """``path`` opened (through a symlink, read-only, never blocking on a FIFO) and hashed through
    its descriptor; ``what`` names it in refusals ("the file", "its keeper").

    Raises ``StepError`` when it is gone, not a regular file, or its SHA-256 is not ``expected``
    (hex; an empty ``expected`` is refused too: a step must know what it verifies)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise StepError(f"refused: {what} {path} cannot be opened ({exc.strerror or exc})") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise StepError(f"refused: {what} {path} is not a regular file")
        if not expected:
            raise StepError(f"refused: the plan holds no SHA-256 of {what} {path} to verify it by")
        digest = _sha256(fd)
        if digest != expected or _changed(os.fstat(fd), st):
            raise StepError(f"refused: {what} {path} changed since it was read (its SHA-256 differs)")
        yield Opened(fd, st, digest)
    finally:
        os.close(fd)


def _changed(now: os.stat_result, then: os.stat_result, *, ctime: bool = True) -> bool:
    if ctime and now.st_ctime_ns != then.st_ctime_ns:
        return True
    return (now.st_size, now.st_mtime_ns) != (then.st_size, then.st_mtime_ns)


def still_at(path: str, opened: Opened, what: str, *, linked: bool = False) -> None:
    """Refuse unless ``path`` leads to the file ``opened`` holds, unchanged since it was hashed
    (size, mtime and ctime; ``linked``: a file a link was just made to, whose ctime that changed).

    Raises ``StepError``."""
    try:
        now = os.stat(path)
    except OSError as exc:
        raise StepError(f"refused: {what} {path} is gone ({exc.strerror or exc})") from exc
    if (now.st_dev, now.st_ino) != opened.identity:
        raise StepError(f"refused: {what} {path} was replaced by another file since it was verified")
    if _changed(os.fstat(opened.fd), opened.st, ctime=not linked):
        raise StepError(f"refused: {what} {path} changed since it was verified")


def temp_name(folder: str, kind: str = "tmp") -> str:
    """A new hidden name in ``folder`` for a file on its way in (short: any name fits beside it)."""
    return os.path.join(folder, f".lookalike-{secrets.token_hex(6)}.{kind}")


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder or ".", os.O_RDONLY)
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems cannot sync a folder; the file itself was synced
    finally:
        os.close(fd)


def move_verified(src: str, opened: Opened, dst: str, announce: Callable[[str], None]) -> None:
    """Move the file ``opened`` holds from ``src`` to ``dst`` (which must not exist).

    On one file system a rename; across file systems a copy of the descriptor's bytes to a
    temporary name in ``dst``'s folder (``announce``\\ d first, so the manifest names it), fsync,
    a check of the copy's SHA-256, a rename to ``dst``, and only then the removal of ``src``.
    Raises ``StepError`` (nothing moved, the temporary file removed) or ``OSError``."""
    if os.path.lexists(dst):
        raise StepError(f"{dst} already exists")
    os.makedirs(os.path.dirname(dst), exist_ok=True)
    still_at(src, opened, "the file")
    try:
        os.rename(src, dst)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    tmp = temp_name(os.path.dirname(dst))
    announce(tmp)
    try:
        _copy_fd(opened, tmp)
        if os.path.lexists(dst):
            raise StepError(f"{dst} already exists")
        os.rename(tmp, dst)
    except BaseException:
        _remove_quietly(tmp)
        raise
    _fsync_dir(os.path.dirname(dst))
    try:
        still_at(src, opened, "the file")
    except StepError as exc:  # the source changed while it was copied: keep it, drop the copy
        _remove_quietly(dst)
        raise StepError(f"{exc}; its copy at {dst} was removed") from exc
    os.unlink(src)


def _copy_fd(opened: Opened, tmp: str) -> None:
    """Copy the open file's bytes, mode and times to the new file ``tmp``, fsynced, and check its SHA-256."""
    out = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        digest = hashlib.sha256()
        offset = 0
        while chunk := os.pread(opened.fd, _CHUNK, offset):
            view = memoryview(chunk)
            while view:
                view = view[_write(out, view) :]
            digest.update(chunk)
            offset += len(chunk)
        os.fsync(out)
    finally:
        os.close(out)
    if digest.hexdigest() != opened.sha256:
        raise StepError("refused: the file changed while it was copied")
    os.chmod(tmp, stat.S_IMODE(opened.st.st_mode))
    os.utime(tmp, ns=(opened.st.st_atime_ns, opened.st.st_mtime_ns))


def link_verified(path: str, copy: Opened, keeper_path: str, keeper: Opened, announce: Callable[[str], None]) -> None:
    """Replace ``path`` (the file ``copy`` holds) by a hard link to the file ``keeper`` holds: a
    link to the keeper made under a temporary name beside ``path`` (checked to be the keeper's
    inode), then renamed over ``path`` once it is checked to be the file verified.

    Raises ``StepError`` (nothing changed) or ``OSError``."""
    tmp = temp_name(os.path.dirname(path), "link")
    announce(tmp)
    try:
        os.link(keeper_path, tmp)
    except OSError as exc:
        if exc.errno == errno.EXDEV:
            raise StepError("cannot hard-link across file systems") from exc
        raise
    try:
        made = os.lstat(tmp)
        if (made.st_dev, made.st_ino) != keeper.identity:
            raise StepError(f"refused: its keeper {keeper_path} was replaced by another file since it was verified")
        still_at(keeper_path, keeper, "its keeper", linked=True)
        still_at(path, copy, "the file")
        os.replace(tmp, path)
    except BaseException:
        _remove_quietly(tmp)
        raise


def _remove_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass
