"""The service's settings: ``ServiceSettings`` (in ``lookalike.config``, so that the command line
builds it without importing the service), and reading them where ``lookalike serve`` leaves them
for uvicorn's worker processes, which it starts by import string."""

from __future__ import annotations

import os

from lookalike.config import SERVICE_SETTINGS_VARIABLE, ServiceSettings
from lookalike.errors import ConfigError

__all__ = ["ENVIRONMENT_VARIABLE", "settings_from_environment"]

#: how ``lookalike serve`` hands settings to uvicorn's worker processes
ENVIRONMENT_VARIABLE = SERVICE_SETTINGS_VARIABLE


def settings_from_environment() -> ServiceSettings:
    """Settings handed over by ``lookalike serve`` in ``LOOKALIKE_SERVICE_SETTINGS``. Raises ``ConfigError``."""
    text = os.environ.get(ENVIRONMENT_VARIABLE)
    if not text:
        raise ConfigError(f"{ENVIRONMENT_VARIABLE} is not set: start the service with `lookalike serve`")
    return ServiceSettings.from_json(text)
