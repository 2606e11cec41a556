"""Worker processes that end with the process that started them.

A ``ProcessPoolExecutor``'s workers wait on their call queue for ever when the parent is killed
with SIGKILL (no ``finally`` runs to shut the pool down): each ``kill -9`` of a ``lookalike index``
left its idle workers behind. ``worker_pool`` makes a pool whose workers watch their parent in two
ways and stop when it is gone:

* on Linux, ``prctl(PR_SET_PDEATHSIG, SIGKILL)``: the kernel kills the worker the moment the thread
  that forked it ends. That is the parent's *thread*, not its process, so it is asked for only when
  the pool is made in the main thread (a pool made in a short-lived thread would otherwise lose its
  workers while the parent lives on);
* everywhere, a daemon thread that looks every ``_WATCH_SECONDS`` whether the worker's parent is
  still the process that started it (an orphan is handed to another parent, init or a subreaper).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

__all__ = ["die_with_parent", "worker_pool"]

#: how often the portable watch looks at the parent: the longest an orphan outlives its parent
#: where no parent-death signal exists
_WATCH_SECONDS = 0.5
_PR_SET_PDEATHSIG = 1


def worker_pool(
    max_workers: int, *, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
) -> ProcessPoolExecutor:
    """A ``ProcessPoolExecutor`` whose workers stop when this process dies, however it dies;
    ``initializer(*initargs)`` then runs in each worker as with the executor itself."""
    in_main = threading.current_thread() is threading.main_thread()
    return ProcessPoolExecutor(
        max_workers=max_workers, initializer=_start, initargs=(os.getpid(), in_main, initializer, initargs)
    )


def _start(
    parent: int, signal_on_death: bool, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]
) -> None:
    die_with_parent(parent, kernel_signal=signal_on_death)
    if initializer is not None:
        initializer(*initargs)


def die_with_parent(parent: int, *, kernel_signal: bool = True) -> None:
    """Make this process stop when process ``parent`` (its parent) ends (see the module docstring).

    ``kernel_signal``: also ask Linux for SIGKILL when the parent's forking thread ends; only
    right when that thread lives as long as the parent (its main thread)."""
    if kernel_signal and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass  # no prctl here: the watch below still works
    if os.getppid() != parent:  # the parent died before the signal was asked for
        os._exit(1)
    threading.Thread(target=_watch, args=(parent,), name="lookalike-parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(_WATCH_SECONDS)
    os._exit(1)  # no cleanup to do: the parent that wanted the results is gone
