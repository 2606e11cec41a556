"""A folder of real pictures with copies of several kinds, and the tools to look at a tree on disk."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from tests.cli.conftest import cli, lookalike_script  # noqa: F401 - fixtures
from tests.images import encode, photo

#: what ``make_tree`` holds: picture name -> the copies of it (paths relative to the root)
GROUPS = {
    "boat": ["originals/boat.png", "phone/boat_small.jpg", "phone/boat_mirror.jpg", "backup/boat.png"],
    "hill": ["originals/hill.jpg", "phone/hill_small.webp", "phone/edited/hill_turned.jpg"],
    "cat": ["originals/cat.png", "phone/cat.jpg"],
}
SINGLES = ["originals/lonely.jpg", "phone/other.png"]
BAD = ["phone/broken.jpg", "phone/empty.png"]


def exif_jpeg(im: Image.Image, date: str, quality: int = 90) -> bytes:
    """``im`` as a JPEG whose EXIF DateTimeOriginal is ``date`` ("YYYY:MM:DD HH:MM:SS")."""
    exif = Image.Exif()
    exif.get_ifd(0x8769)[0x9003] = date
    return encode(im, "JPEG", quality=quality, exif=exif.tobytes())


def make_tree(root: Path) -> Path:
    """Write the pictures of ``GROUPS``, ``SINGLES`` and ``BAD`` under ``root``."""
    boat, hill, cat = photo(480, 360, seed=11), photo(400, 300, seed=12), photo(360, 360, seed=13)
    files: dict[str, bytes] = {
        "originals/boat.png": encode(boat, "PNG"),
        "phone/boat_small.jpg": encode(boat.resize((240, 180)), "JPEG", quality=85),
        "phone/boat_mirror.jpg": encode(boat.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=92),
        "originals/hill.jpg": encode(hill, "JPEG", quality=95),
        "phone/hill_small.webp": encode(hill.resize((200, 150)), "WEBP", quality=80),
        "phone/edited/hill_turned.jpg": encode(hill.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90),
        "originals/cat.png": encode(cat, "PNG"),
        "phone/cat.jpg": encode(cat, "JPEG", quality=88),
        "originals/lonely.jpg": encode(photo(320, 240, seed=14), "JPEG", quality=90),
        "phone/other.png": encode(photo(300, 300, seed=15), "PNG"),
        "phone/broken.jpg": encode(photo(320, 240, seed=16), "JPEG", quality=90)[:400],
        "phone/empty.png": b"",
    }
    files["backup/boat.png"] = files["originals/boat.png"]  # the same bytes twice
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    return root


def tree_digest(root: Path) -> dict[str, str]:
    """Every file and folder under ``root`` (relative path -> SHA-256, or "dir"), for before/after checks."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for d in dirs:
            out[os.path.relpath(os.path.join(dirpath, d), root)] = "dir"
        for f in files:
            p = os.path.join(dirpath, f)
            out[os.path.relpath(p, root)] = hashlib.sha256(Path(p).read_bytes()).hexdigest()
    return out


@pytest.fixture(scope="session")
def pristine_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tree, written once per session; tests copy it before changing anything."""
    return make_tree(tmp_path_factory.mktemp("pristine") / "photos")


@pytest.fixture()
def tree(pristine_tree: Path, tmp_path: Path) -> Path:
    """A fresh copy of the tree, this test's to change."""
    dest = tmp_path / "photos"
    shutil.copytree(pristine_tree, dest)
    return dest
