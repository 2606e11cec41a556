"""Comparing images fetched over HTTP (from a local server) with files."""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from lookalike import FetchLimits, Verdict, compare, fingerprint
from tests.conftest import ImageServer
from tests.images import EXAMPLES, encode

QUICK = FetchLimits(connect_timeout_s=2.0, read_timeout_s=5.0)
COFFEE = EXAMPLES / "library" / "coffee.jpg"


def test_url_and_file_of_the_same_bytes_are_identical(image_server: ImageServer) -> None:
    url = image_server.add("coffee.jpg", COFFEE.read_bytes())
    c = compare(url, COFFEE, fetch=QUICK)
    assert c.verdict is Verdict.IDENTICAL
    assert c.to_dict()["a"] == url
    assert c.to_dict()["b"] == str(COFFEE)


def test_url_of_an_edited_copy_is_a_near_duplicate(image_server: ImageServer) -> None:
    url = image_server.add("coffee-small.webp", (EXAMPLES / "uploads" / "coffee_small.webp").read_bytes())
    c = compare(COFFEE, url, fetch=QUICK)
    assert c.verdict is Verdict.NEAR_DUPLICATE
    assert "WebP" in c.explanation


def test_two_urls(image_server: ImageServer) -> None:
    im = Image.open(COFFEE).convert("RGB")
    a = image_server.add("coffee.png", encode(im, "PNG"))
    b = image_server.add("coffee.bmp", encode(im, "BMP"))
    assert compare(a, b, fetch=QUICK).verdict is Verdict.SAME_PIXELS


def test_url_fingerprint_matches_the_file_fingerprint(image_server: ImageServer) -> None:
    url = image_server.add("coffee-fp.jpg", COFFEE.read_bytes())
    from_url, from_file = fingerprint(url, fetch=QUICK), fingerprint(COFFEE)
    assert from_url.name == url
    assert from_url.to_dict() | {"name": ""} == from_file.to_dict() | {"name": ""}


def test_url_behind_a_redirect(image_server: ImageServer) -> None:
    image_server.add("moved.jpg", COFFEE.read_bytes())
    c = compare(image_server.url("/redirect/1/moved.jpg"), Path(COFFEE), fetch=QUICK)
    assert c.verdict is Verdict.IDENTICAL
