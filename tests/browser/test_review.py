"""The review page and the gallery: copies uploaded "anyway" from the upload page become review pairs;
a decision made on the review page shows in the CLI's `lookalike review` and in later checks; a copy
deleted there is gone; the gallery shows renditions and near-duplicates."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser.conftest import bearer, enter_key, screenshot
from tests.index.conftest import cli_command, cli_env
from tests.service.conftest import Served, jpeg

NAMES = {1: "beach", 2: "forest", 3: "city"}


def _cli_review(server: Served) -> dict[str, str]:
    """``lookalike review --all --json`` on the service's database: stored image id -> decision."""
    out = subprocess.run(
        [*cli_command(), "review", "--db", server.db, "--all", "--json"],
        env=cli_env(), capture_output=True, text=True, check=True, timeout=120,
    )  # fmt: skip
    return {(row := json.loads(line))["a"]: row["decision"] for line in out.stdout.splitlines()}


def _check(client: httpx.Client, data: bytes) -> dict[str, str]:
    """``POST /v1/check``: image id -> verdict."""
    r = client.post("/v1/check", files={"file": ("q.jpg", data)})
    assert r.status_code == 200, r.text
    return {m["id"]: m["verdict"] for m in r.json()["matches"]}


def test_decisions_made_on_the_page_are_kept_and_honoured(page: Page, server: Served, tmp_path: Path) -> None:
    alice = server.key("alice")
    client = httpx.Client(base_url=server.url, headers=alice, timeout=60)
    for seed, name in NAMES.items():
        assert client.post("/v1/images", files={"file": ("p.jpg", jpeg(seed))}, data={"id": name}).status_code == 201
    copies = []
    for seed in NAMES:
        copies.append(tmp_path / f"copy-of-{NAMES[seed]}.jpg")
        copies[-1].write_bytes(jpeg(seed, quality=70))

    # the upload page flags the copies; the person uploads them anyway, for review
    page.goto(server.url + "/")
    enter_key(page, bearer(alice))
    page.get_by_label("Pictures to check").set_input_files([str(p) for p in copies])
    expect(page.locator("#summary")).to_have_text("3 files: 3 likely duplicates", timeout=60_000)
    for box in page.get_by_label("Upload anyway (goes to the review list)").all():
        box.check()
    page.get_by_role("button", name="Upload 3 files (3 for review)").click()
    expect(page.locator("#summary")).to_have_text("3 files: 3 uploaded", timeout=60_000)
    copy_ids = {name: client.get("/v1/images/" + name + "/similar").json()[0]["id"] for name in NAMES.values()}
    assert _check(client, jpeg(1))[copy_ids["beach"]] == "near_duplicate"

    page.get_by_role("link", name="Review").click()
    expect(page.locator("#review-status")).to_have_text("3 pairs to review.")
    pairs = page.locator("article.pair")
    expect(pairs).to_have_count(3)
    for img in page.locator("article.pair img").all():
        expect(img).to_have_attribute("src", re.compile("^blob:"))
    beach = pairs.filter(has=page.get_by_role("heading", name=f"beach and {copy_ids['beach']}"))
    expect(beach).to_contain_text("near duplicate")
    screenshot(page, "review.png")

    beach.get_by_role("button", name="Not a duplicate").click()
    expect(page.locator("#review-status")).to_contain_text(f"Marked beach and {copy_ids['beach']} as not a duplicate")
    forest = pairs.filter(has=page.get_by_role("heading", name=f"forest and {copy_ids['forest']}"))
    forest.get_by_role("button", name="Duplicate", exact=True).focus()
    page.keyboard.press("Enter")
    expect(page.locator("#review-status")).to_contain_text("as a duplicate. 1 pair left.")

    # the CLI sees both decisions; a later check honours "not a duplicate"
    assert _cli_review(server) == {"beach": "not_duplicate", "forest": "duplicate", "city": "pending"}
    after = _check(client, jpeg(1))
    assert after["beach"] == "identical" and after[copy_ids["beach"]] == "different"

    # "Delete this copy" removes the image and its pair
    page.once("dialog", lambda d: d.accept())
    page.get_by_role("button", name=f"Delete this copy: {copy_ids['city']}").click()
    expect(page.locator("#review-status")).to_have_text(f"Deleted {copy_ids['city']}. Nothing left to review.")
    assert client.get("/v1/images/" + copy_ids["city"]).status_code == 404
    page.reload()
    expect(page.locator("#review-status")).to_have_text("Nothing to review.")

    # the gallery: every image, the renditions of one, and its near-duplicates on demand
    small = client.post(
        "/v1/images",
        files={"file": ("s.jpg", jpeg(2, 240, 180))},
        data={"id": "forest", "rendition": "small", "on_duplicate": "store"},
    )
    assert small.status_code == 201, small.text
    page.get_by_role("link", name="Gallery").click()
    expect(page.locator("#gallery-status")).to_have_text("5 images.")
    card = page.locator("li.image", has=page.get_by_role("heading", name="forest", exact=True))
    expect(card.get_by_role("row")).to_have_count(3)  # a header and two renditions
    expect(card.get_by_role("button", name="Show rendition small of forest")).to_be_visible()
    card.get_by_role("button", name="Show near-duplicates").click()
    expect(card.locator(".similar li")).to_contain_text([f"{copy_ids['forest']}: near duplicate"])
    expect(card.get_by_role("button", name="Hide near-duplicates")).to_have_attribute("aria-expanded", "true")
    screenshot(page, "gallery.png")
    client.close()
    assert page.problems == []  # type: ignore[attr-defined]
