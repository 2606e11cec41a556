"""`index`, `check` and `find` with the learned tier, on the real EfficientNet-Lite0 and a real SQLite file.

The burst-like pairs are two halves of one landscape wallpaper from the public benchmark's corpus:
the same scene with the camera panned, no pixel in common, so neither the hashes nor the local
features tie them, but the embedding does. They are ``similar`` with the tier, never a duplicate.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image, ImageFilter

from lookalike.fingerprints import analyse
from lookalike.index import CheckMatch, Index
from lookalike.index.store.interface import open_store
from lookalike.learned import Embedder
from lookalike.match import Verdict
from tests.images import CORPUS
from tests.index.conftest import jpeg

NATURAL = CORPUS / "natural"
#: wallpapers whose two halves the embedding ties (cosine 0.85-0.88) and the cascade does not
BURSTS = ("PastelHills", "OneStandsOut")
OTHERS = ("Autumn", "Kite", "MilkyWay")
LIBRARY = Path(__file__).resolve().parents[2] / "examples" / "library"

pytestmark = pytest.mark.skipif(not NATURAL.is_dir(), reason="needs the public benchmark corpus beside the repo")


def _half(name: str, right: bool) -> bytes:
    im = Image.open(sorted((NATURAL / name).iterdir())[0]).convert("RGB")
    im.thumbnail((960, 960))
    w, h = im.size
    return jpeg(im.crop((w // 2, 0, w, h) if right else (0, 0, w // 2, h)), 88)


@pytest.fixture
def scenes(tmp_path: Path) -> dict[str, Path]:
    """Left halves to index (``NAME``), right halves to check (``NAME_right``), and a library photo
    with its heavy edit (cropped to 60%, blurred, re-encoded at quality 30)."""
    out: dict[str, Path] = {}
    for name in (*BURSTS, *OTHERS):
        for right in (False, True):
            key = f"{name}_right" if right else name
            out[key] = tmp_path / ("queries" if right else "refs") / f"{key}.jpg"
            out[key].parent.mkdir(exist_ok=True)
            out[key].write_bytes(_half(name, right))
    photo = Image.open(LIBRARY / "chelsea.jpg").convert("RGB")
    out["chelsea"] = tmp_path / "refs" / "chelsea.jpg"
    out["chelsea"].write_bytes((LIBRARY / "chelsea.jpg").read_bytes())
    w, h = photo.size
    edit = photo.crop((w // 5, h // 5, w, h)).resize((w // 2, h // 2)).filter(ImageFilter.GaussianBlur(2))
    out["chelsea_right"] = tmp_path / "queries" / "chelsea_right.jpg"
    out["chelsea_right"].write_bytes(jpeg(edit, 30))
    return out


def _build(db: Path, scenes: dict[str, Path], embedder: Embedder | None) -> None:
    with Index(db, embedder=embedder) as index:
        refs = [p for k, p in scenes.items() if not k.endswith("_right")]
        index.add_analyses([(analyse(p.read_bytes(), local=True), str(p)) for p in refs])


def _check(db: Path, query: Path, embedder: Embedder | None) -> list[CheckMatch]:
    with Index(db, embedder=embedder) as index:
        return list(index.check_analysis(analyse(query.read_bytes())).matches)


def _of(matches: list[CheckMatch], ref: Path) -> CheckMatch | None:
    return next((m for m in matches if m.file.source == str(ref)), None)


def test_a_burst_shot_is_similar_with_the_learned_tier_and_never_a_duplicate(
    tmp_path: Path, scenes: dict[str, Path], embedder: Embedder
) -> None:
    db = tmp_path / "index.sqlite"
    _build(db, scenes, embedder)
    for name in BURSTS:
        plain = _of(_check(db, scenes[f"{name}_right"], None), scenes[name])
        assert plain is None or plain.verdict is Verdict.DIFFERENT  # the cascade alone: not even similar
        learned = _check(db, scenes[f"{name}_right"], embedder)
        m = _of(learned, scenes[name])
        assert m is not None and m.verdict is Verdict.SIMILAR, learned
        assert "learned embedding cosine" in m.explanation and "no hash or local-feature agreement" in m.explanation
        assert m.learned is not None and m.learned.cosine >= 0.8
        assert not any(x.verdict.is_duplicate for x in learned)
    # the heavy edit: still found by the cascade's own evidence, and the tier makes no duplicate on its own
    for query in scenes.values():
        for m in _check(db, query, embedder):
            if m.verdict.is_duplicate and m.learned is not None:
                assert m.learned.cascade_verdict in (Verdict.SIMILAR, *(v for v in Verdict if v.is_duplicate))
    edit = _check(db, scenes["chelsea_right"], embedder)
    assert edit and edit[0].file.source == str(scenes["chelsea"]) and edit[0].verdict is not Verdict.DIFFERENT


def test_embeddings_are_stored_with_the_fingerprints_and_survive_reopening(
    tmp_path: Path, scenes: dict[str, Path], embedder: Embedder
) -> None:
    db = tmp_path / "index.sqlite"
    _build(db, scenes, embedder)
    store = open_store(db)
    try:
        rows = [r for batch in store.embedding_rows(embedder.name) for r in batch]
    finally:
        store.close()
    assert len(rows) == len(BURSTS) + len(OTHERS) + 1 and {len(v) for _, v in rows} == {embedder.bytes_per_image}
    # a new process (a new Index) rebuilds its in-memory index from the store, and a second one
    # opened beforehand sees a file added since through the change log
    with Index(db, embedder=embedder) as early:
        with Index(db, embedder=embedder) as writer:
            writer.add_analyses([(analyse(_half("Kite", True)), "kite-right")])
        m = _of(
            list(early.check_analysis(analyse(scenes[f"{BURSTS[0]}_right"].read_bytes())).matches), scenes[BURSTS[0]]
        )
        assert m is not None and m.verdict is Verdict.SIMILAR
        found = early.check_analysis(analyse(_half("Kite", True))).matches
        assert found and found[0].file.source == "kite-right" and found[0].verdict is Verdict.IDENTICAL


def test_an_index_built_without_the_tier_stores_no_embeddings_and_loads_no_onnxruntime(
    tmp_path: Path, scenes: dict[str, Path]
) -> None:
    db = tmp_path / "plain.sqlite"
    code = (
        "import sys; from lookalike.cli.main import run; "
        f"sys.argv = ['lookalike', 'index', {str(scenes[BURSTS[0]].parent)!r}, '--db', {str(db)!r}, '--jobs', '1']\n"
        "try:\n    run()\nexcept SystemExit as e:\n    assert not e.code, e.code\n"
        "assert not {'onnxruntime', 'faiss', 'onnx'} & set(sys.modules), 'the learned extra was imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    store = open_store(db)
    try:
        assert store.stats().files == len(BURSTS) + len(OTHERS) + 1
        assert list(store.embedding_rows("efficientnet-lite0")) == []
    finally:
        store.close()


def _cli(cache_dir: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_dir.parent), "PYTHONWARNINGS": "error"}
    run = subprocess.run([sys.executable, "-m", "lookalike", *map(str, args)], capture_output=True, text=True, env=env)
    assert "Traceback" not in run.stderr, run.stderr
    return run


def test_index_and_check_with_learned_on_the_command_line(
    tmp_path: Path, scenes: dict[str, Path], cache_dir: Path
) -> None:
    db = tmp_path / "cli.sqlite"
    name = BURSTS[0]
    # two jobs: each file is embedded (and its check features computed) in the worker that decodes it
    assert _cli(cache_dir, "index", scenes[name].parent, "--db", db, "--learned", "--jobs", "2").returncode == 0
    checked = _cli(cache_dir, "check", scenes[f"{name}_right"], "--db", db, "--learned", "--json", "--jobs", "1")
    answer = json.loads(checked.stdout)
    assert answer["verdict"] == "similar" and answer["matches"][0]["path"] == str(scenes[name])
    assert "learned embedding cosine" in answer["matches"][0]["evidence"]
    plain = json.loads(_cli(cache_dir, "check", scenes[f"{name}_right"], "--db", db, "--json").stdout)
    assert all(m["verdict"] == "different" for m in plain["matches"])  # the same index, the cascade alone
    # the settings file's key turns the tier on as --learned does (tests/cli/test_settings_everywhere.py:
    # which of the file and the command's own options wins)
    on = tmp_path / "settings.json"
    on.write_text(json.dumps({"format": "lookalike-settings/1", "learned": True}))
    by_file = _cli(cache_dir, "check", scenes[f"{name}_right"], "--db", db, "--json", "--settings", on)
    assert json.loads(by_file.stdout) == answer
    # indexing the other shot with the tier puts the pair on the review list, said to be semantic
    added = _cli(cache_dir, "index", scenes[f"{name}_right"], "--db", db, "--learned", "--json", "--jobs", "1")
    assert json.loads(added.stdout)["outcome"] == "added"
    pairs = [json.loads(line) for line in _cli(cache_dir, "review", "--db", db, "--json").stdout.splitlines()]
    assert [p["verdict"] for p in pairs] == ["similar"]
    assert "no hash or local-feature agreement" in pairs[0]["evidence"]


def test_find_similar_lists_burst_shots_apart_and_never_acts_on_them(
    tmp_path: Path, scenes: dict[str, Path], cache_dir: Path
) -> None:
    folder = tmp_path / "all"
    folder.mkdir()
    late = f"{BURSTS[-1]}_right"
    for key in (*BURSTS, *(f"{b}_right" for b in BURSTS), *OTHERS):
        if key != late:
            (folder / scenes[key].name).write_bytes(scenes[key].read_bytes())
    db = tmp_path / "find.db"
    plain = json.loads(_cli(cache_dir, "find", folder, "--db", db, "--json", "--jobs", "1").stdout)
    assert "similar" not in plain and plain["groups"] == []
    # the files read by that run are embedded now from the cache's paths; the late one where it is read
    (folder / scenes[late].name).write_bytes(scenes[late].read_bytes())
    run = _cli(
        cache_dir, "find", folder, "--db", db, "--similar", "--json", "--jobs", "1", "--action", "delete", "--yes"
    )
    result = json.loads(run.stdout)
    pairs = {frozenset((Path(p["a"]).stem, Path(p["b"]).stem)) for p in result["similar"]}
    assert {frozenset((b, f"{b}_right")) for b in BURSTS} <= pairs
    assert all(p["verdict"] == "similar" and p["score"] < 0.3 for p in result["similar"])
    assert result["groups"] == [] and result["plan"]["steps"] == []  # listed, never grouped or deleted
    assert len(list(folder.iterdir())) == 2 * len(BURSTS) + len(OTHERS)


@pytest.mark.parametrize(
    "command",
    [
        ["index", "--learned"], ["check", "--learned"], ["find", "--similar"],
        ["find", "--similar", "--cluster", "local:1", "--out", "RUN"],
        ["find", "--cluster", "local:1", "--out", "RUN", "--settings", "ON"],  # the settings file's key
    ],
)  # fmt: skip
def test_without_the_extra_the_learned_options_are_one_clear_error(tmp_path: Path, command: list[str]) -> None:
    picture = tmp_path / "a.jpg"
    picture.write_bytes((LIBRARY / "coffee.jpg").read_bytes())
    db = tmp_path / ("find.db" if command[0] == "find" else "index.sqlite")
    if command[0] == "check":
        subprocess.run([sys.executable, "-m", "lookalike", "index", str(picture), "--db", str(db)], check=True,
                       capture_output=True)  # fmt: skip
    on = tmp_path / "on.json"
    on.write_text(json.dumps({"format": "lookalike-settings/1", "learned": True}))
    named = {"RUN": str(tmp_path / "run"), "ON": str(on)}
    args = [command[0], str(picture), "--db", str(db), *(named.get(a, a) for a in command[1:])]
    code = (
        "import sys; sys.modules['onnxruntime'] = None; from lookalike.cli.main import run; "
        f"sys.argv = ['lookalike', *{args!r}]; run()"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode != 0
    assert "lookalike[learned]" in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1, run.stderr  # one line: no cluster was started for it
