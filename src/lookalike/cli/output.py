"""How the command line reports: one place for errors and exit codes."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from lookalike.errors import InputError, LookalikeError

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "error_line", "fail", "json_line", "reporting_errors"]

#: some inputs failed, the rest were processed
EXIT_FAILED = 1
#: the command could not do its job because of its input or settings
EXIT_INPUT = 2


def error_line(err: LookalikeError) -> str:
    """The one line a person sees for ``err``."""
    return "lookalike: error: " + " ".join(str(err).split())


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print ``message`` as the one error line and leave with ``code``."""
    typer.echo(f"lookalike: error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn a ``LookalikeError`` into its one line on stderr and a non-zero exit."""
    try:
        yield
    except InputError as err:
        typer.echo(error_line(err), err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except LookalikeError as err:
        typer.echo(error_line(err), err=True)
        raise typer.Exit(EXIT_INPUT) from None


def json_line(obj: object) -> None:
    """Write one JSON line to stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
