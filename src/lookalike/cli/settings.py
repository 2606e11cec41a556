"""Where every front end finds its thresholds: ``--settings FILE``, else ``$LOOKALIKE_SETTINGS``,
else the built-in defaults. The file is what ``lookalike calibrate`` writes.

``thresholds_from`` is the one loader: ``compare``, ``check``, ``index``, ``find`` (here and with
``--cluster``), ``eval`` and ``serve`` call it, and ``serve`` hands what it found to the service
inside ``ServiceSettings`` (the service never reads the variable itself, nor does
``lookalike.config``: the environment is read at this boundary only)."""

import os
from pathlib import Path
from typing import Annotated

import typer

from lookalike.config import Thresholds
from lookalike.errors import ConfigError

__all__ = ["SETTINGS_VARIABLE", "SettingsOption", "thresholds_from"]

SETTINGS_VARIABLE = "LOOKALIKE_SETTINGS"

SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help=f"Thresholds file written by `lookalike calibrate` (default: ${SETTINGS_VARIABLE}, else built in).",
    ),
]


def thresholds_from(path: Path | None) -> Thresholds | None:
    """The thresholds of ``path``, else of the file ``$LOOKALIKE_SETTINGS`` names; None for the
    built-in defaults. Raises ``ConfigError`` for a file that is missing or not a settings file."""
    chosen = path or os.environ.get(SETTINGS_VARIABLE)
    if not chosen:
        return None
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{chosen}: cannot read settings ({why})") from exc
    return Thresholds.from_settings_text(text, name=str(chosen))
