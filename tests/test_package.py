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


#: declared packages that are used without an import statement, and how
_USED_BY_NAME = {
    "python-multipart": "FastAPI parses multipart uploads with it",
    "fastapi-offline": "its Swagger UI and ReDoc bundles are read with importlib.resources",
    "s3fs": "fsspec loads it for s3:// by protocol name",
    "bokeh": "the Dask scheduler draws its dashboard with it when it is installed",
}


def _declared() -> dict[str, str]:
    """{distribution name: extra or "core"} from pyproject.toml (the dev extra left out)."""
    import re
    import tomllib

    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    groups = {"core": project["dependencies"], **project["optional-dependencies"]}
    out: dict[str, str] = {}
    for group, requirements in groups.items():
        for requirement in requirements if group != "dev" else ():
            name = re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")
            if name != "lookalike":
                out[name] = group
    return out


def _imported() -> set[str]:
    """Top-level modules outside the standard library that src/lookalike imports (by statement or by name)."""
    import ast

    found: set[str] = set()
    for path in Path(lookalike.__file__).parent.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
            elif (  # import_module("x") and the optional extras' import_extra("x")
                isinstance(node, ast.Call)
                and getattr(node.func, "id", getattr(node.func, "attr", None)) in {"import_module", "import_extra"}
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                found.add(node.args[0].value.split(".")[0])
    return {m for m in found if m not in sys.stdlib_module_names and m != "lookalike"}


def test_dependencies_are_what_the_code_imports() -> None:
    from importlib.metadata import packages_distributions

    declared = _declared()
    providers = packages_distributions()
    imported_dists = set()
    for module in _imported():
        dists = {d.lower().replace("_", "-") for d in providers.get(module, [])}
        assert dists & declared.keys(), f"{module} is imported but no declared dependency provides it"
        imported_dists |= dists & declared.keys()
    unused = set(declared) - imported_dists - set(_USED_BY_NAME)
    assert not unused, f"declared but never imported: {sorted(unused)}"
