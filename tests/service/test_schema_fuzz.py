"""schemathesis over the OpenAPI document of a real ``lookalike serve``, with a key: no answer is a
5xx and every answer conforms to the documented schema. A short bounded run (a few examples per
operation); ``scripts/fuzz-service.sh`` runs a long one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.service.conftest import Served

SCHEMATHESIS = shutil.which("schemathesis") or str(Path(sys.executable).with_name("schemathesis"))


@pytest.mark.skipif(not Path(SCHEMATHESIS).exists(), reason="schemathesis is in the dev extra")
def test_no_5xx_and_every_answer_conforms_to_the_schema(serve: Callable[..., Served], tmp_path: Path) -> None:
    server = serve(str(tmp_path / "fuzz.sqlite"), workers=1)
    key = server.key("fuzz")["Authorization"]
    run = subprocess.run(
        [
            SCHEMATHESIS, "run", server.url + "/openapi.json", "-H", f"Authorization: {key}",
            "--checks", "not_a_server_error,response_schema_conformance", "--max-examples", "8",
            "--seed", "1", "--request-timeout", "30",
        ],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "passed" in run.stdout
    assert "internal server error" not in server.log_text().lower()
