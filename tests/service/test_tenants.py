"""Keys and tenants: no key, a wrong or revoked key get 401; tenant B learns nothing about
tenant A's images through any endpoint (404 exactly like a missing id, never 403); rate limits."""

from __future__ import annotations

import hashlib
import time
from dataclasses import replace
from pathlib import Path

from lookalike.fingerprints import fingerprint_bytes
from lookalike.index.store.interface import open_store
from lookalike.service import ServiceSettings
from lookalike.service.keycache import KEY_TTL_S
from tests.service.conftest import Api, body, edited, jpeg, make_api


def test_requests_without_a_valid_key_get_401(api: Api) -> None:
    alice = api.key("alice")
    api.upload(alice, jpeg(1), id="beach")
    calls = [
        ("GET", "/v1/images", {}), ("GET", "/v1/images/beach", {}), ("GET", "/v1/images/beach/file", {}),
        ("DELETE", "/v1/images/beach", {}), ("GET", "/v1/images/beach/similar", {}), ("GET", "/v1/review", {}),
        ("POST", "/v1/check/hash", {"json": {"sha256": "00" * 32}}),
        ("POST", "/v1/images/from-url", {"json": {"url": "https://example.com/a.jpg"}}),
        ("POST", "/v1/review/1", {"json": {"decision": "duplicate"}}),
        ("POST", "/v1/check", {"files": {"file": ("a.jpg", jpeg(1))}}),
        ("POST", "/v1/images", {"files": {"file": ("a.jpg", jpeg(3))}}),
    ]  # fmt: skip
    for headers in ({}, {"Authorization": "Bearer lk_0000_wrong"}, {"Authorization": "Basic abc"}):
        for method, path, kwargs in calls:
            r = api.client.request(method, path, headers=headers, **kwargs)
            assert r.status_code == 401, (method, path, headers, r.text)
            assert body(r)["error"]["code"] == "unauthorized" and r.headers["www-authenticate"] == "Bearer"
    assert api.client.get("/v1/images/beach", headers=alice).status_code == 200  # nothing was deleted


def test_a_revoked_key_stops_working_within_a_second(api: Api) -> None:
    alice = api.key("alice")
    assert api.client.get("/v1/images", headers=alice).status_code == 200
    store = open_store(api.settings.db)
    try:
        (key,) = store.api_keys("alice")
        store.revoke_api_key(key.key_id)
    finally:
        store.close()
    time.sleep(KEY_TTL_S)  # workers take a key they checked on trust for this long
    assert api.client.get("/v1/images", headers=alice).status_code == 401


def test_tenant_b_learns_nothing_of_tenant_a(api: Api) -> None:
    alice, bob = api.key("alice"), api.key("bob")
    data = jpeg(1)
    api.upload(alice, data, id="beach")
    kept = api.upload(alice, edited(1, "q60"), id="beach-q60", on_duplicate="review")
    assert body(kept)["review"] == 1
    (pair,) = body(api.client.get("/v1/review", headers=alice))["pairs"]

    def same_as_missing(method: str, path: str, missing_path: str, **kwargs: object) -> None:
        r = api.client.request(method, path, headers=bob, **kwargs)  # type: ignore[arg-type]
        m = api.client.request(method, missing_path, headers=bob, **kwargs)  # type: ignore[arg-type]
        assert r.status_code == m.status_code == 404, (path, r.text)
        assert body(r)["error"]["code"] == "not_found"
        # the same answer, word for word, as for an id nobody has
        assert r.text.replace("beach", "X").replace(str(pair["pair_id"]), "N") == m.text.replace(
            "nothing", "X"
        ).replace("999999", "N")

    same_as_missing("GET", "/v1/images/beach", "/v1/images/nothing")
    same_as_missing("GET", "/v1/images/beach/file", "/v1/images/nothing/file")
    same_as_missing("GET", "/v1/images/beach/file?rendition=original", "/v1/images/nothing/file?rendition=original")
    same_as_missing("GET", "/v1/images/beach/similar", "/v1/images/nothing/similar")
    same_as_missing("DELETE", "/v1/images/beach", "/v1/images/nothing")
    same_as_missing("POST", f"/v1/review/{pair['pair_id']}", "/v1/review/999999", json={"decision": "duplicate"})
    assert body(api.client.get("/v1/images", headers=bob)) == {"images": [], "next": None}
    assert body(api.client.get("/v1/review", headers=bob))["pairs"] == []

    # checks look in bob's images only: alice's bytes and hashes are unknown to him
    assert body(api.check(bob, data)) == {"verdict": "unique", "matches": []}
    assert body(api.check(bob, edited(1, "mirrored"))) == {"verdict": "unique", "matches": []}
    hashes = {"sha256": hashlib.sha256(data).hexdigest(), "phash": f"{fingerprint_bytes(data).phash:016x}"}
    assert body(api.client.post("/v1/check/hash", headers=bob, json=hashes)) == {
        "verdict": "unique", "matches": [], "upload_needed": True
    }  # fmt: skip

    # bob may store the same picture, under the same id: it is his own
    mine = api.upload(bob, data, id="beach")
    assert mine.status_code == 201 and body(mine)["verdict"] == "unique"
    assert api.client.get("/v1/images/beach", headers=alice).status_code == 200
    assert api.client.delete("/v1/images/beach", headers=bob).status_code == 204
    assert api.client.get("/v1/images/beach/file", headers=alice).content == data
    assert body(api.client.get("/v1/review", headers=alice))["pairs"][0]["decision"] == "pending"


def test_each_key_has_its_own_rate_limit(small_api: Api) -> None:
    alice, bob = small_api.key("alice"), small_api.key("alice")
    answers = [small_api.client.get("/v1/images", headers=alice) for _ in range(7)]
    assert [r.status_code for r in answers[:5]] == [200] * 5
    limited = answers[-1]
    assert limited.status_code == 429 and body(limited)["error"]["code"] == "rate_limited"
    assert int(limited.headers["retry-after"]) >= 1
    assert small_api.client.get("/v1/images", headers=bob).status_code == 200


def test_the_workers_of_one_server_share_each_keys_rate_limit(settings: ServiceSettings, tmp_path: Path) -> None:
    # two apps naming one rate file stand for two worker processes of one `lookalike serve`
    shared = replace(settings, rate_per_s=1.0, burst=5, rate_file=tmp_path / "rates")
    first, second = make_api(shared), make_api(shared)
    try:
        a, b = next(first), next(second)
        alice, bob = a.key("alice"), a.key("alice")
        codes = [api.client.get("/v1/images", headers=alice).status_code for api in (a, b, a, b, a, b)]
        assert codes == [200] * 5 + [429]
        assert b.client.get("/v1/images", headers=bob).status_code == 200  # another key, its own budget
    finally:
        first.close()
        second.close()
