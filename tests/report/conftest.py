"""The report tests use the scan tests' folder of pictures (and the command line)."""

from tests.scan.conftest import cli, lookalike_script, pristine_tree, tree  # noqa: F401 - fixtures
