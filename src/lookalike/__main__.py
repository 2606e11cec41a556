"""``python -m lookalike``: the same as the ``lookalike`` command."""

from lookalike.cli.main import run

run()
