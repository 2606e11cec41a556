"""The browser pieces in Debian's headless Chromium (driven by Playwright), against a real
``lookalike serve`` process on loopback: one browser per session, one server per test module."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.images import REPO
from tests.service.conftest import Served

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-quic",
]  # fmt: skip
#: the pages' screenshots, linked from the README
SCREENSHOTS = REPO / "docs" / "screenshots"


@pytest.fixture(scope="package")
def browser() -> Iterator[Browser]:
    """Headless Chromium for this package's tests, closed after them: Playwright's sync API runs an
    event loop in the main thread while it is open, and later tests call ``asyncio.run``."""
    assert Path(CHROMIUM).is_file(), "chromium missing: `make test` installs it (apt-get install chromium)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``lookalike serve`` (one worker) on a fresh SQLite file, for the whole test module."""
    root = tmp_path_factory.mktemp("served")
    served = Served(str(root / "service.sqlite"), root / "files", workers=1)
    yield served
    served.stop()
    assert "Traceback" not in served.log_text()


class Problems(list[str]):
    """Console errors, uncaught exceptions and failed requests seen by a page."""


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh page (own storage) that records its problems in ``page.problems``; a test that ends
    with problems it did not expect fails."""
    context = browser.new_context(viewport={"width": 1200, "height": 900})
    pg = context.new_page()
    problems = Problems()

    def console(msg: ConsoleMessage) -> None:
        if msg.type in ("error", "warning"):
            problems.append(f"console {msg.type}: {msg.text}")

    pg.on("console", console)
    pg.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    pg.on("requestfailed", lambda req: problems.append(f"request failed: {req.url} {req.failure}"))
    pg.problems = problems  # type: ignore[attr-defined]
    yield pg
    context.close()


def enter_key(page: Page, key: str) -> None:
    """Type the API key into the header's form and submit it with the keyboard, as a person would."""
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_label("API key", exact=True).press("Enter")
    page.get_by_text(f"Using key {key[:6]}").wait_for()


def bearer(headers: dict[str, str]) -> str:
    """The key in ``Served.key``'s headers."""
    return headers["Authorization"].removeprefix("Bearer ")


def screenshot(page: Page, name: str) -> None:
    """Take a small PNG of the page for the README. It replaces the committed one only when that is
    missing or ``LOOKALIKE_UPDATE_SCREENSHOTS=1`` is set (ids and keys differ from run to run, so an
    ordinary test run would otherwise leave the working tree changed)."""
    shot = Image.open(io.BytesIO(page.screenshot(full_page=False)))
    # a 96-colour palette keeps a committed screenshot small (tens of KB) and readable
    small = shot.convert("RGB").quantize(96, method=Image.Quantize.MEDIANCUT)
    target = SCREENSHOTS / name
    if target.exists() and os.environ.get("LOOKALIKE_UPDATE_SCREENSHOTS") != "1":
        return
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    small.save(target, optimize=True)
