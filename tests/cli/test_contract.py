"""One contract across front ends: `index` says per file what `check` says, one pair has one score
from `compare`, `check` and `find`, and `check --json` has the shape of the service's `/v1/check`."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import pytest

from lookalike import Index, compare
from lookalike.errors import error_body
from tests.cli.conftest import Run
from tests.images import EXAMPLES

LIBRARY = EXAMPLES / "library"
UPLOADS = EXAMPLES / "uploads"
#: (original, edited copy) among the sample pictures
PAIRS = [
    ("chelsea.jpg", "chelsea_mirrored.jpg"),
    ("astronaut.jpg", "astronaut_caption.jpg"),
    ("coffee.jpg", "coffee_small.webp"),
    ("motorcycle.jpg", "motorcycle_gray.jpg"),
    ("rocket.jpg", "rocket_cropped.png"),
]


def lines(result: Any) -> list[dict[str, Any]]:
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_index_reports_per_file_what_check_says(cli: Run, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    assert cli("index", LIBRARY, "--db", db, "--jobs", "1").returncode == 0
    checked = {Path(x["path"]).name: x for x in lines(cli("check", UPLOADS, "--db", db, "--json", "--jobs", "1"))}

    indexed = cli("index", UPLOADS, "--db", db, "--jobs", "1")
    again = {Path(x["path"]).name: x for x in lines(cli("index", UPLOADS, "--db", db, "--json", "--jobs", "1"))}

    assert indexed.returncode == 0, indexed.stderr
    copies = [name for name, c in checked.items() if c["verdict"] in ("near_duplicate", "same_pixels")]
    assert len(copies) == 6  # every edited upload; only coins_new.jpg is new
    assert f"added 1, copies left out {len(copies)}, already present 0, failed 0" in indexed.stdout
    for name in copies:
        best = checked[name]["matches"][0]
        line = next(x for x in indexed.stdout.splitlines() if x.startswith(str(UPLOADS / name)))
        assert f"{checked[name]['verdict']} of {best['id']} (score {best['score']:.3f}), not added" in line
        # the second run (JSON) says the same, and still stores no copy
        assert (again[name]["outcome"], again[name]["verdict"]) == ("rejected", checked[name]["verdict"])
        assert again[name]["matches"][0] == best
    assert again["coins_new.jpg"]["outcome"] == "present"


def test_index_can_store_copies_or_list_them_for_review(cli: Run, tmp_path: Path) -> None:
    for policy, images, pending in (("store", 7, 0), ("review", 7, 6)):
        db = tmp_path / f"{policy}.sqlite"
        assert cli("index", LIBRARY, "--db", db, "--jobs", "1").returncode == 0
        done = lines(cli("index", UPLOADS, "--db", db, "--json", "--on-duplicate", policy, "--jobs", "1"))
        assert [d["outcome"] for d in done] == ["added"] * 7
        stats = json.loads(cli("stats", "--db", db, "--json").stdout)
        assert (stats["images"] - 5, stats["review_pending"] >= pending) == (images, True)
        if policy == "review":  # every stored copy is on the list with what it copies
            listed = {(p["a"], p["b"]) for p in lines(cli("review", "--db", db, "--json"))}
            copies = [(d["matches"][0]["id"], d["id"]) for d in done if d["verdict"] == "near_duplicate"]
            assert len(copies) >= 5 and set(copies) <= listed


def test_one_pair_has_one_score_from_compare_check_and_find(tmp_path: Path) -> None:
    from lookalike import find_duplicates

    with Index(tmp_path / "index.sqlite") as index:
        for original, _ in PAIRS:
            index.add(LIBRARY / original)
        for original, copy in PAIRS:
            by_compare = compare(LIBRARY / original, UPLOADS / copy)
            by_check = index.check(UPLOADS / copy).matches[0]
            assert by_check.file.source.endswith(original)
            assert (round(by_compare.score, 4), by_compare.verdict) == (round(by_check.score, 4), by_check.verdict)
            assert by_compare.explanation == by_check.explanation
    folder = tmp_path / "pair"
    folder.mkdir()
    for name in PAIRS[0]:
        (folder / name).write_bytes(((LIBRARY if name == PAIRS[0][0] else UPLOADS) / name).read_bytes())
    (pair,) = find_duplicates(folder).pairs
    assert round(pair.score, 4) == round(compare(LIBRARY / PAIRS[0][0], UPLOADS / PAIRS[0][1]).score, 4)


def test_check_json_has_the_shape_of_the_service_check(cli: Run, tmp_path: Path) -> None:
    db = tmp_path / "index.sqlite"
    assert cli("index", LIBRARY, "--db", db, "--jobs", "1").returncode == 0
    (line,) = lines(cli("check", UPLOADS / "chelsea_mirrored.jpg", "--db", db, "--json", "--jobs", "1"))
    assert set(line) == {"path", "verdict", "matches"}
    assert set(line["matches"][0]) == {"id", "rendition", "score", "verdict", "evidence", "source", "path", "semantic"}
    assert line["matches"][0]["rendition"] == "original"
    missing = lines(cli("check", tmp_path / "gone.jpg", "--db", db, "--json"))
    assert missing == [
        {"path": str(tmp_path / "gone.jpg"), **error_body("fetch_failed", missing[0]["error"]["message"])}
    ]


def test_the_service_check_body_has_the_keys_of_a_check_json_line(tmp_path: Path) -> None:
    pytest.importorskip("fastapi")
    from lookalike.index.store.interface import open_store
    from lookalike.index.store.keys import create_api_key
    from lookalike.service import ServiceSettings, create_app

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
        from fastapi.testclient import TestClient

    settings = ServiceSettings(db=str(tmp_path / "service.sqlite"), storage=tmp_path / "files")
    with TestClient(create_app(settings)) as client:
        store = open_store(settings.db)
        key, _ = create_api_key(store, "alice")
        store.close()
        auth = {"Authorization": f"Bearer {key}"}
        stored = client.post(
            "/v1/images", headers=auth, files={"file": ("c.jpg", (LIBRARY / "chelsea.jpg").read_bytes())}
        )
        assert stored.status_code == 201
        copy = (UPLOADS / "chelsea_mirrored.jpg").read_bytes()
        body = client.post("/v1/check", headers=auth, files={"file": ("m.jpg", copy)}).json()
    with Index(settings.db) as index:
        cli_line = index.check(UPLOADS / "chelsea_mirrored.jpg", scope="alice").to_dict()
    assert set(body) == set(cli_line)
    assert set(body["matches"][0]) == set(cli_line["matches"][0])
