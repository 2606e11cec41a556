"""Fixtures of the hostile-input tests: the real console script."""

from tests.cli.conftest import cli, lookalike_script  # noqa: F401 - fixtures
