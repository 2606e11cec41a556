"""Ids and names from clients: out-of-range ids are 4xx, names that need escaping get URLs that work,
and an id a client chose never captures another picture."""

from __future__ import annotations

import hashlib

from tests.service.conftest import Api, body, jpeg


def test_an_oversized_review_pair_id_is_a_4xx(api: Api) -> None:
    alice = api.key("alice")
    for pair in ("99999999999999999999", "-1", "0", "9223372036854775808"):
        r = api.client.post(f"/v1/review/{pair}", headers=alice, json={"decision": "duplicate"})
        assert 400 <= r.status_code < 500, (pair, r.status_code, r.text)
    r = api.client.post("/v1/review/9223372036854775807", headers=alice, json={"decision": "duplicate"})
    assert r.status_code == 404


def test_a_rendition_name_that_needs_escaping_gets_a_url_that_works(api: Api) -> None:
    alice = api.key("alice")
    assert api.upload(alice, jpeg(1), id="pic+1").status_code == 201
    r = api.upload(alice, jpeg(2), id="pic+1", rendition="web+1", on_duplicate="store")
    assert r.status_code == 201, r.text
    files = {f["rendition"]: f["url"] for f in body(r)["image"]["files"]}
    assert set(files) == {"original", "web+1"}
    assert api.client.get(files["web+1"], headers=alice).content == jpeg(2)
    assert api.client.get(files["original"], headers=alice).content == jpeg(1)
    assert api.client.get(r.headers["location"], headers=alice).json()["id"] == "pic+1"


def test_an_id_equal_to_another_pictures_automatic_id_never_joins_them(api: Api) -> None:
    alice = api.key("alice")
    automatic = hashlib.sha256(jpeg(4)).hexdigest()[:16]  # the id jpeg(4) gets when sent without one
    first = api.upload(alice, jpeg(3), id=automatic)
    assert first.status_code == 201
    second = api.upload(alice, jpeg(4))
    assert second.status_code == 201, second.text
    assert body(second)["image"]["id"] != automatic
    assert len(body(second)["image"]["files"]) == 1
    held = api.client.get(f"/v1/images/{automatic}", headers=alice).json()
    assert [f["sha256"] for f in held["files"]] == [hashlib.sha256(jpeg(3)).hexdigest()]
    # the other way round: naming a stored picture's automatic id adds to it only as another rendition
    taken = body(second)["image"]["id"]
    again = api.upload(alice, jpeg(5), id=taken)
    assert again.status_code == 409 and body(again)["error"]["verdict"] == "rendition_exists"


def test_review_pair_ids_are_the_tenants_own_and_say_nothing_of_others(api: Api) -> None:
    """Pair ids are not the shared row sequence: a tenant cannot count other tenants' pairs from
    them, cannot decide another tenant's pair by its id, and keeps its ids when the server restarts."""
    from tests.service.conftest import edited, make_api

    alice, bob = api.key("alice"), api.key("bob")
    for seed in (1, 2, 3):
        api.upload(alice, jpeg(seed), id=f"a{seed}")
        assert body(api.upload(alice, edited(seed, "q60"), id=f"a{seed}-q60", on_duplicate="review"))["review"] == 1
    api.upload(bob, jpeg(4), id="b4")
    assert body(api.upload(bob, edited(4, "q60"), id="b4-q60", on_duplicate="review"))["review"] == 1
    alice_ids = sorted(p["pair_id"] for p in body(api.client.get("/v1/review", headers=alice))["pairs"])
    (bob_pair,) = body(api.client.get("/v1/review", headers=bob))["pairs"]
    # rows 1-4 in the database; what a tenant sees is neither small nor in sequence
    assert min(*alice_ids, bob_pair["pair_id"]) > 1_000_000
    assert alice_ids[1:] != [i + 1 for i in alice_ids[:-1]]
    r = api.client.post(f"/v1/review/{bob_pair['pair_id']}", headers=alice, json={"decision": "duplicate"})
    assert r.status_code == 404 and str(bob_pair["pair_id"]) in body(r)["error"]["message"]
    decided = api.client.post(f"/v1/review/{bob_pair['pair_id']}", headers=bob, json={"decision": "not_duplicate"})
    assert decided.status_code == 200 and body(decided)["pair_id"] == bob_pair["pair_id"]

    for again in make_api(api.settings):  # another server process on the same database and storage
        pairs = body(again.client.get("/v1/review", headers=alice))["pairs"]
        assert sorted(p["pair_id"] for p in pairs) == alice_ids
