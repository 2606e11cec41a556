"""How the command line reports: one place for errors and exit codes."""

from __future__ import annotations

import json
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from lookalike.errors import InputError, LookalikeError

__all__ = ["EXIT_FAILED", "EXIT_INPUT", "error_line", "fail", "json_line", "printable", "reporting_errors", "say"]

#: some inputs failed, the rest were processed
EXIT_FAILED = 1
#: the command could not do its job because of its input or settings
EXIT_INPUT = 2


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def printable(text: str) -> str:
    """``text`` safe to show on a terminal: every character a terminal would act on rather than
    show (ESC and the other C0/C1 controls, DEL, line and paragraph separators, bidi and other
    format characters) is written as a Python-style escape, and each byte of a file name that is
    not UTF-8 (kept by Python as a lone surrogate) as ``\\xNN``. A file named
    ``"\\x1b[31mred.jpg"`` then shows as ``\\x1b[31mred.jpg`` instead of turning the terminal red,
    and a name holding CR or LF cannot fake another line of output. Used for every line of human
    text the command line prints; JSON and CSV stay exact."""
    if text.isprintable():
        return text
    out: list[str] = []
    for ch in text:
        code = ord(ch)
        if ch.isprintable() or unicodedata.category(ch) == "Zs":
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:  # os.fsdecode's surrogateescape of an undecodable byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif ch in _NAMED:
            out.append(_NAMED[ch])
        elif code <= 0xFF:
            out.append(f"\\x{code:02x}")
        elif code <= 0xFFFF:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return "".join(out)


def say(text: str, *, err: bool = False) -> None:
    """Print one line of human text (``printable``) to stdout, or stderr with ``err``."""
    typer.echo(printable(text), err=err)


def error_line(err: LookalikeError) -> str:
    """The one line a person sees for ``err``."""
    return "lookalike: error: " + " ".join(str(err).split())


def fail(message: str, code: int = EXIT_INPUT) -> NoReturn:
    """Print ``message`` as the one error line and leave with ``code``."""
    say(f"lookalike: error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def reporting_errors() -> Iterator[None]:
    """Turn a ``LookalikeError`` into its one line on stderr and a non-zero exit."""
    try:
        yield
    except InputError as err:
        say(error_line(err), err=True)
        raise typer.Exit(EXIT_FAILED) from None
    except LookalikeError as err:
        say(error_line(err), err=True)
        raise typer.Exit(EXIT_INPUT) from None


def json_line(obj: object) -> None:
    """Write one JSON line to stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
