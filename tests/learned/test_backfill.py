"""``lookalike embed``: an index built without the learned tier, back-filled, answers ``check
--learned`` as one built with the tier from the start; the back-fill commits in batches and a
re-run does only what is left. Real EfficientNet-Lite0, real SQLite files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lookalike.index.backfill import embed_stored
from lookalike.index.store.interface import open_store
from lookalike.learned import Embedder
from tests.learned.test_index_learned import NATURAL, _build, _check, _cli, scenes  # noqa: F401 (fixture)

pytestmark = pytest.mark.skipif(not NATURAL.is_dir(), reason="needs the public benchmark corpus beside the repo")


class Interrupted(Exception):
    pass


def test_a_back_filled_index_checks_as_if_the_tier_had_been_on_from_the_start(
    tmp_path: Path, scenes: dict[str, Path], embedder: Embedder, cache_dir: Path,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache_dir.parent))
    with_tier, later = tmp_path / "with.sqlite", tmp_path / "later.sqlite"
    _build(with_tier, scenes, embedder)
    _build(later, scenes, None)
    stored = len([k for k in scenes if not k.endswith("_right")])

    def stop_after_first_batch(done: int, total: int) -> None:
        assert total == stored
        raise Interrupted

    with pytest.raises(Interrupted):  # killed after its first batch: that batch is kept
        embed_stored(later, batch=3, on_progress=stop_after_first_batch)
    store = open_store(later)
    try:
        assert store.count_unembedded(embedder.name) == stored - 3
    finally:
        store.close()
    resumed = _cli(cache_dir, "embed", "--db", later, "--json", "--jobs", "1")
    assert resumed.returncode == 0 and json.loads(resumed.stdout) == {
        "model": embedder.name, "embedded": stored - 3, "failed": 0, "already": 3,
    }  # fmt: skip
    assert embed_stored(later).embedded == 0  # nothing left to do

    def answers(db: Path, query: Path) -> list[tuple[str, str, float, str]]:
        return [(m.file.source, m.verdict.value, round(m.score, 6), m.explanation) for m in _check(db, query, embedder)]

    for key in scenes:
        if key.endswith("_right"):
            assert answers(later, scenes[key]) == answers(with_tier, scenes[key]), key


def test_index_learned_over_an_index_built_without_the_tier_back_fills_what_it_meets(
    tmp_path: Path, scenes: dict[str, Path], embedder: Embedder, cache_dir: Path,  # noqa: F811
) -> None:  # fmt: skip
    with_tier, later = tmp_path / "with.sqlite", tmp_path / "later.sqlite"
    _build(with_tier, scenes, embedder)
    refs = scenes[next(iter(scenes))].parent
    assert _cli(cache_dir, "index", refs, "--db", later, "--jobs", "1").returncode == 0
    again = _cli(cache_dir, "index", refs, "--db", later, "--learned", "--json", "--jobs", "1")
    assert again.returncode == 0 and "added" not in {json.loads(line)["outcome"] for line in again.stdout.splitlines()}
    store = open_store(later)
    try:
        assert store.count_unembedded(embedder.name) == 0  # every file met again kept its vector
    finally:
        store.close()

    def answers(db: Path, query: Path) -> list[tuple[str, str, float]]:
        return [(m.file.source, m.verdict.value, round(m.score, 6)) for m in _check(db, query, embedder)]

    for key in (k for k in scenes if k.endswith("_right")):
        assert answers(later, scenes[key]) == answers(with_tier, scenes[key]), key
