"""The learned tier's in-memory index follows the store like the other in-memory indexes: rebuilt on
open, brought up to date from the change log, removals skipped, on a real SQLite file."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.fingerprints import analyse
from lookalike.index.search.memory import Mirror
from lookalike.index.search.semantic_mirror import SemanticMirror
from lookalike.index.store.records import NewFile
from lookalike.index.store.sqlite import SQLiteStore
from tests.index.conftest import jpeg, picture


def _unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.normal(size=(n, 64))
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float16)


def test_the_semantic_mirror_follows_additions_and_removals(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    vectors = _unit(rng, 150)
    store = SQLiteStore(tmp_path / "index.sqlite")
    fps = [analyse(jpeg(picture(s, 96, 72))).fingerprint for s in range(150)]

    def add(rows: range) -> list[int]:
        items = [
            NewFile(fps[i], "alice", f"src-{i}", image_id=f"img-{i}", embedding=("m", vectors[i].tobytes()))
            for i in rows
        ]
        return [f.pk for f, _ in store.add_files(items)]

    first = add(range(100))
    log = Mirror(store)
    semantic = SemanticMirror(store, "m")
    log.followers.append(semantic.follow)
    everyone = lambda pks: pks >= 0  # noqa: E731
    assert len(semantic) == 100 and SemanticMirror(store, "other-model").nearest(vectors[0], 3, everyone) == []
    later = add(range(100, 150))  # 50 more: past an eighth of the built index, so it is rebuilt
    store.remove_image("alice", "img-3")
    log.refresh()
    assert len(semantic) == 149
    for i, pk in ((120, later[20]), (5, first[5])):
        (best, cosine), *_ = semantic.nearest(vectors[i], 3, everyone)
        assert best == pk and cosine > 0.99
    assert first[3] not in [pk for pk, _ in semantic.nearest(vectors[3], 10, everyone)]
    kept = semantic.nearest(vectors[7], 5, lambda pks: pks % 2 == 0)
    assert len(kept) == 5 and all(pk % 2 == 0 for pk, _ in kept)
    reopened = SemanticMirror(store, "m")
    assert len(reopened) == 149 and reopened.nearest(vectors[120], 1, everyone)[0][0] == later[20]
    store.close()
