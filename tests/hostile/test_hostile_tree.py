"""A hostile photo folder, acted on through the real command line: nothing is ever lost through
links, odd files or odd names, the run ends, and no raw terminal escape reaches the screen.

The tree: real duplicate pictures; the folder reached twice (named, and through a symlink to it);
a symlink to a file beside its target, and a hard link; a FIFO named like a photo; a HEIC whose
size box was edited (pillow-heif raises RuntimeError on it); names holding terminal escape
sequences, a carriage return, and bytes that are not UTF-8.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest

from tests.images import encode, photo

#: a name that would turn a terminal red, set its title and rewrite the line if printed raw
ESCAPED_NAME = "\x1b[31mred\x1b[0m\x1b]0;title\x07\r.jpg"
#: a name whose bytes are not UTF-8 (Python holds it with a lone surrogate)
NOT_UTF8_NAME = os.fsdecode(b"caf\xe9.jpg")


def edited_heic() -> bytes:
    """A real HEIC whose ``ispe`` (image spatial extent) box claims a width of 1 pixel."""
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    photo(320, 240, seed=41).save(buf, "HEIF")
    data = bytearray(buf.getvalue())
    box = data.find(b"ispe")
    assert box > 0, "no ispe box in the HEIC pillow-heif wrote"
    data[box + 8 : box + 12] = (1).to_bytes(4, "big")  # after the version/flags word: the width
    return bytes(data)


def make_hostile_tree(root: Path) -> None:
    boat, hill, red, lone = (photo(360, 270, seed=s) for s in (42, 43, 44, 45))
    files = {
        "boat.png": encode(boat, "PNG"),
        "phone/boat.jpg": encode(boat, "JPEG", quality=90),
        "hill.jpg": encode(hill, "JPEG", quality=92),
        "mm_hill.jpg": b"",  # the same bytes as zz_hill.jpg (below)
        ESCAPED_NAME: encode(red, "JPEG", quality=90),
        "red_copy.png": encode(red, "PNG"),
        NOT_UTF8_NAME: encode(lone, "JPEG", quality=90),
        "edited.heic": edited_heic(),
    }
    files["zz_hill.jpg"] = files["mm_hill.jpg"] = files["hill.jpg"]
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    os.symlink("zz_hill.jpg", root / "aa_hill_link.jpg")  # a symlink beside its target
    os.link(root / "boat.png", root / "boat_hardlink.png")  # another name of the same file
    os.mkfifo(root / "x.jpg")  # reading it would wait for a writer for ever


def regular_files(root: Path) -> dict[str, str]:
    """path -> SHA-256 of every regular file under ``root`` (not through symlinks; the trash left out)."""
    return contents(root, every=True)


def contents(root: Path, *, every: bool = False) -> dict[str, str]:
    """SHA-256 -> one path, of every regular file under ``root`` (not through symlinks; the trash
    left out); with ``every``, path -> SHA-256 of each of them."""
    out: dict[str, str] = {}
    for dirpath, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != ".lookalike-trash"]
        for name in names:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if stat.S_ISREG(st.st_mode):
                with open(path, "rb") as fh:
                    digest = hashlib.sha256(fh.read()).hexdigest()
                if every:
                    out[path] = digest
                else:
                    out.setdefault(digest, path)
    return out


def run(script: Path, cwd: Path, *args: str | Path) -> subprocess.CompletedProcess[bytes]:
    env = {k: v for k, v in os.environ.items() if k != "LOOKALIKE_SETTINGS"} | {"COLUMNS": "200"}
    return subprocess.run(
        [str(script), *map(str, args)], capture_output=True, timeout=180, cwd=cwd, env=env, stdin=subprocess.DEVNULL
    )


def assert_no_raw_controls(proc: subprocess.CompletedProcess[bytes]) -> None:
    for stream, data in (("stdout", proc.stdout), ("stderr", proc.stderr)):
        for byte, name in ((b"\x1b", "ESC"), (b"\x07", "BEL"), (b"\r", "CR")):
            assert byte not in data, f"a raw {name} reached {stream}: {data[:2000]!r}"


@pytest.mark.parametrize("action", ["delete", "trash", "move"])
def test_hostile_tree_loses_nothing(action: str, tmp_path: Path, lookalike_script: Path) -> None:
    root = tmp_path / "photos"
    root.mkdir()
    make_hostile_tree(root)
    alias = tmp_path / "alias"
    os.symlink(root, alias)  # the same folder, reached a second time
    before, files_before = contents(root), regular_files(root)
    db = tmp_path / "find.db"
    extra: list[str | Path] = ["--to", tmp_path / "moved"] if action == "move" else []

    # the plan, as data and changing nothing
    planned = run(lookalike_script, tmp_path, "find", root, alias, "--db", db, "--action", action, "--dry-run",
                  "--json", "--csv", tmp_path / "r.csv", "--html", tmp_path / "r.html", *extra)  # fmt: skip
    assert planned.returncode in (0, 1), planned.stderr
    assert os.fsencode(NOT_UTF8_NAME) in (tmp_path / "r.csv").read_bytes()  # CSV stays exact
    assert (tmp_path / "r.html").stat().st_size > 0
    assert_no_raw_controls(planned)
    doc = json.loads(planned.stdout)
    errors = {os.path.basename(e["path"]): e for e in doc["errors"]}
    assert errors["edited.heic"]["error"]["code"] == "corrupt_image"
    assert errors["x.jpg"]["error"]["code"] == "not_regular_file"
    assert contents(root) == before
    plan = doc["plan"]
    assert plan["action"] == action and plan["dry_run"] is True and plan["steps"]
    for step in plan["steps"]:
        assert {"source", "destination", "keeper", "why"} <= set(step)
        assert os.stat(step["source"]).st_ino != os.stat(step["keeper"]).st_ino  # never a file its own copy
        assert (step["destination"] is None) == (action == "delete")
    # every file is listed once, whatever number of paths reached it
    listed = [m["path"] for g in doc["groups"] for m in g["members"]]
    assert len(listed) == len({(os.stat(p).st_dev, os.stat(p).st_ino) for p in listed})
    assert not any(p.startswith(str(alias) + os.sep) for p in listed)
    # the symlink's target is not acted on while the link points to it: it is held back
    assert str(root / "zz_hill.jpg") in {h["path"] for h in plan["held_back"]}

    # the real thing
    acted = run(lookalike_script, tmp_path, "find", root, alias, "--db", db, "--action", action, "--yes", *extra)
    assert acted.returncode in (0, 1), acted.stderr
    assert "Traceback" not in acted.stderr.decode(errors="replace")
    assert_no_raw_controls(acted)
    assert b"done, 0 failed" in acted.stdout, acted.stdout
    after = contents(root)
    # every content survives, but for edited copies (other bytes) of a picture whose keeper does
    verdicts = {m["path"]: m["verdict"] for g in doc["groups"] for m in g["members"]}
    edited = {files_before[s["source"]] for s in plan["steps"] if verdicts[s["source"]] != "identical"}
    assert set(before) - edited <= set(after), "a file's last copy is gone"
    assert all(os.path.isfile(s["keeper"]) for s in plan["steps"]), "a keeper is gone"
    steps = len(plan["steps"])
    assert len(regular_files(root)) == len(files_before) - steps  # each planned step was carried out
    assert (root / "aa_hill_link.jpg").resolve().is_file()  # the symlink still leads to its picture
    assert stat.S_ISFIFO(os.lstat(root / "x.jpg").st_mode)
    assert os.path.samefile(root / "boat.png", root / "boat_hardlink.png") or not (root / "boat.png").exists()
    if action != "delete":  # moved copies are where the manifest says, and come back
        manifest = acted.stdout.decode().split("undo with: lookalike undo ")[1].split()[0]
        undone = run(lookalike_script, tmp_path, "undo", manifest)
        assert undone.returncode == 0, undone.stderr
        assert_no_raw_controls(undone)
        assert contents(root) == before
