"""Hostile and broken requests: each gets a 4xx with a clear message, the server goes on serving,
and nothing half-written stays behind (every file has its row and every row its file)."""

from __future__ import annotations

import io

import pytest

from tests.images import encode, flat, png_header_only
from tests.service.conftest import Api, body, jpeg


def _cases() -> list[tuple[str, bytes, int, str]]:
    whole = jpeg(3)
    return [
        ("bomb", png_header_only(50_000, 50_000), 413, "too_large"),
        ("truncated", whole[: len(whole) // 2], 422, "truncated_image"),
        ("text", b"hello, I am not a picture\n" * 10, 422, "not_an_image"),
        ("empty", b"", 422, "not_an_image"),
        ("pdf", b"%PDF-1.4\n" + b"0" * 100, 422, "not_an_image"),
        ("ico", encode(flat((10, 20, 30), 32, 32), "ICO"), 415, "unsupported_format"),
    ]


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c[0])
def test_bad_pictures_get_a_clear_4xx_and_nothing_is_stored(small_api: Api, case: tuple[str, bytes, int, str]) -> None:
    name, data, status, code = case
    headers = {"Authorization": small_api.key("alice")["Authorization"]}
    for path in ("/v1/images", "/v1/check"):
        r = small_api.client.post(path, headers=headers, files={"file": ("x.jpg", data, "image/jpeg")})
        assert (r.status_code, body(r)["error"]["code"]) == (status, code), (name, path, r.text)
        message = body(r)["error"]["message"]
        assert message and "\n" not in message and "Traceback" not in message
    assert small_api.stored_keys() == small_api.row_sources() == set()
    assert small_api.upload(headers, jpeg(4)).status_code == 201  # still serving


def test_bodies_over_the_limit_are_refused_before_they_are_read(small_api: Api) -> None:
    alice = small_api.key("alice")
    big = jpeg(5, 2400, 1800, quality=97)
    assert len(big) > 300_000
    r = small_api.upload(alice, big)
    assert r.status_code == 413 and body(r)["error"]["code"] == "too_large"

    def chunks() -> object:
        yield b"--x\r\nContent-Disposition: form-data; name=file; filename=a.jpg\r\n\r\n"
        for _ in range(40):
            yield b"\xff" * 10_000
        yield b"\r\n--x--\r\n"

    streamed = small_api.client.post(
        "/v1/images", headers={**alice, "Content-Type": "multipart/form-data; boundary=x"}, content=chunks()
    )
    assert streamed.status_code == 413 and body(streamed)["error"]["code"] == "too_large"
    assert small_api.stored_keys() == set()


def test_wrong_content_types_malformed_json_and_missing_fields(api: Api) -> None:
    alice = api.key("alice")
    as_json = api.client.post("/v1/images", headers=alice, json={"file": "abc"})
    assert as_json.status_code == 415
    assert "multipart/form-data" in body(as_json)["error"]["message"]
    raw = api.client.post("/v1/check", headers={**alice, "Content-Type": "image/jpeg"}, content=jpeg(1))
    assert raw.status_code == 415
    form = api.client.post("/v1/check/hash", headers=alice, data={"sha256": "00" * 32})
    assert form.status_code == 415 and "application/json" in body(form)["error"]["message"]

    for path in ("/v1/check/hash", "/v1/images/from-url", "/v1/review/1"):
        r = api.client.post(path, headers={**alice, "Content-Type": "application/json"}, content=b'{"url": ')
        assert r.status_code == 400 and body(r)["error"]["code"] == "malformed_json", path
    no_file = api.client.post("/v1/images", headers=alice, files={"other": ("a.jpg", jpeg(1))})
    assert no_file.status_code == 422 and "file" in body(no_file)["error"]["message"]
    bad_id = api.upload(alice, jpeg(1), id="../../etc/passwd")
    assert bad_id.status_code == 422 and "id" in body(bad_id)["error"]["message"]
    extra = api.client.post("/v1/check/hash", headers=alice, json={"sha256": "00" * 32, "md5": "x"})
    assert extra.status_code == 422
    broken = api.client.post(
        "/v1/images", headers={**alice, "Content-Type": "multipart/form-data; boundary=zz"}, content=b"--zz\r\nnonsense"
    )
    assert 400 <= broken.status_code < 500
    assert api.upload(alice, jpeg(1)).status_code == 201
    assert api.stored_keys() == api.row_sources()


def test_a_failed_commit_leaves_no_file_behind(api: Api) -> None:
    alice = api.key("alice")
    _drop_table(api.settings.db, "local_features")  # the row's transaction will fail half-way
    r = api.upload(alice, jpeg(1))
    assert r.status_code in (500, 503) and body(r)["error"]["message"]
    assert api.stored_keys() == api.row_sources() == set()
    assert api.client.get("/v1/images", headers=alice).status_code == 200  # still serving


def _drop_table(db: str, table: str) -> None:
    if db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db, autocommit=True) as conn:
            conn.execute(f"DROP TABLE {table} CASCADE")  # type: ignore[arg-type]
    else:
        import sqlite3

        conn = sqlite3.connect(db)
        conn.execute(f"DROP TABLE {table}")
        conn.commit()
        conn.close()


def test_pictures_in_every_allowed_format_are_accepted(api: Api) -> None:
    alice = api.key("alice")
    im = flat((200, 30, 30), 64, 48)
    for i, fmt in enumerate(["PNG", "WEBP", "GIF", "BMP", "TIFF"]):
        buf = io.BytesIO()
        im.rotate(i * 30, expand=True).save(buf, fmt)
        r = api.upload(alice, buf.getvalue(), id=f"f{i}", on_duplicate="store")
        assert r.status_code == 201, (fmt, r.text)


def test_the_key_is_checked_before_the_body_and_json_bodies_are_small(api: Api) -> None:
    big_json = b'{"sha256": "' + b"0" * (8 * 1024 * 1024) + b'"}'
    r = api.client.post("/v1/check/hash", content=big_json, headers={"Content-Type": "application/json"})
    assert r.status_code == 401 and body(r)["error"]["code"] == "unauthorized"
    alice = api.key("alice")
    r = api.client.post("/v1/check/hash", content=big_json, headers={**alice, "Content-Type": "application/json"})
    assert r.status_code == 413 and body(r)["error"]["code"] == "too_large"
    items = [{"sha256": "ab" * 32, "phash": "0123456789abcdef"}] * 500  # the largest batch fits
    assert api.client.post("/v1/check/hash", headers=alice, json={"items": items}).status_code == 200


def test_every_answer_says_nosniff(api: Api) -> None:
    alice = api.key("alice")
    answers = [
        api.client.get("/healthz"),
        api.client.get("/"),
        api.client.get("/v1/images"),  # 401
        api.client.get("/v1/images/nothing", headers=alice),  # 404
        api.check(alice, b"not a picture"),  # 422
        api.upload(alice, jpeg(5)),  # 201
    ]
    assert [r.headers.get("x-content-type-options") for r in answers] == ["nosniff"] * len(answers)
    assert (
        api.client.get("/v1/images/" + answers[-1].json()["image"]["id"] + "/file", headers=alice).headers[
            "x-content-type-options"
        ]
        == "nosniff"
    )
