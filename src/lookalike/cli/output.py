"""How the command line reports: one place for errors and exit codes.

Exit codes (docs/reference/cli.md has the table):

==  =====================================================================================
0   done; with ``--exit-code``: no input is a duplicate of a stored / the other picture
1   some inputs failed and the rest were processed; with ``--exit-code``: a duplicate was
    found (``identical``, ``same_pixels`` or ``near_duplicate``) and nothing failed
2   the command could not do its job (bad input or settings, a missing index); with
    ``--exit-code`` also: some inputs failed (trouble wins over an answer, as in ``diff``)
70  an internal error (a bug): one line, the traceback with ``LOOKALIKE_TRACEBACK=1``
130 interrupted (Ctrl-C)
==  =====================================================================================
"""

import json
import sys
import unicodedata
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, NoReturn

import typer

from lookalike.errors import UNEXPECTED_CODE, FileError, InputError, LookalikeError, error_body

__all__ = [
    "EXIT_DUPLICATE",
    "EXIT_FAILED",
    "EXIT_INPUT",
    "ExitCodeOption",
    "JsonOption",
    "error_line",
    "exit_status",
    "fail",
    "json_error",
    "json_line",
    "print_file_error",
    "printable",
    "reporting_errors",
    "say",
]

#: some inputs failed, the rest were processed
EXIT_FAILED = 1
#: the command could not do its job because of its input or settings
EXIT_INPUT = 2
#: with ``--exit-code``: a duplicate was found (and nothing failed)
EXIT_DUPLICATE = 1

JsonOption = Annotated[bool, typer.Option("--json", help='Print JSON (errors too, as {"error": {...}}).')]
ExitCodeOption = Annotated[
    bool,
    typer.Option(
        "--exit-code",
        help="Exit 1 when a duplicate is found, 0 when none, 2 on any error (as `git diff --exit-code`).",
    ),
]


def exit_status(*, exit_code: bool, duplicate: bool, failed: bool) -> int:
    """The exit status of a command that answers "duplicate?" (see the table above)."""
    if not exit_code:
        return EXIT_FAILED if failed else 0
    if failed:
        return EXIT_INPUT
    return EXIT_DUPLICATE if duplicate else 0


def json_error(err: LookalikeError, *, path: str | None = None) -> None:
    """Print ``err`` as one JSON line in the one error shape (``{"path": ..., "error": {...}}`` for a
    file among many), the shape the HTTP service answers with too."""
    body: dict[str, object] = {"path": path} if path is not None else {}
    json_line(body | dict(err.to_dict()))


_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def print_file_error(path: object, error: FileError | None, *, as_json: bool) -> None:
    """One input of many that failed: its JSON error line on stdout, or one line on stderr."""
    error = error or FileError(str(path), UNEXPECTED_CODE, f"{path}: no result")
    if as_json:
        json_line(error.to_dict())
    else:
        say(f"error: {error.message}", err=True)


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
def reporting_errors(*, as_json: bool = False, exit_code: bool = False) -> Iterator[None]:
    """Turn a ``LookalikeError`` into its one line on stderr (with ``as_json``: its JSON error
    body on stdout) and a non-zero exit: 1 for an input at fault, 2 otherwise (2 for both with
    ``exit_code``, where 1 means "duplicate found")."""
    try:
        yield
    except LookalikeError as err:
        if as_json:
            json_line(error_body(err.code, str(err)))
        else:
            say(error_line(err), err=True)
        input_at_fault = isinstance(err, InputError) and not exit_code
        raise typer.Exit(EXIT_FAILED if input_at_fault else EXIT_INPUT) from None


def json_line(obj: object) -> None:
    """Write one JSON line to stdout."""
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
