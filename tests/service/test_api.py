"""Every endpoint as a client uses it, on SQLite and on PostgreSQL: store, refuse copies, check,
check from hashes, list, download, renditions, delete, look-alikes, review."""

from __future__ import annotations

import hashlib

from lookalike.fingerprints import fingerprint_bytes
from tests.service.conftest import Api, body, edited, jpeg


def test_an_upload_is_stored_and_its_copies_are_refused_with_the_stored_id(api: Api) -> None:
    alice = api.key("alice")
    r = api.upload(alice, jpeg(1), id="beach")
    assert r.status_code == 201, r.text
    created = body(r)
    assert created["image"]["id"] == "beach" and created["verdict"] == "unique"
    assert r.headers["location"] == "/v1/images/beach"

    same = api.upload(alice, jpeg(1))
    assert same.status_code == 409
    assert body(same)["error"] | {"message": ""} == {
        "code": "duplicate", "message": "", "id": "beach", "verdict": "identical", "score": 1.0,
        "evidence": body(same)["error"]["evidence"],
    }  # fmt: skip
    for kind in ("smaller", "mirrored", "webp"):
        copy = api.upload(alice, edited(1, kind))
        err = body(copy)["error"]
        assert (copy.status_code, err["code"], err["id"], err["verdict"]) == (
            409,
            "duplicate",
            "beach",
            "near_duplicate",
        )
        assert err["score"] >= 0.7 and err["evidence"]

    other = api.upload(alice, jpeg(2))
    assert other.status_code == 201
    assert len(body(other)["image"]["id"]) == 16  # assigned from the bytes
    assert api.stored_keys() == api.row_sources() and len(api.stored_keys()) == 2


def test_check_answers_like_the_command_line_and_stores_nothing(api: Api) -> None:
    alice = api.key("alice")
    api.upload(alice, jpeg(1), id="beach")
    api.upload(alice, jpeg(2), id="forest")

    r = api.check(alice, edited(1, "mirrored"))
    assert r.status_code == 200
    answer = body(r)
    assert answer["verdict"] == "near_duplicate"
    assert answer["matches"][0]["id"] == "beach"
    keys = {"id", "rendition", "score", "verdict", "evidence", "source", "path", "semantic"}
    assert set(answer["matches"][0]) == keys
    assert "mirrored" in answer["matches"][0]["evidence"]
    assert answer["matches"][0]["rendition"] == "original"
    source = api.client.get(answer["matches"][0]["source"], headers=alice)
    assert source.status_code == 200 and source.content == jpeg(1)
    assert body(api.check(alice, jpeg(1)))["verdict"] == "identical"
    assert body(api.check(alice, jpeg(7)))["verdict"] == "unique"
    assert len(body(api.client.get("/v1/images", headers=alice))["images"]) == 2


def test_a_check_from_hashes_saves_sending_bytes_the_server_has(api: Api) -> None:
    alice = api.key("alice")
    data = jpeg(1)
    api.upload(alice, data, id="beach")
    fp = fingerprint_bytes(edited(1, "smaller"))

    exact = body(api.client.post("/v1/check/hash", headers=alice, json={"sha256": hashlib.sha256(data).hexdigest()}))
    assert exact["verdict"] == "identical" and exact["upload_needed"] is False
    assert exact["matches"][0]["id"] == "beach"

    near = body(api.client.post("/v1/check/hash", headers=alice, json={"phash": f"{fp.phash:016x}"}))
    assert near["verdict"] == "near_duplicate" and near["upload_needed"] is True
    assert near["matches"][0]["id"] == "beach"

    unknown = {"sha256": "00" * 32, "phash": f"{fingerprint_bytes(jpeg(9)).phash:016x}"}
    assert body(api.client.post("/v1/check/hash", headers=alice, json=unknown))["verdict"] == "unique"
    bad = api.client.post("/v1/check/hash", headers=alice, json={"sha256": "xyz"})
    assert bad.status_code == 422 and "sha256" in body(bad)["error"]["message"]
    assert api.client.post("/v1/check/hash", headers=alice, json={}).status_code == 422


