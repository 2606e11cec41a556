"""The package as a whole: its public names and its layering."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import lookalike

ROOT = Path(__file__).resolve().parents[1]


def test_public_names_exist_and_are_listed_once() -> None:
    assert len(set(lookalike.__all__)) == len(lookalike.__all__)
    for name in lookalike.__all__:
        assert getattr(lookalike, name) is not None, name
    assert {"compare", "fingerprint", "Fingerprint", "Verdict", "LookalikeError"} <= set(lookalike.__all__)


def test_every_error_is_a_lookalike_error_with_a_code() -> None:
    endings = ("Error", "Image", "Format", "Large", "Found")
    errors = [getattr(lookalike, n) for n in lookalike.__all__ if n.endswith(endings)]
    for err in errors:
        if isinstance(err, type) and issubclass(err, Exception):
            assert issubclass(err, lookalike.LookalikeError), err
            assert err.code and err.code.islower()


def test_layers_only_import_downwards() -> None:
    """decode <- fingerprints <- match <- index <- cli, checked by import-linter's contract in pyproject."""
    run = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
