"""Shared fixtures for the persistent index tests: an Index on a real SQLite file, pictures as
bytes, and the real ``lookalike`` command run as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from lookalike.index import Index
from lookalike.match import Verdict, compare
from tests.images import CORPUS, encode, photo
from tests.pg import PostgresServer

#: the public benchmark corpus (checked out beside the repository); tests that need it skip without it
SAMPLES = CORPUS / "samples"

CliRunner = Callable[..., subprocess.CompletedProcess[str]]


def jpeg(im: Image.Image, quality: int = 90) -> bytes:
    """``im`` as JPEG bytes."""
    return encode(im, "JPEG", quality=quality)


def png(im: Image.Image) -> bytes:
    """``im`` as PNG bytes."""
    return encode(im, "PNG")


def picture(seed: int, width: int = 480, height: int = 360) -> Image.Image:
    """A photo-like picture; distinct seeds give unrelated pictures."""
    return photo(width, height, seed=seed)


def shifted(im: Image.Image, shift: int) -> Image.Image:
    """``im`` with ``shift`` pixels cut from the left and ``shift // 2`` from the bottom: the same scene,
    reframed; about 240 px off a 480 x 360 picture (a crop to about a third) makes a pair the matcher
    may call ``similar``: smaller reframings are found to be the same picture (a crop)."""
    w, h = im.size
    return im.crop((shift, 0, w, h - shift // 2))


def with_text_chunk(im: Image.Image) -> bytes:
    """``im`` as PNG with a tEXt chunk: other bytes, the same pixels."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "re-saved by an editor")
    return encode(im, "PNG", pnginfo=info)


def similar_pair() -> tuple[bytes, bytes]:
    """Two JPEGs of one scene, reframed, that ``compare`` judges ``similar`` (not near-duplicate)."""
    for seed, shift in ((1, 240), (1, 250), (8, 230), (1, 200)):
        a = picture(seed)
        ja, jb = jpeg(a, 92), jpeg(shifted(a, shift), 92)
        if compare(ja, jb).verdict is Verdict.SIMILAR:
            return ja, jb
    pytest.fail("none of the generated reframed pairs is judged similar by compare any more")


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    """Where the test's index database lives."""
    return tmp_path / "index.sqlite"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_location(request: pytest.FixtureRequest, db_path: Path) -> str:
    """Where a test's index lives: a fresh SQLite file, or a fresh database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return str(db_path)
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def index(db_location: str) -> Iterator[Index]:
    """An Index on a fresh SQLite file or PostgreSQL database (every such test runs on both), closed after."""
    with Index(db_location) as ix:
        yield ix


def cli_command() -> list[str]:
    """The installed ``lookalike`` console script of this interpreter's environment (as a user runs it)."""
    script = Path(sys.executable).with_name("lookalike")
    if script.is_file():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from lookalike.cli.main import run; sys.argv[0] = 'lookalike'; run()"]


def cli_env() -> dict[str, str]:
    """The environment for CLI subprocesses: warnings are errors there too."""
    return {**os.environ, "PYTHONWARNINGS": "error", "COLUMNS": "200"}


@pytest.fixture
def run_cli(tmp_path: Path) -> CliRunner:
    """Run ``lookalike ARGS...`` to completion (in ``cwd``, default tmp_path) and return what it printed."""

    def run(
        *args: str | os.PathLike[str], cwd: Path | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*cli_command(), *map(str, args)],
            cwd=cwd or tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    """Fail with the output when a command crashed instead of reporting."""
    assert "Traceback" not in proc.stderr + proc.stdout, proc.stderr