def test_renditions_listing_paging_download_and_delete(api: Api) -> None:
    alice = api.key("alice")
    full, small = jpeg(1), edited(1, "smaller")
    assert api.upload(alice, full, id="beach", rendition="full").status_code == 201
    r = api.upload(alice, small, id="beach", rendition="640")  # a rendition of the same image is welcome
    assert r.status_code == 201, r.text
    assert [f["rendition"] for f in body(r)["image"]["files"]] == ["full", "640"]
    again = api.upload(alice, edited(1, "q60"), id="beach", rendition="640")
    assert again.status_code == 409 and body(again)["error"]["verdict"] == "rendition_exists"
    for seed in range(2, 7):
        assert api.upload(alice, jpeg(seed), id=f"img-{seed}").status_code == 201

    ids, after = [], ""
    while True:
        page = body(api.client.get("/v1/images", headers=alice, params={"limit": 2, "after": after}))
        ids += [i["id"] for i in page["images"]]
        if page["next"] is None:
            break
        after = page["next"]
    assert ids == sorted(ids) == ["beach", "img-2", "img-3", "img-4", "img-5", "img-6"]

    image = body(api.client.get("/v1/images/beach", headers=alice))
    assert image["files"][1]["width"] == 320 and image["files"][1]["sha256"] == hashlib.sha256(small).hexdigest()
    got = api.client.get(image["files"][1]["url"], headers=alice)
    assert got.status_code == 200 and got.content == small and got.headers["content-type"] == "image/jpeg"
    assert api.client.get("/v1/images/beach/file", headers=alice).content == full
    assert api.client.get("/v1/images/beach/file?rendition=nope", headers=alice).status_code == 404

    assert api.client.delete("/v1/images/beach", headers=alice).status_code == 204
    assert api.client.get("/v1/images/beach", headers=alice).status_code == 404
    assert api.client.delete("/v1/images/beach", headers=alice).status_code == 404
    assert body(api.check(alice, small))["verdict"] == "unique"
    assert api.stored_keys() == api.row_sources() and len(api.stored_keys()) == 5
    assert api.upload(alice, full, id="beach-again").status_code == 201  # its bytes may come back


def test_similar_images_and_the_review_list(api: Api) -> None:
    alice = api.key("alice")
    api.upload(alice, jpeg(1), id="beach")
    api.upload(alice, jpeg(2), id="forest")
    kept = api.upload(alice, edited(1, "q60"), id="beach-q60", on_duplicate="review")
    assert kept.status_code == 201 and body(kept)["review"] == 1
    assert body(kept)["verdict"] == "near_duplicate"
    stored = api.upload(alice, edited(1, "smaller"), id="beach-small", on_duplicate="store")
    assert stored.status_code == 201

    similar = body(api.client.get("/v1/images/beach/similar", headers=alice))
    assert {m["id"] for m in similar if m["verdict"] == "near_duplicate"} == {"beach-q60", "beach-small"}

    (pair,) = body(api.client.get("/v1/review", headers=alice))["pairs"]
    assert {pair["a"], pair["b"]} == {"beach", "beach-q60"} and pair["decision"] == "pending"
    decided = api.client.post(f"/v1/review/{pair['pair_id']}", headers=alice, json={"decision": "not_duplicate"})
    assert decided.status_code == 200 and body(decided)["decision"] == "not_duplicate"
    assert body(api.client.get("/v1/review", headers=alice))["pairs"] == []
    wrong = api.client.post(f"/v1/review/{pair['pair_id']}", headers=alice, json={"decision": "maybe"})
    assert wrong.status_code == 422


def test_a_check_from_hashes_honours_a_persons_decision(api: Api) -> None:
    alice = api.key("alice")
    data = jpeg(1)
    api.upload(alice, data, id="beach")
    api.upload(alice, edited(1, "q60"), id="beach-q60", on_duplicate="review")
    hashes = {"sha256": hashlib.sha256(data).hexdigest(), "phash": f"{fingerprint_bytes(data).phash:016x}"}

    def verdicts() -> dict[str, str]:
        answer = body(api.client.post("/v1/check/hash", headers=alice, json=hashes))
        return {m["id"]: m["verdict"] for m in answer["matches"]}

    assert verdicts() == {"beach": "identical", "beach-q60": "near_duplicate"}
    (pair,) = body(api.client.get("/v1/review", headers=alice))["pairs"]
    api.client.post(f"/v1/review/{pair['pair_id']}", headers=alice, json={"decision": "not_duplicate"})
    assert verdicts() == {"beach": "identical", "beach-q60": "different"}
    # as a check of the picture itself says
    picture = body(api.check(alice, data))
    assert {m["id"]: m["verdict"] for m in picture["matches"]} == verdicts()


def test_health_and_docs_need_no_key(api: Api) -> None:
    assert body(api.client.get("/healthz")) == {"status": "ok"}
    assert api.client.get("/docs").status_code == 200
    paths = body(api.client.get("/openapi.json"))["paths"]
    assert {"/v1/images", "/v1/check", "/v1/check/hash", "/v1/images/from-url", "/v1/review/{pair_id}"} <= set(paths)
    assert api.client.get("/static/README.txt").status_code == 200
    missing = api.client.get("/v2/nothing")
    assert missing.status_code == 404 and body(missing)["error"]["code"] == "not_found"
