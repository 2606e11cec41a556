"""``on_duplicate=replace`` (a better upload takes the stored copy's place, keeping its id, other
renditions and review history; the old file stays until the new row commits) and a person's
decisions honoured by the look-alikes of a stored image (``/similar``, which the gallery shows),
on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from lookalike.errors import StoreError
from tests.service.conftest import Api, body, edited, jpeg


def _file(api: Api, headers: dict[str, str], image_id: str, rendition: str = "original") -> bytes:
    r = api.client.get(f"/v1/images/{image_id}/file?rendition={rendition}", headers=headers)
    assert r.status_code == 200, r.text
    return r.content


def test_a_better_upload_replaces_the_stored_copy_and_keeps_its_id_renditions_and_pairs(api: Api) -> None:
    alice = api.key("alice")
    small = edited(1, "smaller")  # the copy stored first: 320x240
    assert api.upload(alice, small, id="beach").status_code == 201
    assert api.upload(alice, jpeg(1, 160, 120), id="beach", rendition="thumb", on_duplicate="store").status_code == 201
    kept = api.upload(alice, edited(1, "q60"), id="beach-q60", on_duplicate="review")
    (pair,) = body(api.client.get("/v1/review", headers=alice))["pairs"]
    api.client.post(f"/v1/review/{pair['pair_id']}", headers=alice, json={"decision": "not_duplicate"})
    assert kept.status_code == 201
    before = body(api.client.get("/v1/images/beach", headers=alice))
    old_keys = api.stored_keys()

    full = jpeg(1)  # the full-size original (480x360) arrives later
    refused = api.upload(alice, full, on_duplicate="reject")
    assert refused.status_code == 409 and body(refused)["error"]["id"] in {"beach", "beach-q60"}
    r = api.upload(alice, full, on_duplicate="replace")

    assert r.status_code == 201, r.text
    done = body(r)
    replaced_id = done["image"]["id"]
    assert replaced_id == body(refused)["error"]["id"] and done["replaced"] == "original"
    assert r.headers["location"] == f"/v1/images/{replaced_id}"
    if replaced_id == "beach":
        after = done["image"]
        assert after["created_at"] == before["created_at"]
        files = {f["rendition"]: f for f in after["files"]}
        assert set(files) == {"original", "thumb"} and (files["original"]["width"], files["original"]["height"]) == (
            480,
            360,
        )
        assert files["thumb"] == next(f for f in before["files"] if f["rendition"] == "thumb")
    assert _file(api, alice, replaced_id) == full
    # the old file is gone from storage, the new one is there, and every row has its file
    assert api.stored_keys() == api.row_sources() and len(api.stored_keys()) == len(old_keys)
    # the review history stays: the decided pair is still decided, and nothing new is pending
    decided = body(api.client.get("/v1/images/beach/similar", headers=alice))
    assert {m["id"]: m["verdict"] for m in decided}.get("beach-q60") == "different"
    assert body(api.client.get("/v1/review", headers=alice))["pairs"] == []
    again = api.upload(alice, full, on_duplicate="replace")
    assert again.status_code == 409 and body(again)["error"]["verdict"] == "identical"


def test_replace_with_an_id_replaces_that_rendition(api: Api) -> None:
    alice = api.key("alice")
    assert api.upload(alice, jpeg(1), id="beach").status_code == 201
    assert api.upload(alice, jpeg(2), id="forest").status_code == 201
    # a new picture put in place of forest's original: the caller named it
    r = api.upload(alice, jpeg(3), id="forest", rendition="original", on_duplicate="replace")
    assert r.status_code == 201 and body(r)["replaced"] == "original"
    assert _file(api, alice, "forest") == jpeg(3)
    taken = api.upload(alice, jpeg(4), id="forest", rendition="original")
    assert taken.status_code == 409  # without replace, a taken rendition is still refused
    unique = api.upload(alice, jpeg(5), on_duplicate="replace")  # no copy stored: simply added
    assert unique.status_code == 201 and body(unique)["replaced"] is None
    assert api.stored_keys() == api.row_sources() and len(api.stored_keys()) == 3


def test_the_old_file_stays_when_the_replacement_does_not_commit(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    alice = api.key("alice")
    small = edited(1, "smaller")
    assert api.upload(alice, small, id="beach").status_code == 201
    keys = api.stored_keys()

    def fail(*args: Any, **kwargs: Any) -> Any:
        raise StoreError("the database went away")

    store: Any = api.client.app.state.service.index._store  # type: ignore[attr-defined]
    monkeypatch.setattr(store, "replace_file", fail)
    r = api.upload(alice, jpeg(1), on_duplicate="replace")
    assert r.status_code == 503
    monkeypatch.undo()
    assert api.stored_keys() == keys == api.row_sources()
    assert hashlib.sha256(_file(api, alice, "beach")).digest() == hashlib.sha256(small).digest()


def test_the_look_alikes_of_a_stored_image_honour_a_persons_decisions(api: Api) -> None:
    alice = api.key("alice")
    api.upload(alice, jpeg(1), id="beach")
    api.upload(alice, edited(1, "q60"), id="beach-q60", on_duplicate="review")
    api.upload(alice, edited(1, "smaller"), id="beach-small", on_duplicate="review")
    api.upload(alice, jpeg(2), id="forest")

    def similar(image_id: str) -> dict[str, str]:
        return {m["id"]: m["verdict"] for m in body(api.client.get(f"/v1/images/{image_id}/similar", headers=alice))}

    assert similar("beach")["beach-q60"] == "near_duplicate" and similar("beach-q60")["beach"] == "near_duplicate"
    pairs = {
        frozenset((p["a"], p["b"])): p["pair_id"] for p in body(api.client.get("/v1/review", headers=alice))["pairs"]
    }
    decide = api.client.post(
        f"/v1/review/{pairs[frozenset(('beach', 'beach-q60'))]}", headers=alice, json={"decision": "not_duplicate"}
    )
    assert decide.status_code == 200

    # both ways round, /similar (and the gallery, which lists it) now agrees with the person
    assert similar("beach")["beach-q60"] == "different" and similar("beach-q60")["beach"] == "different"
    shown = next(m for m in body(api.client.get("/v1/images/beach/similar", headers=alice)) if m["id"] == "beach-q60")
    assert shown["evidence"] == "a person marked this as not a duplicate of beach" and shown["score"] < 0.30
    assert similar("beach")["beach-small"] == "near_duplicate"  # an undecided pair is as the scores say
    # the review page lists what is still pending, and a check from the copy honours the decision too
    left = body(api.client.get("/v1/review", headers=alice))["pairs"]
    pending = {frozenset((p["a"], p["b"])) for p in left}
    assert frozenset(("beach", "beach-q60")) not in pending and frozenset(("beach", "beach-small")) in pending
    checked = body(api.check(alice, jpeg(1)))
    assert {m["id"]: m["verdict"] for m in checked["matches"]}["beach-q60"] == "different"
