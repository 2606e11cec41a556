"""The index database survives what happens to real processes: ``lookalike index`` killed with SIGKILL at
random moments, and two processes adding the same pictures at once."""

from __future__ import annotations

import hashlib
import random
import re
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.fingerprints import fingerprint_from_bytes
from lookalike.index import Index
from lookalike.index.store.records import unsigned64
from tests.index.conftest import cli_command, cli_env

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")

N_PICTURES = 1500
N_COPIES = 40


def small_pictures(folder: Path, n: int, *, copies: int = 0, seed: int = 0) -> set[str]:
    """``n`` small distinct pictures (64..128 px, smooth random colour fields with noise, PNG and JPEG) and
    ``copies`` byte-identical copies of some of them under other names. Returns the SHA-256 (hex) of every
    distinct content.

    The fields are 12 x 12 random colours upsampled: coarser ones give pHashes so alike that indexing
    spends its time on review pairs."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for i in range(n):
        side = int(rng.integers(64, 129))
        field = Image.fromarray(rng.integers(0, 256, size=(12, 12, 3), dtype=np.uint8), "RGB")
        arr = np.asarray(field.resize((side, side), Image.Resampling.BICUBIC), dtype=np.int16)
        arr = arr + rng.integers(-6, 7, size=arr.shape)
        im = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")
        path = folder / f"img{i:05d}.{'png' if i % 2 else 'jpg'}"
        if i % 2:
            im.save(path, compress_level=1)
        else:
            im.save(path, quality=85)
        written.append(path)
    for k, i in enumerate(rng.choice(n, size=copies, replace=False)):
        src = written[int(i)]
        (folder / f"copy{k:04d}{src.suffix}").write_bytes(src.read_bytes())
    return {hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir()}


def summary(stdout: str) -> tuple[int, int, int]:
    """(added, already present, failed) from the summary line of ``lookalike index``."""
    found = re.search(
        r"^added (\d+), copies left out (\d+), already present (\d+), failed (\d+)$", stdout, re.MULTILINE
    )
    assert found, stdout
    added, left_out, present, failed = (int(g) for g in found.groups())
    assert left_out == 0, stdout  # the pictures are unrelated, their copies byte for byte
    return added, present, failed


def count_files(db: Path) -> int:
    """Rows in the files table, read the way any other process would (0 before it exists)."""
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30)
    try:
        return int(con.execute("SELECT COUNT(*) FROM files").fetchone()[0])
    except sqlite3.OperationalError:  # the schema is not there yet
        return 0
    finally:
        con.close()


def assert_consistent(db: Path, contents: set[str]) -> int:
    """Every invariant a reader relies on; returns the number of stored files."""
    if not db.exists():
        return 0
    con = sqlite3.connect(db, timeout=30)
    try:
        assert con.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "files" not in tables:
            return 0
        assert con.execute("PRAGMA foreign_key_check").fetchall() == []
        orphans = con.execute(
            "SELECT COUNT(*) FROM files f LEFT JOIN images i ON i.pk = f.image_pk WHERE i.pk IS NULL"
        ).fetchone()[0]
        assert orphans == 0, "file rows without their image row"
        empty = con.execute("SELECT COUNT(*) FROM images WHERE pk NOT IN (SELECT image_pk FROM files)").fetchone()[0]
        assert empty == 0, "image rows without any file"
        unlogged = con.execute(
            "SELECT COUNT(*) FROM files WHERE pk NOT IN (SELECT file_pk FROM changes WHERE added = 1)"
        ).fetchone()[0]
        assert unlogged == 0, "files other processes would never hear of (missing from the change log)"
        twice = con.execute(
            "SELECT hex(sha256), COUNT(*) FROM files GROUP BY scope_pk, sha256 HAVING COUNT(*) > 1"
        ).fetchall()
        assert twice == [], "the same bytes stored twice in a scope"
        rows = con.execute("SELECT sha256, phash, source, fingerprint FROM files").fetchall()
    finally:
        con.close()
    for sha, phash, source, blob in rows:
        fp = fingerprint_from_bytes(bytes(blob))
        assert fp.sha256 == bytes(sha)
        assert fp.sha256.hex() in contents, f"{source}: stored bytes that are not in the folder"
        assert unsigned64(int(phash)) == fp.phash
        assert hashlib.sha256(Path(source).read_bytes()).digest() == fp.sha256
    with Index(db) as ix:
        assert ix.stats().files == len(rows)
        for _, _, source, _ in rows[:: max(1, len(rows) // 3)]:
            assert ix.check(Path(source).read_bytes()).verdict == "identical"
    return len(rows)


def start_index(folder: Path, db: Path, jobs: int = 1) -> subprocess.Popen[str]:
    """``lookalike index FOLDER --db DB --jobs N`` started in the background.

    One BLAS thread per process: these runs share two cores with each other, and no assertion here depends
    on a hash value, only on what is stored."""
    return subprocess.Popen(
        [*cli_command(), "index", str(folder), "--db", str(db), "--jobs", str(jobs)],
        env={**cli_env(), "OPENBLAS_NUM_THREADS": "1"}, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip


def test_indexing_killed_at_random_moments_leaves_a_consistent_database(tmp_path: Path) -> None:
    folder = tmp_path / "pictures"
    contents = small_pictures(folder, N_PICTURES, copies=N_COPIES, seed=1)
    assert len(contents) == N_PICTURES
    n_paths = N_PICTURES + N_COPIES
    db = tmp_path / "index.sqlite"
    rng = random.Random(20240611)

    stored = 0
    for _ in range(3):
        proc = start_index(folder, db)
        # kill while it writes: once this run has committed something new, after a random moment more
        give_up = time.monotonic() + 300  # a guard against a hung run, not a speed requirement
        while count_files(db) == stored and proc.poll() is None:
            assert time.monotonic() < give_up, "lookalike index stored nothing new in 5 minutes"
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.0))
        proc.send_signal(signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        stored = assert_consistent(db, contents)

    stored_before = count_files(db)
    assert stored_before > 0
    final = start_index(folder, db, jobs=2)
    out, err = final.communicate(timeout=600)

    assert final.returncode == 0, err
    added, present, failed = summary(out)
    assert (added + present, failed) == (n_paths, 0)
    assert added == len(contents) - stored_before  # the earlier ones were all "already present"
    assert assert_consistent(db, contents) == len(contents)
    with Index(db) as ix:
        s = ix.stats()
        assert (s.images, s.files) == (len(contents), len(contents))


@pytest.mark.parametrize(("what", "rounds"), [("one file", 2), ("one folder", 2)])
def test_two_processes_adding_the_same_pictures_store_them_once(tmp_path: Path, what: str, rounds: int) -> None:
    folder = tmp_path / "pictures"
    contents = small_pictures(folder, 16, copies=3, seed=2)
    target = folder / "img00003.png" if what == "one file" else folder
    expected = 1 if what == "one file" else len(contents)

    for round_ in range(rounds):
        db = tmp_path / f"round{round_}.sqlite"
        procs = [start_index(target, db), start_index(target, db)]
        outputs = [p.communicate(timeout=300) for p in procs]

        for p, (_, err) in zip(procs, outputs):
            assert p.returncode == 0, err
            assert "Traceback" not in err
        added = [summary(out)[0] for out, _ in outputs]
        assert sum(added) == expected, outputs  # each picture reported as added by exactly one of them
        assert assert_consistent(db, contents) == expected
        with Index(db) as ix:
            assert (ix.stats().images, ix.stats().files) == (expected, expected)
