"""``POST /v1/check/hash`` with a batch (``{"items": [...]}``), as the browser pre-check sends it: one
answer per item in order, the same answers as one request per item, confined to the key's tenant."""

from __future__ import annotations

import hashlib

from lookalike.fingerprints import fingerprint_bytes
from lookalike.service.schemas import MAX_HASH_BATCH
from tests.service.conftest import Api, body, edited, jpeg


def test_a_batch_answers_each_item_as_a_single_request_would(api: Api) -> None:
    alice, bob = api.key("alice"), api.key("bob")
    stored = jpeg(1)
    assert api.upload(alice, stored, id="beach").status_code == 201
    items = [
        {"sha256": hashlib.sha256(stored).hexdigest()},
        {"sha256": "00" * 32, "phash": f"{fingerprint_bytes(edited(1, 'smaller')).phash:016x}"},
        {"sha256": "11" * 32, "phash": f"{fingerprint_bytes(jpeg(9)).phash:016x}"},
    ]
    batch = body(api.client.post("/v1/check/hash", headers=alice, json={"items": items}))
    singles = [body(api.client.post("/v1/check/hash", headers=alice, json=i)) for i in items]
    assert batch == {"results": singles}
    assert [(r["verdict"], r["upload_needed"]) for r in batch["results"]] == [
        ("identical", False), ("near_duplicate", True), ("unique", True),
    ]  # fmt: skip
    # another tenant learns nothing from the same hashes
    other = body(api.client.post("/v1/check/hash", headers=bob, json={"items": items}))
    assert [r["matches"] for r in other["results"]] == [[], [], []]


def test_bad_batches_are_refused_with_a_clear_message(api: Api) -> None:
    alice = api.key("alice")
    empty = api.client.post("/v1/check/hash", headers=alice, json={"items": []})
    assert empty.status_code == 422 and "items" in body(empty)["error"]["message"]
    too_many = {"items": [{"sha256": "00" * 32}] * (MAX_HASH_BATCH + 1)}
    assert api.client.post("/v1/check/hash", headers=alice, json=too_many).status_code == 422
    bad_item = api.client.post("/v1/check/hash", headers=alice, json={"items": [{"sha256": "xyz"}]})
    assert bad_item.status_code == 422 and "sha256" in body(bad_item)["error"]["message"]
