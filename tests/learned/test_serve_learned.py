"""``serve --learned``: the service embeds in its decoding processes, stores the vector with the
picture, checks as ``check --learned`` does within the tenant's own pictures, and lists semantic
neighbours apart on ``/similar``; on a real SQLite file and a real PostgreSQL database.

The pictures are those of ``test_index_learned``: halves of one landscape (burst-like shots the
embedding ties and the cascade does not) and unrelated landscapes.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from lookalike.config import LearnedSettings
from lookalike.fingerprints import analyse
from lookalike.index import Index
from lookalike.index.store.interface import open_store
from lookalike.learned import Embedder
from lookalike.service import ServiceSettings
from tests.learned.test_index_learned import BURSTS, LIBRARY, NATURAL, OTHERS, _half
from tests.service.conftest import Api, db_url, make_api  # noqa: F401 (db_url: SQLite and PostgreSQL)

pytestmark = pytest.mark.skipif(not NATURAL.is_dir(), reason="needs the public benchmark corpus beside the repo")


@pytest.fixture
def learned_api(db_url: str, tmp_path: Path, cache_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Api]:  # noqa: F811
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir.parent))  # the decoding processes inherit it
    tier = LearnedSettings(on=True)
    yield from make_api(ServiceSettings(db=db_url, storage=tmp_path / "files", learned=tier, picture_slots=1))


def test_serve_learned_checks_like_check_learned_within_the_tenant_and_lists_neighbours_apart(
    learned_api: Api, embedder: Embedder
) -> None:
    api, name = learned_api, BURSTS[0]
    alice, bob = api.key("alice"), api.key("bob")
    assert api.client.get("/v1/settings", headers=alice).json()["learned"] == embedder.name
    for key in (name, *OTHERS):
        assert api.upload(alice, _half(key, False), id=key).status_code == 201
    # bob holds the very picture alice checks: nearer than anything of hers, and never hers to see
    assert api.upload(bob, _half(name, True), id="bobs").status_code == 201
    store = open_store(api.settings.db)
    try:
        pks = [f.pk for i in (name, *OTHERS) for f in store.image("alice", i).files]
        assert len(store.embeddings(embedder.name, pks)) == len(pks)  # stored with each picture
    finally:
        store.close()

    answer = api.check(alice, _half(name, True)).json()
    assert answer["verdict"] == "similar"
    best = answer["matches"][0]
    assert best["id"] == name and best["semantic"] and "no hash or local-feature agreement" in best["evidence"]
    assert all(m["id"] != "bobs" for m in answer["matches"])
    # what `check --learned` says of the same picture against the same database
    with Index(api.settings.db, embedder=embedder) as index:
        direct = index.check_analysis(analyse(_half(name, True)), scope="alice").matches
    assert [(m["id"], m["verdict"], m["score"]) for m in answer["matches"]] == [
        (m.image_id, m.verdict.value, round(m.score, 4)) for m in direct
    ]

    # stored as a picture of its own (similar is no copy), its neighbour is listed apart, marked semantic
    assert api.upload(alice, _half(name, True), id="right").status_code == 201
    similar = api.client.get("/v1/images/right/similar", headers=alice).json()
    semantic = [m for m in similar if m["semantic"]]
    assert [m["id"] for m in semantic][:1] == [name] and all(m["verdict"] == "similar" for m in semantic)
    assert similar[-len(semantic) :] == semantic and all(m["score"] < 0.3 for m in semantic)


def test_without_the_extra_serve_learned_and_the_settings_key_are_one_clear_error(tmp_path: Path) -> None:
    key_file = tmp_path / "settings.json"
    key_file.write_text('{"format": "lookalike-settings/1", "learned": true}')
    picture = tmp_path / "a.jpg"
    picture.write_bytes((LIBRARY / "coffee.jpg").read_bytes())
    db = str(tmp_path / "s.sqlite")
    serve = ["serve", "--db", db, "--storage", str(tmp_path / "files")]
    for args in ([*serve, "--learned"], [*serve, "--settings", str(key_file)],
                 ["index", str(picture), "--db", db, "--settings", str(key_file)]):  # fmt: skip
        code = (
            "import sys; sys.modules['onnxruntime'] = None; from lookalike.cli.main import run; "
            f"sys.argv = ['lookalike', *{args!r}]; run()"
        )
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert run.returncode != 0 and "Traceback" not in run.stderr
        assert "lookalike[learned]" in run.stderr, run.stderr
