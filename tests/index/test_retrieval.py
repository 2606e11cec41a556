"""Copies whose frame changed (a tight crop, a screenshot) are found by their local descriptors.

Thirty real corpus photos go into a real SQLite index; the queries are chosen so that the pHash stage
cannot reach the original (beyond ``RETRIEVAL_RADIUS`` in every flip/turn, and not among the ``_KNN``
nearest), so finding them means the stored ORB descriptors voted for it.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw

from lookalike import Fingerprint, fingerprint
from lookalike.fingerprints import Analysis, analyse
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index import Index, cascade
from lookalike.index.cascade import _KNN, RETRIEVAL_RADIUS
from lookalike.index.search import descriptors
from lookalike.match.local import verify_local
from lookalike.match.retrieval import NEAREST_RADIUS
from tests.images import corpus_photos, encode
from tests.index.conftest import cli_env, jpeg, picture
from tests.pg import PostgresServer

#: the photo whose crop and screenshot are looked for, and the one whose corner is
SUBJECT = "ants_train_334167043_cbd1adaeb9"
CORNER_SUBJECT = "ants_train_148715752_302c84f5a4"

Library = dict[str, tuple[Path, Analysis]]

# ---- the edits ------------------------------------------------------------------------------------


def central_crop(im: Image.Image, area: float = 0.45) -> Image.Image:
    """The middle of ``im``, ``area`` of it, same aspect."""
    w, h = im.size
    cw, ch = round(w * area**0.5), round(h * area**0.5)
    x0, y0 = (w - cw) // 2, (h - ch) // 2
    return im.crop((x0, y0, x0 + cw, y0 + ch))


def corner_crop(im: Image.Image, area: float = 0.5) -> Image.Image:
    """The top-left ``area`` of ``im``, same aspect."""
    w, h = im.size
    return im.crop((0, 0, round(w * area**0.5), round(h * area**0.5)))


def screenshot(im: Image.Image, scale: float = 0.6) -> Image.Image:
    """``im`` at ``scale`` of its size on a page of the original's size: a flat title bar with text on
    top, a caption below, a light background around."""
    w, h = im.size
    small = im.resize((round(w * scale), round(h * scale)), Image.Resampling.LANCZOS)
    page = Image.new("RGB", (w, h), (246, 246, 246))
    page.paste((32, 48, 96), (0, 0, w, 40))
    draw = ImageDraw.Draw(page)
    draw.text((12, 12), "Gallery  >  Insects  >  IMG_2041.jpg", fill=(255, 255, 255))
    draw.text((12, h - 24), "Shared by Sam, 3 days ago  -  12 comments", fill=(60, 60, 60))
    page.paste(small, ((w - small.width) // 2, 40 + (h - 68 - small.height) // 2))
    return page


EDITS: dict[str, tuple[str, Callable[[Image.Image], Image.Image], str]] = {
    # name: (photo, edit, what the evidence says)
    "central 45% crop": (SUBJECT, central_crop, "cropped to"),
    "corner 50% crop": (CORNER_SUBJECT, corner_crop, "cropped to"),
    "screenshot": (SUBJECT, screenshot, "shown inside a larger picture"),
}


def edited(library: Library, edit: str) -> bytes:
    """The edited copy, as a JPEG."""
    stem, fn, _ = EDITS[edit]
    with Image.open(library[stem][0]) as im:
        return encode(fn(im.convert("RGB")), "JPEG", quality=85)


def assert_beyond_the_hashes(query: Fingerprint, original: str, library: Library) -> None:
    """The pHash stage cannot reach ``original`` for ``query``: no flip/turn of the query is within
    ``RETRIEVAL_RADIUS`` of it, and at least ``_KNN`` other stored photos are nearer than it."""
    target = library[original][1].fingerprint.phash
    assert min((v ^ target).bit_count() for v in query.phash_variants) > RETRIEVAL_RADIUS
    d = (query.phash ^ target).bit_count()
    nearer = [
        s for s, (_, a) in library.items() if s != original and (query.phash ^ a.fingerprint.phash).bit_count() < d
    ]
    assert len(nearer) >= _KNN, "the hash candidates would reach the original: pick another photo or edit"


def add_library(ix: Index, library: Library) -> None:
    for stem, (path, analysis) in library.items():
        ix.add_analyses([(analysis, str(path))], image_id=stem)


# ---- fixtures -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def library(corpus: Path) -> Library:
    """30 photos spread over the corpus (every 13th), analysed with their local features."""
    photos = corpus_photos()[::13][:30]
    assert len(photos) == 30 and {SUBJECT, CORNER_SUBJECT} <= {p.stem for p in photos}
    return {p.stem: (p, analyse(p.read_bytes(), name=str(p), local=True)) for p in photos}


@pytest.fixture(scope="module")
def library_db(library: Library, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An SQLite index of the library, closed; tests work on copies."""
    path = tmp_path_factory.mktemp("retrieval") / "library.sqlite"
    with Index(path) as ix:
        add_library(ix, library)
    return path


