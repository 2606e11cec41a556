"""Where the command line finds its thresholds: ``--settings FILE``, else ``$LOOKALIKE_SETTINGS``,
else the built-in defaults. The file is what ``lookalike calibrate`` writes."""

import os
from pathlib import Path
from typing import Annotated

import typer

from lookalike.config import Thresholds

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
    """The thresholds of ``path`` or of the file ``$LOOKALIKE_SETTINGS`` names; None for the
    defaults. Raises ``ConfigError`` for a file that is missing or not a settings file."""
    chosen = path or os.environ.get(SETTINGS_VARIABLE)
    if not chosen:
        return None
    from lookalike.calibrate import load_settings  # loads the index: only when a file is given

    return load_settings(chosen)
