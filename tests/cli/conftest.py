"""Running the real ``lookalike`` console script."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

Run = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="session")
def lookalike_script() -> Path:
    """The installed console script, beside the running interpreter (or on PATH)."""
    beside = Path(sys.executable).parent / "lookalike"
    found = beside if beside.is_file() else (Path(p) if (p := shutil.which("lookalike")) else None)
    if found is None:
        pytest.skip("the lookalike console script is not installed")
    return found


@pytest.fixture()
def cli(lookalike_script: Path, tmp_path: Path) -> Run:
    """``cli("hash", folder, "--json")``: run the command in ``tmp_path`` and capture its output."""

    def run(
        *args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        extra = env or {}
        env = {k: v for k, v in os.environ.items() if not k.startswith(("HTTP_PROXY", "HTTPS_PROXY", "http_proxy"))}
        env = {k: v for k, v in env.items() if k != "LOOKALIKE_SETTINGS"} | extra
        env["COLUMNS"] = "200"
        return subprocess.run(
            [str(lookalike_script), *map(str, args)],
            capture_output=True, text=True, timeout=120, cwd=cwd or tmp_path, env=env,
        )  # fmt: skip

    return run