@pytest.fixture
def db(library_db: Path, tmp_path: Path) -> Path:
    """This test's own copy of the library index."""
    path = tmp_path / "library.sqlite"
    with sqlite3.connect(library_db) as src, sqlite3.connect(path) as dst:
        src.backup(dst)
    return path


@pytest.fixture(params=["delta", "merged"])
def state(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where the index keeps the stored descriptors: the small unsorted delta a collection this size
    has, or the LSH-sorted part a large collection has (made to merge after every file)."""
    if request.param == "merged":
        monkeypatch.setattr(descriptors, "_DELTA_CODES", 64)
    return str(request.param)


# ---- finding heavily edited copies ----------------------------------------------------------------


@pytest.mark.parametrize("edit", list(EDITS))
def test_a_heavily_edited_copy_is_found_as_the_same_picture(library: Library, db: Path, state: str, edit: str) -> None:
    stem, _, evidence = EDITS[edit]
    query = edited(library, edit)
    assert_beyond_the_hashes(fingerprint(query), stem, library)

    with Index(db) as ix:
        result = ix.check(query)

    assert result.verdict == "near_duplicate"
    assert result.matches[0].image_id == stem
    assert [m.image_id for m in result.matches if m.verdict.is_duplicate] == [stem]
    assert evidence in result.matches[0].explanation


@pytest.mark.parametrize("large", [False, True])
def test_far_pictures_are_candidates_by_nearness_only_in_a_small_index(
    library: Library, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, large: bool
) -> None:
    """With only its original and two strangers stored, each is among the crop's five nearest
    pHashes, none within ``NEAREST_RADIUS``. A small index looks at its nearest few however far
    (every stranger scored); past ``NEAREST_ANY_UP_TO`` rows (made 2 here) only within the radius,
    the rule a scale-out run applies too, so that neither engine scans every row for the nearest:
    the strangers are not scored at all, and the crop is still found, by its descriptors' votes."""
    if large:
        monkeypatch.setattr(cascade, "NEAREST_ANY_UP_TO", 2)
    query = edited(library, "central 45% crop")
    others = [s for s in library if s != SUBJECT][:2]
    fp = fingerprint(query)
    far = {s: (fp.phash ^ library[s][1].fingerprint.phash).bit_count() for s in [SUBJECT, *others]}
    assert min(far.values()) > NEAREST_RADIUS, "pick photos whose pHash is far from the crop's"
    with Index(tmp_path / "three.sqlite") as ix:
        add_library(ix, {s: library[s] for s in far})
        result = ix.check(query)

    assert sorted(m.image_id for m in result.matches) == ([SUBJECT] if large else sorted(far))
    assert result.matches[0].image_id == SUBJECT
    assert result.verdict == "near_duplicate" and "cropped to" in result.matches[0].explanation


def test_the_evidence_says_how_much_of_the_photo_a_crop_shows(library: Library, db: Path) -> None:
    with Index(db) as ix:
        crop = ix.check(edited(library, "central 45% crop")).matches[0]
        corner = ix.check(edited(library, "corner 50% crop")).matches[0]
        shot = ix.check(edited(library, "screenshot")).matches[0]

    shown = [int(m.group(1)) for m in (re.search(r"cropped to (\d+)%", x.explanation) for x in (crop, corner)) if m]
    assert len(shown) == 2 and abs(shown[0] - 45) <= 8 and abs(shown[1] - 50) <= 8
    filled = re.search(r"inside a larger picture \((\d+)% of it\)", shot.explanation)
    assert filled and abs(int(filled.group(1)) - 36) <= 8  # 60% of the width and of the height


@pytest.mark.parametrize("kind", ["photo", "its central crop"])
def test_pictures_unrelated_to_all_stored_ones_are_no_duplicates(library: Library, db: Path, kind: str) -> None:
    strangers = [p for p in corpus_photos()[1:200:40] if p.stem not in library]
    assert len(strangers) >= 4
    queries = [jpeg(picture(7))] + [p.read_bytes() for p in strangers]
    if kind != "photo":
        queries = []
        for p in strangers:
            with Image.open(p) as im:
                queries.append(encode(central_crop(im.convert("RGB")), "JPEG", quality=85))

    with Index(db) as ix:
        for query in queries:
            result = ix.check(query)
            assert result.verdict in ("unique", "similar")
            assert not any(m.verdict.is_duplicate for m in result.matches)


def test_a_removed_photo_is_no_longer_found_by_its_crop(library: Library, db: Path, state: str) -> None:
    crop, shot = edited(library, "central 45% crop"), edited(library, "screenshot")
    with Index(db) as ix, Index(db) as other:
        assert ix.check(crop).matches[0].image_id == SUBJECT
        assert other.check(shot).matches[0].image_id == SUBJECT

        ix.remove(SUBJECT)

        for index in (ix, other):  # this process's index, and one that learns of it from the change log
            for query in (crop, shot):
                result = index.check(query)
                assert all(m.image_id != SUBJECT for m in result.matches)
                assert not any(m.verdict.is_duplicate for m in result.matches)


def test_an_index_open_while_another_adds_the_photos_finds_the_crop(library: Library, tmp_path: Path) -> None:
    path = tmp_path / "shared.sqlite"
    crop = edited(library, "central 45% crop")
    with Index(path) as reader, Index(path) as writer:
        assert reader.check(crop).verdict == "unique"

        add_library(writer, library)

        result = reader.check(crop)
        assert (result.verdict, result.matches[0].image_id) == ("near_duplicate", SUBJECT)


def test_another_process_on_the_same_file_finds_the_crop(library: Library, db: Path, tmp_path: Path) -> None:
    """A fresh process rebuilds its descriptor index from the database's ``local_codes`` table."""
    query = tmp_path / "crop.jpg"
    query.write_bytes(edited(library, "central 45% crop"))
    script = (
        "import json, sys\n"
        "from lookalike.index import Index\n"
        "with Index(sys.argv[1], create=False) as ix:\n"
        "    r = ix.check(sys.argv[2])\n"
        "print(json.dumps({'verdict': r.verdict, 'top': r.matches[0].image_id if r.matches else None}))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(db), str(query)],
        env=cli_env(), capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip

    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"verdict": "near_duplicate", "top": SUBJECT}


def test_a_postgresql_index_finds_the_crop_too(library: Library, postgres: PostgresServer) -> None:
    query = edited(library, "central 45% crop")
    with Index(postgres.new_database()) as ix:
        add_library(ix, library)
        result = ix.check(query)

    assert (result.verdict, result.matches[0].image_id) == ("near_duplicate", SUBJECT)


# ---- schema v3 databases --------------------------------------------------------------------------


def local_codes(path: Path) -> dict[int, bytes]:
    with sqlite3.connect(path) as con:
        return {int(pk): bytes(codes) for pk, codes in con.execute("SELECT file_pk, codes FROM local_codes")}


@pytest.mark.parametrize("how", ["local_codes emptied", "local_codes dropped"])
def test_a_schema_v3_database_is_migrated_so_crops_are_found_again(library: Library, db: Path, how: str) -> None:
    fresh = local_codes(db)
    assert len(fresh) == len(library)
    con = sqlite3.connect(db)
    con.execute("DELETE FROM local_codes" if how == "local_codes emptied" else "DROP TABLE local_codes")
    con.execute("PRAGMA user_version=3")
    con.commit()
    con.close()

    with Index(db) as ix:
        result = ix.check(edited(library, "central 45% crop"))

    assert (result.verdict, result.matches[0].image_id) == ("near_duplicate", SUBJECT)
    assert local_codes(db) == fresh  # the same 64 strongest descriptors a new file gets
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA user_version").fetchone()[0] > 3


# ---- degenerate geometric fits ---------------------------------------------------------------------

_rng = np.random.default_rng(0)
_CODES = _rng.integers(0, 256, size=(80, 32), dtype=np.uint8)
_SPREAD = _rng.uniform(0.05, 0.95, size=(80, 2)).astype(np.float32)
_BLOB = (0.5 + _rng.uniform(-0.002, 0.002, size=(80, 2))).astype(np.float32)  # within about 2 px
_POINT = np.full((80, 2), 0.5, np.float32)


def features(points: np.ndarray) -> LocalFeatures:
    """80 keypoints at ``points`` with the same 80 distinct descriptors every time, so every query
    keypoint matches its stored twin unambiguously."""
    return LocalFeatures(points=points, descriptors=_CODES, aspect=4 / 3)


def test_matches_spread_over_the_picture_are_all_inliers() -> None:
    e = verify_local(features(_SPREAD), features(_SPREAD))
    assert (e.matches, e.inliers) == (80, 80)


@pytest.mark.parametrize(
    ("query", "stored"),
    [(_BLOB, _BLOB), (_SPREAD, _POINT), (_BLOB, _BLOB[::-1] + 0.3)],
    ids=["both bunched on a few pixels", "all onto one stored point", "bunched, matched out of order"],
)
def test_matches_collapsed_onto_one_point_give_no_inliers(query: np.ndarray, stored: np.ndarray) -> None:
    e = verify_local(features(query), features(stored))
    assert e.matches == 80  # every descriptor matched...
    assert e.inliers == 0  # ...but no real geometry agrees on them
