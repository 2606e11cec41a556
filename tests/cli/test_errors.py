"""Bad input on the command line: a non-zero exit and exactly one line on stderr, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.cli.conftest import Run
from tests.images import EXAMPLES, encode, photo, png_header_only, save

GOOD = EXAMPLES / "library" / "coffee.jpg"


def _zero_bytes(folder: Path) -> str:
    (folder / "empty.jpg").write_bytes(b"")
    return "empty.jpg"


def _truncated_jpeg(folder: Path) -> str:
    data = encode(photo(320, 240, seed=1), "JPEG")
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    return "cut.jpg"


def _text_named_jpg(folder: Path) -> str:
    (folder / "notes.jpg").write_text("this is a shopping list\n- milk\n- eggs\n")
    return "notes.jpg"


def _bomb_png(folder: Path) -> str:
    (folder / "bomb.png").write_bytes(png_header_only(100_000, 100_000))
    return "bomb.png"


def _tga(folder: Path) -> str:
    save(photo(64, 64), folder / "picture.tga", "TGA")
    return "picture.tga"


def _ico_named_png(folder: Path) -> str:
    save(photo(64, 64), folder / "icon.png", "ICO")
    return "icon.png"


def _missing(folder: Path) -> str:
    return "no-such-picture.jpg"


def _folder(folder: Path) -> str:
    (folder / "a-folder").mkdir()
    return "a-folder"


def _truncated_heic(folder: Path) -> str:
    pytest.importorskip("pillow_heif").register_heif_opener()
    data = encode(photo(320, 240, seed=1), "HEIF")
    (folder / "cut.heic").write_bytes(data[: len(data) // 2])
    return "cut.heic"


BAD: dict[str, Callable[[Path], str]] = {
    "zero-bytes": _zero_bytes,
    "truncated-jpeg": _truncated_jpeg,
    "text-named-jpg": _text_named_jpg,
    "100000x100000-png": _bomb_png,
    "unsupported-tga": _tga,
    "ico-named-png": _ico_named_png,
    "missing-file": _missing,
    "folder": _folder,
}


def _assert_one_error_line(stderr: str, mentions: str) -> None:
    assert "Traceback" not in stderr
    assert stderr.endswith("\n")
    lines = stderr.splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got {lines!r}"
    assert lines[0].startswith("lookalike: error: ")
    assert mentions in lines[0]


@pytest.mark.parametrize("kind", list(BAD))
def test_bad_input_is_one_error_line(cli: Run, tmp_path: Path, kind: str) -> None:
    name = BAD[kind](tmp_path)
    result = cli("compare", name, GOOD)
    assert result.returncode != 0
    assert result.stdout == ""
    _assert_one_error_line(result.stderr, name)


def test_truncated_heic_is_one_error_line(cli: Run, tmp_path: Path) -> None:
    name = _truncated_heic(tmp_path)
    result = cli("compare", GOOD, name)
    assert result.returncode != 0
    _assert_one_error_line(result.stderr, name)


def test_unreachable_url_is_one_error_line(cli: Run, closed_port_url: str) -> None:
    result = cli("compare", closed_port_url, GOOD)
    assert result.returncode != 0
    assert result.stdout == ""
    _assert_one_error_line(result.stderr, closed_port_url)


def test_bad_second_argument_too(cli: Run, tmp_path: Path) -> None:
    name = _truncated_jpeg(tmp_path)
    result = cli("compare", GOOD, name)
    assert result.returncode != 0
    assert result.stdout == ""
    _assert_one_error_line(result.stderr, name)


def test_json_errors_have_the_one_error_shape(cli: Run, tmp_path: Path) -> None:
    """With --json the error is data on stdout, shaped as the HTTP service's error bodies."""
    cases = [
        (("MISSING.jpg", GOOD), "fetch_failed", "MISSING.jpg"),
        ((GOOD, _truncated_jpeg(tmp_path)), "truncated_image", "cut.jpg"),
    ]
    for (a, b), code, named in cases:
        result = cli("compare", a, b, "--json")
        assert result.returncode != 0
        assert result.stderr == ""
        (line,) = result.stdout.splitlines()
        body = json.loads(line)
        assert body == {"error": {"code": code, "message": body["error"]["message"]}}
        assert named in body["error"]["message"]
