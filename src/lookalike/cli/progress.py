"""A progress bar on stderr for long runs, only where a person is watching."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.progress import TaskID

__all__ = ["announce_compiling", "progress_bar", "stage_bars", "status"]

#: the modules whose numba kernels each kind of command runs on every call
FINGERPRINT_KERNELS = ("lookalike.fingerprints.arithmetic",)
INDEX_KERNELS = (
    "lookalike.fingerprints.arithmetic",
    "lookalike.index.search.hamming_kernels",
    "lookalike.index.search.descriptors",
)


def announce_compiling(modules: tuple[str, ...]) -> None:
    """One line on stderr when this run will compile numba kernels first (the first run after an
    install or upgrade spends several seconds on it; later runs load them from numba's cache)."""
    import importlib

    for name in modules:
        importlib.import_module(name)  # kernels register on import
    from lookalike.fingerprints.kernels import uncompiled

    if uncompiled(modules):
        sys.stderr.write("lookalike: compiling numeric kernels on first use (a few seconds, once per install)\n")


@contextmanager
def progress_bar(*, total: int, enabled: bool, label: str) -> Iterator[Callable[[], None]]:
    """Yields a function to call once per finished item. Draws nothing unless
    ``enabled`` and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda: None
        return
    # rich.progress is imported only when a bar is drawn: it costs start-up time every command would pay
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class RateColumn(ProgressColumn):
        """Items per second."""

        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.1f}/s")

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda: bar.advance(task)


@contextmanager
def stage_bars(*, enabled: bool) -> Iterator[Callable[[str, int, int], None]]:
    """Yields a function to call as ``(stage, done, total)`` after each item of a run of several
    stages: each stage gets a bar of its own, drawn on first news of it. Draws nothing unless
    ``enabled`` and stderr is a terminal."""
    if not enabled or not sys.stderr.isatty():
        yield lambda stage, done, total: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        tasks: dict[str, TaskID] = {}

        def tell(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        yield tell


@contextmanager
def status(message: str, *, enabled: bool = True) -> Iterator[None]:
    """A spinner with ``message`` on stderr while a step of unknown length runs (a terminal only)."""
    if not enabled or not sys.stderr.isatty():
        yield
        return
    from rich.console import Console

    with Console(stderr=True).status(message):
        yield
