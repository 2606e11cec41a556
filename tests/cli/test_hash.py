"""``lookalike hash``: one line per image, folders searched recursively, bad files reported and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike import fingerprint
from tests.cli.conftest import Run
from tests.fingerprints.test_interop import threatexchange_pdq
from tests.images import EXAMPLES, encode, photo, save


@pytest.fixture()
def folder(tmp_path: Path) -> Path:
    """Pictures in nested folders, with a hidden file, a non-image and one broken picture."""
    root = tmp_path / "pictures"
    save(photo(200, 150, seed=1), root / "a.png")
    save(photo(200, 150, seed=2), root / "b.jpg", quality=90)
    save(photo(160, 120, seed=3), root / "trip" / "c.webp", quality=80)
    save(photo(160, 120, seed=4), root / "trip" / "day two" / "d.gif")
    save(photo(100, 100, seed=5), root / ".hidden.png")
    save(photo(100, 100, seed=6), root / ".cache" / "e.png")
    (root / "notes.txt").write_text("not a picture")
    broken = encode(photo(200, 150, seed=7), "JPEG")
    (root / "trip" / "broken.jpg").write_bytes(broken[: len(broken) // 2])
    return root


GOOD = ["a.png", "b.jpg", "trip/c.webp", "trip/day two/d.gif"]


def test_json_lines_for_every_image_recursively(cli: Run, folder: Path) -> None:
    result = cli("hash", folder, "--json", "--jobs", "1")

    lines = [json.loads(line) for line in result.stdout.splitlines()]
    paths = [Path(d["path"]).relative_to(folder).as_posix() for d in lines]
    assert sorted(paths) == sorted([*GOOD, "trip/broken.jpg"])  # no hidden files, no notes.txt
    for d in lines:
        if d["path"].endswith("broken.jpg"):
            assert d["error"]["code"] == "truncated_image"
            assert "broken.jpg" in d["error"]["message"]
            continue
        expected = fingerprint(d["path"]).to_dict()
        for key in ("phash", "dhash", "ahash", "whash", "pdq", "width", "height", "mime", "sha256"):
            assert d[key] == expected[key], (d["path"], key)
    # the broken file makes the run fail, but only after the rest were done
    assert result.returncode == 1
    assert "1 of 5" in result.stderr


def test_all_good_files_exit_zero(cli: Run, folder: Path) -> None:
    (folder / "trip" / "broken.jpg").unlink()
    result = cli("hash", folder, "--jobs", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(GOOD)
    assert all("phash" in line and "x" in line for line in lines)
    assert result.stderr == ""


def test_parallel_jobs_give_the_same_output(cli: Run, folder: Path) -> None:
    one = cli("hash", folder, "--json", "--jobs", "1")
    two = cli("hash", folder, "--json", "--jobs", "2")
    assert two.stdout == one.stdout
    assert two.returncode == one.returncode == 1


def test_unreadable_file_named_on_the_command_line(cli: Run, folder: Path) -> None:
    result = cli("hash", folder / "a.png", folder / "missing.png", "--jobs", "1")
    assert result.returncode == 1
    assert len(result.stdout.splitlines()) == 1  # a.png still hashed
    assert "missing.png" in result.stderr
    assert "no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_hash_formats_for_exchanging_lists(cli: Run) -> None:
    pytest.importorskip("pdqhash")
    path = EXAMPLES / "library" / "coffee.jpg"
    pdq = cli("hash", path, "--format", "pdq")
    phash = cli("hash", path, "--format", "imagehash")
    as_json = json.loads(cli("hash", path, "--format", "pdq", "--json").stdout)
    assert pdq.returncode == phash.returncode == 0, pdq.stderr + phash.stderr
    ref = threatexchange_pdq(path)
    assert pdq.stdout == f"{ref[0]},{ref[1]},{path}\n"
    assert phash.stdout == f"{fingerprint(path).phash}  {path}\n"
    assert as_json == {"path": str(path), "format": "pdq", "hash": ref[0], "quality": ref[1]}
