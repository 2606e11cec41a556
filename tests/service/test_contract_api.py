"""The service keeps the contract the command line keeps (issue 17): a hash check finds what a check
of the picture finds, and the OpenAPI document says what the service really answers."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import httpx
from PIL import Image

from tests.images import EXAMPLES
from tests.index.conftest import cli_command, cli_env
from tests.service.conftest import Api, Served, body, edited, jpeg

LIBRARY = EXAMPLES / "library"
TURNS = {"mirrored": Image.Transpose.FLIP_LEFT_RIGHT, "turned": Image.Transpose.ROTATE_90}


def test_a_hash_check_finds_mirrored_and_turned_copies_of_stored_pictures(
    serve: Callable[..., Served], tmp_path: Path
) -> None:
    """Given only the pHash `lookalike hash` prints for a mirrored or a 90°-turned copy of a stored
    picture, `POST /v1/check/hash` answers `near_duplicate` with that picture, as `check` does."""
    server = serve(str(tmp_path / "service.sqlite"), workers=1)
    alice = server.key("alice")
    copies = tmp_path / "copies"
    copies.mkdir()
    with httpx.Client(base_url=server.url, timeout=60) as client:
        for original in sorted(LIBRARY.iterdir()):
            data = original.read_bytes()
            stored = client.post("/v1/images", headers=alice, data={"id": original.stem}, files={"file": ("p", data)})
            assert stored.status_code == 201, stored.text
            with Image.open(original) as im:
                for name, turn in TURNS.items():
                    im.convert("RGB").transpose(turn).save(copies / f"{original.stem}.{name}.jpg", quality=90)
        hashed = subprocess.run(
            [*cli_command(), "hash", str(copies), "--json"], capture_output=True, text=True, env=cli_env(), timeout=300
        )
        assert hashed.returncode == 0, hashed.stderr
        answers = {}
        for line in hashed.stdout.splitlines():
            printed = json.loads(line)
            r = client.post("/v1/check/hash", headers=alice, json={"phash": printed["phash"]})
            assert r.status_code == 200, r.text
            answers[Path(printed["path"]).name] = r.json()
        # and a whole picture check of the same copy, for comparison
        mirrored = (copies / "chelsea.mirrored.jpg").read_bytes()
        checked = client.post("/v1/check", headers=alice, files={"file": ("m.jpg", mirrored)}).json()
    assert len(answers) == 2 * len(list(LIBRARY.iterdir()))
    for name, answer in answers.items():
        stem, turn, _ = name.split(".")
        assert answer["verdict"] == "near_duplicate", (name, answer)
        assert answer["matches"][0]["id"] == stem, (name, answer)
        assert answer["upload_needed"] is True
        assert ("mirrored" if turn == "mirrored" else "turned 90°") in answer["matches"][0]["evidence"]
    assert checked["verdict"] == answers["chelsea.mirrored.jpg"]["verdict"]
    assert checked["matches"][0]["id"] == answers["chelsea.mirrored.jpg"]["matches"][0]["id"]


def test_a_hash_check_of_an_unrelated_picture_finds_nothing_under_any_turn(api: Api) -> None:
    alice = api.key("alice")
    for seed in range(1, 6):
        api.upload(alice, jpeg(seed), id=f"p{seed}")
    from lookalike import fingerprint

    other = fingerprint(jpeg(40))
    answer = body(api.client.post("/v1/check/hash", headers=alice, json={"phash": f"{other.phash:016x}"}))
    assert answer["verdict"] == "unique" and answer["matches"] == []


def test_openapi_declares_the_bearer_scheme_and_the_error_body_of_every_error_status(api: Api) -> None:
    doc = body(api.client.get("/openapi.json"))
    schemes = doc["components"]["securitySchemes"]
    ((name, scheme),) = schemes.items()
    assert scheme["type"] == "http" and scheme["scheme"] == "bearer"
    schemas = doc["components"]["schemas"]

    def error_schema(response: dict[str, object]) -> dict[str, object]:
        ref = response["content"]["application/json"]["schema"]["$ref"]  # type: ignore[index]
        schema = schemas[ref.rsplit("/", 1)[-1]]
        detail = schemas[schema["properties"]["error"]["$ref"].rsplit("/", 1)[-1]]
        assert {"code", "message"} <= set(detail["required"])
        return schema

    seen: dict[str, int] = {}
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            responses = op["responses"]
            if path.startswith("/v1/"):
                assert op["security"] == [{name: []}], (method, path)
                assert {"401", "422", "429"} <= set(responses), (method, path)
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    error_schema(response)
                    seen[status] = seen.get(status, 0) + 1
            # FastAPI's own validation body is never documented: the service answers {"error": ...}
            assert "HTTPValidationError" not in json.dumps(responses)
    assert {"401", "404", "409", "413", "415", "422", "429"} <= set(seen)
    assert "HTTPValidationError" not in schemas
    upload = doc["paths"]["/v1/images"]["post"]["responses"]
    assert {"400", "409", "413", "415"} <= set(upload)
    duplicate = schemas[upload["409"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]]
    detail = schemas[duplicate["properties"]["error"]["$ref"].rsplit("/", 1)[-1]]
    assert {"id", "verdict", "score", "evidence"} <= set(detail["properties"])
    # what the document says is what the service answers
    no_key = api.client.get("/v1/images")
    assert no_key.status_code == 401 and set(body(no_key)["error"]) == {"code", "message"}


def test_every_list_is_paged_with_limit_after_and_next(api: Api) -> None:
    alice = api.key("alice")
    for seed in (1, 2, 3):
        api.upload(alice, jpeg(seed), id=f"p{seed}")
        api.upload(alice, edited(seed, "q60"), id=f"p{seed}-q60", on_duplicate="review")
    everything = body(api.client.get("/v1/review", headers=alice))
    assert len(everything["pairs"]) == 3 and everything["next"] is None
    pages, after = [], None
    while True:
        params = {"limit": "1", **({"after": after} if after else {})}
        page = body(api.client.get("/v1/review", headers=alice, params=params))
        pages.append([p["pair_id"] for p in page["pairs"]])
        after = page["next"]
        if after is None:
            break
    assert pages == [[p["pair_id"]] for p in everything["pairs"]]
    # a page goes on where the last ended even after a pair of it was decided
    first = body(api.client.get("/v1/review", headers=alice, params={"limit": "1"}))
    api.client.post(f"/v1/review/{first['pairs'][0]['pair_id']}", headers=alice, json={"decision": "duplicate"})
    rest = body(api.client.get("/v1/review", headers=alice, params={"after": first["next"]}))
    assert [p["pair_id"] for p in rest["pairs"]] == [p["pair_id"] for p in everything["pairs"][1:]]
    bad = api.client.get("/v1/review", headers=alice, params={"after": "nonsense"})
    assert bad.status_code == 422 and body(bad)["error"]["code"] == "invalid_request"
    images = body(api.client.get("/v1/images", headers=alice, params={"limit": "4"}))
    assert len(images["images"]) == 4 and images["next"] is not None


def test_times_are_iso_8601_and_validation_messages_are_plain(api: Api) -> None:
    alice = api.key("alice")
    stored = body(api.upload(alice, jpeg(1), id="beach"))
    assert stored["image"]["created_at"].endswith("Z") and "T" in stored["image"]["created_at"]
    assert stored["image"]["files"][0]["created_at"].endswith("Z")
    empty = api.client.post("/v1/check/hash", headers=alice, json={})
    assert empty.status_code == 422
    assert body(empty)["error"]["message"] == "body: give sha256, phash or both"
