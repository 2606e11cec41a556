"""The HTML report in a real browser (Debian's chromium driven by Playwright): it opens without a
console error, shows every group side by side with the keeper marked, embeds every thumbnail, lists
the unreadable files, and turns ticked boxes into `lookalike review mark` commands."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from lookalike.report import write_html
from lookalike.scan import FindOptions, FindResult, find_groups

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-quic",
]  # fmt: skip


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def in_browser(test: Callable[[Browser], None]) -> None:
    """Run ``test`` with a fresh headless chromium, in a thread of its own: Playwright's sync API
    refuses to start where another instance (the browser tests' session fixture) is running."""
    assert Path(CHROMIUM).is_file(), "chromium missing: `make test` installs it (apt-get install chromium)"

    def run() -> None:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
            try:
                test(b)
            finally:
                b.close()

    with ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(run).result()


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[str]:
    """``tmp_path`` over http://127.0.0.1 (a secure context, as a person's browser would give a file)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(tmp_path)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def result(pristine_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> FindResult:
    return find_groups([pristine_tree], db=tmp_path_factory.mktemp("h") / "h.db", options=FindOptions(jobs=1))


def test_report_opens_cleanly_and_shows_every_group(served: str, tmp_path: Path, result: FindResult) -> None:
    write_html(result, tmp_path / "report.html", db="/data/find.db", jobs=1)
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "http://" not in text and "https://" not in text  # self-contained: nothing to fetch
    in_browser(lambda browser: _check_report(browser, served, result))


def _check_report(browser: Browser, served: str, result: FindResult) -> None:
    page = browser.new_page()
    problems: list[str] = []
    page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("requestfailed", lambda req: problems.append(f"request failed: {req.url}"))
    page.goto(f"{served}/report.html", wait_until="load")
    assert problems == []

    sections = page.locator("section.group")
    assert sections.count() == len(result.groups) == 3
    for i, g in enumerate(result.groups):
        section = sections.nth(i)
        cards = section.locator("figure.member")
        assert cards.count() == len(g.members)
        assert cards.first.get_attribute("data-path") == g.keep
        assert "KEEP" in cards.first.inner_text() and "keep" in (cards.first.get_attribute("class") or "")
        for j, m in enumerate(g.members[1:], 1):
            card_text = cards.nth(j).inner_text()
            assert f"{m.score:.3f}" in card_text and m.verdict in card_text
        boxes = [cards.nth(j).bounding_box() for j in range(min(2, cards.count()))]
        assert boxes[0] and boxes[1] and abs(boxes[0]["y"] - boxes[1]["y"]) < 1  # side by side
    images = page.locator("figure.member img")
    assert images.count() == sum(len(g.members) for g in result.groups)
    widths = page.eval_on_selector_all("figure.member img", "els => els.map(e => e.complete && e.naturalWidth)")
    assert all(w and w > 0 for w in widths)
    assert all(src.startswith("data:image/jpeg;base64,") for src in page.eval_on_selector_all(
        "figure.member img", "els => els.map(e => e.getAttribute('src'))"))  # fmt: skip
    assert page.locator("tr.error").count() == len(result.errors) == 2

    page.locator("input.notdup").first.check()
    commands = page.locator("#commands").input_value()
    assert commands.startswith("lookalike review --db '/data/find.db' mark")
    assert commands.endswith("not_duplicate") and result.groups[0].keep in commands
    assert page.locator("#marked").inner_text() == "1"
    assert problems == []
    page.close()


def test_report_of_nothing_found_still_opens(served: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    result = find_groups([empty], db=tmp_path / "e.db", options=FindOptions(jobs=1))
    write_html(result, tmp_path / "none.html", jobs=1)
    in_browser(lambda browser: _check_empty(browser, served))


def _check_empty(browser: Browser, served: str) -> None:
    page = browser.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(f"{served}/none.html")
    assert page.locator("section.group").count() == 0 and problems == []
    page.close()


def test_keeper_and_exclusion_chosen_on_the_page_are_applied_by_find(
    served: str, tmp_path: Path, tree: Path, cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    db = tmp_path / "find.db"
    result = find_groups([tree], db=db, options=FindOptions(jobs=1))
    write_html(result, tmp_path / "report.html", db=str(db), jobs=1)
    hill = next(g for g in result.groups if any(m.path.endswith("hill_turned.jpg") for m in g.members))
    boat = next(g for g in result.groups if any(m.path.endswith("boat_small.jpg") for m in g.members))
    turned = next(m.path for m in hill.members if m.path.endswith("hill_turned.jpg"))
    small = next(m.path for m in boat.members if m.path.endswith("boat_small.jpg"))
    assert hill.keep != turned and boat.keep != small
    saved = tmp_path / "exported.json"

    def choose(browser: Browser) -> None:
        page = browser.new_page(accept_downloads=True)
        problems: list[str] = []
        page.on("console", lambda msg: problems.append(msg.text) if msg.type in ("error", "warning") else None)
        page.on("pageerror", lambda exc: problems.append(str(exc)))
        page.goto(f"{served}/report.html", wait_until="load")
        assert page.locator("#decided").inner_text() == "0"
        page.locator(f"figure.member[data-path='{turned}'] input.keeper").check()
        page.locator(f"figure.member[data-path='{small}'] input.exclude").check()
        assert page.locator("#decided").inner_text() == "2"
        assert "chosen" in (page.locator(f"figure.member[data-path='{turned}']").get_attribute("class") or "")
        assert page.locator(f"figure.member[data-path='{turned}'] input.exclude").is_disabled()
        with page.expect_download() as info:
            page.get_by_role("button", name="Export decisions").click()
        download = info.value
        assert download.suggested_filename == "lookalike-decisions.json"
        download.save_as(saved)
        assert problems == []
        page.close()

    in_browser(choose)
    exported = json.loads(saved.read_text(encoding="utf-8"))
    assert exported["lookalike_decisions"] == 1
    assert sorted((d["path"], d["decision"]) for d in exported["decisions"]) == sorted(
        [(turned, "keep"), (small, "exclude")]
    )

    first = cli("find", tree, "--db", db, "--decisions", saved, "--json")  # recorded, nothing changed yet
    assert "Traceback" not in first.stderr
    doc = json.loads(first.stdout)
    group = next(g for g in doc["groups"] if any(m["path"] == turned for m in g["members"]))
    assert group["keep"] == turned
    boat_now = next(g for g in doc["groups"] if any(m["path"] == small for m in g["members"]))
    excluded = next(m for m in boat_now["members"] if m["path"] == small)
    assert excluded["eligible"] is False and "your decision" in excluded["eligibility"]

    dest = tmp_path / "moved"  # a later run, without --decisions: they are remembered
    proc = cli("find", tree, "--db", db, "--action", "move", "--to", dest, "--yes", "--include-edited")
    assert proc.returncode in (0, 1) and "Traceback" not in proc.stderr  # 1: the tree's unreadable files
    assert os.path.exists(turned) and os.path.exists(small)  # the chosen keeper and the excluded copy stay
    assert not os.path.exists(hill.keep)  # the keeper the tool had chosen was moved, as the person asked
    assert any(p.name == os.path.basename(hill.keep) for p in dest.rglob("*"))
