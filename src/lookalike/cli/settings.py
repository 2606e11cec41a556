"""Where every front end finds its settings: ``--settings FILE``, else ``$LOOKALIKE_SETTINGS``,
else the built-in defaults. The file is what ``lookalike calibrate`` writes, plus, optionally, the
learned tier's keys (``"learned": true``, ``"learned_model": "PATH"``).

``settings_from`` is the one loader: ``compare``, ``check``, ``index``, ``find`` (here and with
``--cluster``), ``eval``, ``embed`` and ``serve`` call it (``thresholds_from`` when only the
thresholds matter), and ``serve`` hands what it found to the service inside ``ServiceSettings``
(the service never reads the variable itself, nor does ``lookalike.config``: the environment is
read at this boundary only). A command's own ``--learned``/``--no-learned`` and ``--model`` win
over the file's keys (``LearnedSettings.chosen``)."""

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from lookalike.config import LearnedSettings, Thresholds
from lookalike.errors import ConfigError

__all__ = ["SETTINGS_VARIABLE", "FileSettings", "SettingsOption", "settings_from", "thresholds_from"]

SETTINGS_VARIABLE = "LOOKALIKE_SETTINGS"

SettingsOption = Annotated[
    Path | None,
    typer.Option(
        "--settings",
        help=f'Settings file: thresholds written by `lookalike calibrate`, and "learned": true to turn the '
        f"learned tier on (default: ${SETTINGS_VARIABLE}, else built in).",
    ),
]


@dataclass(frozen=True, slots=True)
class FileSettings:
    """What a settings file says: its ``thresholds`` (None: none given, the built-in ones) and
    whether the learned tier is on, with which encoder."""

    thresholds: Thresholds | None = None
    learned: LearnedSettings = field(default_factory=LearnedSettings)


def settings_from(path: Path | None) -> FileSettings:
    """The settings of ``path``, else of the file ``$LOOKALIKE_SETTINGS`` names; the built-in ones
    when neither is given. Raises ``ConfigError`` for a file that is missing or not a settings file."""
    chosen = path or os.environ.get(SETTINGS_VARIABLE)
    if not chosen:
        return FileSettings()
    try:
        text = Path(chosen).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise ConfigError(f"{chosen}: cannot read settings ({why})") from exc
    name = str(chosen)
    learned = LearnedSettings.from_settings_text(text, name=name, folder=Path(chosen).resolve().parent)
    return FileSettings(Thresholds.from_settings_text(text, name=name), learned)


def thresholds_from(path: Path | None) -> Thresholds | None:
    """The thresholds of ``settings_from(path)``; None for the built-in defaults. Raises ``ConfigError``."""
    return settings_from(path).thresholds
