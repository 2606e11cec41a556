"""One schema for the command line and the HTTP API: every `--json` document the CLI prints for a
result or an error validates against the OpenAPI component the service declares for the same
thing (strictly: no key the schema does not name, none it requires missing)."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import Run
from tests.images import EXAMPLES

LIBRARY = EXAMPLES / "library"
UPLOADS = EXAMPLES / "uploads"


def _strict(node: Any) -> Any:
    """The schema with every object closed to keys it does not name."""
    if isinstance(node, dict):
        out = {k: _strict(v) for k, v in node.items()}
        if out.get("type") == "object" and "properties" in out:
            out.setdefault("additionalProperties", False)
        return out
    if isinstance(node, list):
        return [_strict(v) for v in node]
    return node


@pytest.fixture(scope="module")
def components(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("fastapi")
    from lookalike.service import ServiceSettings, create_app

    tmp = tmp_path_factory.mktemp("schema")
    app = create_app(ServiceSettings(db=str(tmp / "service.sqlite"), storage=tmp / "files"))
    return _strict(copy.deepcopy(app.openapi()["components"]))


def conforms(document: dict[str, Any], component: str, components: dict[str, Any]) -> None:
    import jsonschema

    schema = {"$ref": f"#/components/schemas/{component}", "components": components}
    jsonschema.Draft202012Validator(schema).validate(document)


def lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def without_path(line: dict[str, Any]) -> dict[str, Any]:
    """A CLI line names the file it is about (`path`); the HTTP body answers for the upload."""
    assert "path" in line
    return {k: v for k, v in line.items() if k != "path"}


def test_check_lines_are_the_service_check_body(cli: Run, tmp_path: Path, components: dict[str, Any]) -> None:
    db = tmp_path / "index.sqlite"
    assert cli("index", LIBRARY, "--db", db, "--jobs", "1").returncode == 0
    checked = lines(cli("check", UPLOADS, tmp_path / "gone.jpg", "--db", db, "--json", "--jobs", "1"))
    answered = [x for x in checked if "error" not in x]
    failed = [x for x in checked if "error" in x]
    assert any(x["matches"] for x in answered) and len(failed) == 1
    for line in answered:
        conforms(without_path(line), "CheckOut", components)
    conforms(without_path(failed[0]), "ErrorOut", components)


def test_errors_of_every_command_are_the_service_error_body(
    cli: Run, tmp_path: Path, components: dict[str, Any]
) -> None:
    gone = tmp_path / "gone.jpg"
    for args in (
        ("compare", gone, LIBRARY / "coffee.jpg", "--json"),
        ("review", "--db", tmp_path / "none.sqlite", "--json"),
        ("stats", "--db", tmp_path / "none.sqlite", "--json"),
        ("check", "--json", "--top", "0", LIBRARY / "coffee.jpg"),  # a usage error
    ):
        result = cli(*args)
        assert result.returncode != 0, args
        (document,) = lines(result)
        conforms(document, "ErrorOut", components)


def test_review_lines_are_the_service_review_pairs(cli: Run, tmp_path: Path, components: dict[str, Any]) -> None:
    db = tmp_path / "index.sqlite"
    assert cli("index", LIBRARY / "chelsea.jpg", "--db", db, "--jobs", "1").returncode == 0
    assert cli("index", UPLOADS / "chelsea_mirrored.jpg", "--db", db, "--on-duplicate", "review").returncode == 0
    (pair,) = lines(cli("review", "--db", db, "--json"))
    conforms(pair, "ReviewPairOut", components)
    (decided,) = lines(cli("review", "decide", str(pair["pair_id"]), "duplicate", "--db", db, "--json"))
    conforms(decided, "ReviewPairOut", components)
    assert decided["decision"] == "duplicate"


def test_find_errors_are_the_service_error_body(cli: Run, tmp_path: Path, components: dict[str, Any]) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(LIBRARY / "coffee.jpg", folder)
    (folder / "empty.png").write_bytes(b"")
    result = cli("find", folder, "--db", tmp_path / "find.db", "--json", "--jobs", "1")
    assert result.returncode == 1  # a file could not be read
    (error,) = json.loads(result.stdout)["errors"]
    assert error["path"] == str(folder / "empty.png") and error["error"]["code"] == "not_an_image"
    conforms(without_path(error), "ErrorOut", components)
