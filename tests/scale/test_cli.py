"""``lookalike find/hash --cluster``: the JSON document of ``find --json``, refusals of options that
do not go together, and a run killed with SIGKILL midway that ``--resume`` finishes."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image

from tests.images import encode, photo
from tests.scale.conftest import groups_of

ENV = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}


def lookalike(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lookalike", *args], capture_output=True, text=True, env=ENV, timeout=600
    )


def test_find_json_with_a_cluster_prints_the_document_of_find(tree: Path, tmp_path: Path) -> None:
    one = lookalike("find", str(tree), "--db", str(tmp_path / "f.db"), "--json")
    two = lookalike("find", str(tree), "--cluster", "local:2", "--out", str(tmp_path / "run"), "--json")
    assert one.returncode == two.returncode == 1  # two files cannot be read
    a, b = json.loads(one.stdout), json.loads(two.stdout)
    assert groups_of(a) == groups_of(b) and len(groups_of(a)) == 3
    assert a["pairs"] == b["pairs"] and a["errors"] == b["errors"]
    assert list(a) == list(b) and a["stats"].keys() == b["stats"].keys()
    # written a group at a time, yet the one line ``find --json`` writes
    assert two.stdout == json.dumps(b, separators=(",", ":")) + "\n"
    assert (tmp_path / "run" / "groups.parquet").is_file()
    # the readable answer and the CSV report, printed a group at a time from the run folder (the
    # run resumed: every stage reused), list the groups and members of the JSON document in order
    csv_path = tmp_path / "two.csv"
    run = ["find", str(tree), "--cluster", "local:2", "--out", str(tmp_path / "run"), "--resume"]
    text = lookalike(*run, "--csv", str(csv_path))
    assert text.returncode == 1
    members = [(str(i), m["path"], m["evidence"]) for i, g in enumerate(b["groups"], 1) for m in g["members"]]
    with csv_path.open(newline="") as fh:
        assert [(r["group"], r["path"], r["evidence"]) for r in csv.DictReader(fh) if r["group"] != "error"] == members
    listed, group = [], ""
    for line in text.stdout.splitlines():
        if m := re.fullmatch(r"group (\d+): \d+ files", line):
            group = m[1]
        elif m := re.match(r"  (?:keep |     |left ) (\S+)  \(", line):
            listed.append((group, m[1]))
    assert listed == [(i, p) for i, p, _ in members]
    assert f"{b['stats']['groups']:,} groups" in text.stdout.splitlines()[-1]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "R"], "--out and --resume go with --cluster"),
        (["--cluster", "local:2"], "--cluster needs --out"),
        (["--cluster", "local:0", "--out", "R"], "local:N"),
        (["--cluster", "udp://x", "--out", "R"], "local:N or tcp://"),
        (["--cluster", "local:1", "--out", "R", "--action", "move", "--to", "T"], "report only"),
        (["--cluster", "local:1", "--out", "R", "--storage-options", "{nope"], "not JSON"),
    ],
)
def test_options_that_do_not_go_together_are_refused(tree: Path, tmp_path: Path, args: list[str], message: str) -> None:
    r = lookalike("find", str(tree), *[a.replace("R", str(tmp_path / "r")) for a in args])
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "Traceback" not in r.stderr


def test_a_bucket_without_a_cluster_is_refused() -> None:
    r = lookalike("find", "s3://bucket/tree")
    assert r.returncode == 2 and "need --cluster" in r.stderr


def test_hash_with_a_cluster_writes_parquet(tree: Path, tmp_path: Path) -> None:
    r = lookalike("hash", str(tree / "originals"), "--cluster", "local:1", "--out", str(tmp_path / "h"), "--json")
    assert r.returncode == 0, r.stderr
    summary = json.loads(r.stdout.splitlines()[-1])
    assert summary["files"] == 4 and summary["errors"] == 0
    assert all(Path(p).is_file() for p in summary["parts"])


def _many(root: Path, n: int) -> Path:
    """``n`` pictures with three copies each: a PNG, a smaller JPEG and a mirrored JPEG."""
    for i in range(n):
        im = photo(200, 150, seed=100 + i)
        (root / f"p{i:03d}").mkdir(parents=True)
        (root / f"p{i:03d}" / "a.png").write_bytes(encode(im, "PNG"))
        (root / f"p{i:03d}" / "b.jpg").write_bytes(encode(im.resize((160, 120)), "JPEG", quality=85))
        mirrored = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        (root / f"p{i:03d}" / "c.jpg").write_bytes(encode(mirrored, "JPEG", quality=90))
    return root


def _fingerprinted(stderr: str) -> int:
    """Partitions a run fingerprinted (the stage that costs: decoding), from its last stderr line."""
    words = stderr.strip().splitlines()[-1].replace(",", "").replace(";", "").split()
    return int(words[words.index("fingerprint") + 2])


def test_resume_after_kill_9_midway_gives_identical_groups_parquet(tmp_path: Path) -> None:
    src = _many(tmp_path / "src", 16)
    args = ["--cluster", "local:2", "--partition-size", "1"]
    clean = lookalike("find", str(src), *args, "--out", str(tmp_path / "clean"))
    assert clean.returncode == 0, clean.stderr
    total = _fingerprinted(clean.stderr)
    run = tmp_path / "killed"
    cmd = [sys.executable, "-m", "lookalike", "find", str(src), "--cluster", "local:2", "--out", str(run),
           "--partition-size", "1"]  # fmt: skip
    proc = subprocess.Popen(cmd, env=ENV, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    try:
        while len(list((run / "fingerprints").glob("*.parquet"))) < 30:  # of 48
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
            time.sleep(0.01)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (run / "groups.parquet").exists()
    resumed = lookalike("find", str(src), *args, "--out", str(run), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert (run / "groups.parquet").read_bytes() == (tmp_path / "clean" / "groups.parquet").read_bytes()
    assert _fingerprinted(resumed.stderr) < 0.6 * total


@pytest.mark.parametrize("out", ["s3://bucket/run", "gs://bucket/run"])
def test_out_in_object_storage_is_refused_not_written_to_a_local_folder(tree: Path, tmp_path: Path, out: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "lookalike", "find", str(tree), "--cluster", "local:1", "--out", out],
        capture_output=True, text=True, env=ENV, timeout=600, cwd=tmp_path,
    )  # fmt: skip
    assert r.returncode == 2 and f"--out {out}" in r.stderr and "Traceback" not in r.stderr
    assert list(tmp_path.iterdir()) == []  # no ./s3:/bucket/run


def test_out_that_cannot_be_written_is_refused(tree: Path, tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("")
    r = lookalike("find", str(tree), "--cluster", "local:1", "--out", str(tmp_path / "a-file" / "run"))
    assert r.returncode == 2 and "cannot write there" in r.stderr and "Traceback" not in r.stderr


def test_resume_on_a_grown_source_fingerprints_only_the_new_files_and_gives_a_fresh_runs_answer(
    tmp_path: Path,
) -> None:
    every = _many(tmp_path / "all", 16)  # 48 files
    src = tmp_path / "src"
    src.mkdir()
    new = [d for d in sorted(every.iterdir()) if int(d.name[1:]) % 5 == 2]  # spread over the sorted list
    for d in sorted(every.iterdir()):
        if d not in new:
            d.rename(src / d.name)
    args = ["--cluster", "local:2", "--partition-size", "4", "--json"]
    first = lookalike("find", str(src), *args, "--out", str(tmp_path / "run"))
    assert first.returncode == 0, first.stderr
    for d in new:
        d.rename(src / d.name)
    grown = lookalike("find", str(src), *args, "--out", str(tmp_path / "run"), "--resume")
    fresh = lookalike("find", str(src), *args, "--out", str(tmp_path / "fresh"))
    assert grown.returncode == fresh.returncode == 0, grown.stderr
    assert _fingerprinted(grown.stderr) == -(-3 * len(new) // 4)  # the new files' partitions, no other
    a, b = json.loads(grown.stdout), json.loads(fresh.stdout)
    assert groups_of(a) == groups_of(b) and len(groups_of(a)) == 16
    assert [g["members"] for g in a["groups"]] == [g["members"] for g in b["groups"]]
