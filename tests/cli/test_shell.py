"""Shell conventions: --version, help everywhere, options after arguments, exit codes a script can
branch on, plain-language usage errors, a start-up that does not load the image stack."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from tests.cli.conftest import Run
from tests.images import EXAMPLES, encode, photo

LIBRARY = EXAMPLES / "library"
UPLOADS = EXAMPLES / "uploads"


def test_version_is_the_installed_package_version(cli: Run) -> None:
    for flag in ("--version", "-V"):
        result = cli(flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout == f"lookalike {version('lookalike')}\n"


def test_every_subcommand_has_readable_help(cli: Run) -> None:
    for args in (("review", "decide"), ("review", "mark"), ("keys", "create"), ("index",), ("check",), ("hash",)):
        result = cli(*args, "--help")
        assert result.returncode == 0, (args, result.stderr)
        assert result.stdout.startswith(f"Usage: lookalike {' '.join(args)} ")
    top = cli("--help")
    assert "--install-completion" in top.stdout  # shell completion, through Typer
    assert "Exit codes:" in top.stdout


def test_review_decide_takes_db_before_or_after_its_arguments(cli: Run, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    assert cli("index", LIBRARY / "chelsea.jpg", "--db", db, "--jobs", "1").returncode == 0
    assert cli("index", UPLOADS / "chelsea_mirrored.jpg", "--db", db, "--on-duplicate", "review").returncode == 0
    (pair,) = [json.loads(line) for line in cli("review", "--db", db, "--json").stdout.splitlines()]

    after = cli("review", "decide", str(pair["pair_id"]), "duplicate", "--db", db)
    before = cli("review", "--db", db, "decide", str(pair["pair_id"]), "not_duplicate", "--json")
    neither = cli("review", "decide", str(pair["pair_id"]), "duplicate")

    assert after.returncode == 0, after.stderr
    assert after.stdout.strip().endswith(": duplicate")
    assert before.returncode == 0, before.stderr
    decided = json.loads(before.stdout)
    assert (decided["pair_id"], decided["decision"]) == (pair["pair_id"], "not_duplicate")
    assert decided["decided_at"].endswith("Z") and decided["created_at"] <= decided["decided_at"]
    assert neither.returncode == 2 and neither.stderr == "lookalike: error: missing option --db (the index database)\n"


def test_options_may_come_before_the_command_as_in_git(cli: Run, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    first = cli("--db", db, "--json", "index", LIBRARY / "chelsea.jpg", "--jobs", "1")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout.splitlines()[-1])  # --json before the command took effect
    before = cli("--json", "--db", db, "check", UPLOADS / "chelsea_mirrored.jpg")
    after = cli("check", UPLOADS / "chelsea_mirrored.jpg", "--db", db, "--json")
    assert before.returncode == after.returncode == 0, before.stderr
    assert json.loads(before.stdout)["verdict"] == json.loads(after.stdout)["verdict"] == "near_duplicate"

    unknown = cli("--bogus", "check", UPLOADS / "chelsea_mirrored.jpg", "--db", db)
    assert unknown.returncode == 2 and "No such option: --bogus" in unknown.stderr


def test_exit_code_says_whether_a_duplicate_was_found(cli: Run, tmp_path: Path) -> None:
    """As `git diff --exit-code`: 1 a duplicate, 0 none, 2 trouble; without the flag, 0 for any answer."""
    near = ("compare", LIBRARY / "coffee.jpg", UPLOADS / "coffee_small.webp")
    unrelated = ("compare", LIBRARY / "coffee.jpg", UPLOADS / "coins_new.jpg")
    missing = ("compare", LIBRARY / "coffee.jpg", tmp_path / "missing.jpg")
    assert [cli(*near).returncode, cli(*unrelated).returncode] == [0, 0]
    assert cli(*near, "--exit-code").returncode == 1
    assert cli(*unrelated, "--exit-code").returncode == 0
    assert cli(*missing, "--exit-code").returncode == 2

    db = tmp_path / "index.sqlite"
    assert cli("index", LIBRARY, "--db", db, "--jobs", "1").returncode == 0
    check = ("check", "--db", db, "--jobs", "1", "--exit-code")
    assert cli(*check, UPLOADS / "coins_new.jpg").returncode == 0
    assert cli(*check, UPLOADS / "coins_new.jpg", UPLOADS / "chelsea_mirrored.jpg").returncode == 1
    assert cli(*check, UPLOADS / "chelsea_mirrored.jpg", tmp_path / "missing.jpg").returncode == 2


def test_usage_errors_are_plain_words(cli: Run) -> None:
    cases = {
        ("hash", "x.jpg", "--jobs", "-1"): "Invalid value for '--jobs' / '-j': must be at least 0",
        ("review", "decide", "abc", "duplicate", "--db", "x"): "Invalid value for 'pair': must be a whole number",
        ("index", "x", "--db", "y", "--on-duplicate", "maybe"): "'maybe' is not one of 'reject', 'store', 'review'",
    }
    for args, says in cases.items():
        result = cli(*args)
        assert result.returncode == 2, args
        assert says in result.stderr, result.stderr
        assert "Value error" not in result.stderr and "Input should" not in result.stderr
        assert "Traceback" not in result.stderr
    as_json = json.loads(cli("hash", "x.jpg", "--jobs", "-1", "--json").stdout)
    assert as_json == {"error": {"code": "usage", "message": "Invalid value for '--jobs' / '-j': must be at least 0"}}


def test_json_on_every_index_command(cli: Run, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    (added,) = [json.loads(x) for x in cli("index", LIBRARY / "rocket.jpg", "--db", db, "--json").stdout.splitlines()]
    assert (added["outcome"], added["verdict"], added["matches"]) == ("added", "unique", [])
    stats = json.loads(cli("stats", "--db", db, "--json").stdout)
    assert (stats["images"], stats["files"], stats["review_pending"]) == (1, 1, 0)
    removed = json.loads(cli("remove", added["id"], "--db", db, "--json").stdout)
    assert removed == {"id": added["id"], "scope": "default", "removed": True}
    again = cli("remove", added["id"], "--db", db, "--json")
    assert again.returncode != 0 and json.loads(again.stdout)["error"]["code"] == "not_found"
    key = json.loads(cli("keys", "create", "--tenant", "alice", "--db", db, "--json").stdout)
    assert key["key"].startswith("lk_") and key["tenant"] == "alice" and key["revoked_at"] is None
    listed = [json.loads(x) for x in cli("keys", "list", "--db", db, "--json").stdout.splitlines()]
    assert [k["key_id"] for k in listed] == [key["key_id"]] and "key" not in listed[0]
    assert json.loads(cli("keys", "revoke", key["key_id"], "--db", db, "--json").stdout)["revoked"] is True
    missing_db = cli("stats", "--db", tmp_path / "nothing-here.sqlite", "--json")
    assert missing_db.returncode == 2 and json.loads(missing_db.stdout)["error"]["code"] == "not_found"


def test_help_loads_none_of_the_image_stack() -> None:
    """``--help`` and ``--version`` run before NumPy, numba, OpenCV, Pillow or httpx are imported
    (their cost is measured by benchmarks/cli_startup.py)."""
    probe = (
        "import sys; from lookalike.cli.main import app; "
        "heavy = [m for m in ('numpy', 'numba', 'cv2', 'PIL', 'httpx', 'scipy', 'lookalike.index.collection') "
        "if m in sys.modules]; print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=os.environ)
    assert out.stdout.strip() == ""


def test_windows_is_refused_with_one_line() -> None:
    probe = "import sys; from lookalike.cli.main import run; sys.platform = 'win32'; sys.argv = ['lookalike']; run()"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=os.environ)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Windows is not supported" in out.stderr


def test_the_first_run_says_it_compiles_kernels(cli: Run, tmp_path: Path) -> None:
    picture = tmp_path / "p.png"
    picture.write_bytes(encode(photo(96, 64, seed=3), "PNG"))
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    first = cli("hash", picture, "--jobs", "1", env=env)
    second = cli("hash", picture, "--jobs", "1", env=env)
    assert first.returncode == second.returncode == 0
    assert first.stderr == "lookalike: compiling numeric kernels on first use (a few seconds, once per install)\n"
    assert second.stderr == ""


def test_a_fresh_install_names_every_module_it_compiles(tmp_path: Path) -> None:
    """The first-run notice finds kernels by the module that defines them: each module a command
    lists must be one whose kernels an empty cache lacks (a module named after its kernels moved
    out, as ``hamming`` was once its kernels went to ``hamming_kernels``, silences the notice)."""
    from lookalike.cli.progress import FINGERPRINT_KERNELS, INDEX_KERNELS

    probe = (
        "import importlib, sys; from lookalike.cli import progress; "
        "from lookalike.fingerprints.kernels import uncompiled; "
        "mods = progress.FINGERPRINT_KERNELS + progress.INDEX_KERNELS; "
        "[importlib.import_module(m) for m in mods]; print(','.join(sorted(uncompiled(mods))))"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "numba-cache")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == ",".join(sorted({*FINGERPRINT_KERNELS, *INDEX_KERNELS}))


def test_calibrate_says_why_ten_images_are_too_few(cli: Run, tmp_path: Path) -> None:
    """Ten images can still be too few: the message says how they fell into the two halves."""
    folder = tmp_path / "mine"
    folder.mkdir()
    names = [f"img{i}.png" for i in range(200)]
    indexed = [n for n in names if _in_indexed_half(n)][:7]
    others = [n for n in names if not _in_indexed_half(n)][:3]
    for i, name in enumerate(indexed + others):
        (folder / name).write_bytes(encode(photo(64, 48, seed=i), "PNG"))
    result = cli("calibrate", folder, "-o", tmp_path / "s.json", "--jobs", "1")
    assert result.returncode == 2
    assert "of these 10, 7 fell in the indexed half and 3 in the other" in result.stderr
    assert "at least 8" not in result.stderr


def _in_indexed_half(name: str) -> bool:
    """The split ``lookalike calibrate`` documents: by the first byte of the SHA-256 of the file name."""
    return hashlib.sha256(name.encode()).digest()[0] < 128
