"""``/docs`` and ``/redoc`` in headless Chromium that may reach nothing but the service on loopback:
the API's title and operations show (Swagger UI and ReDoc come from the installed package, not a
CDN), under the pages' CSP, and "Authorize" takes the API key for "Try it out"."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from playwright.sync_api import Page, Route, expect

from tests.browser.conftest import bearer, screenshot
from tests.service.conftest import Served


def _loopback_only(page: Page) -> list[str]:
    """Refuse every request that leaves 127.0.0.1 (as an offline machine would); returns them."""
    refused: list[str] = []

    def route(r: Route) -> None:
        url = r.request.url
        if urlsplit(url).scheme in ("data", "blob") or urlsplit(url).hostname == "127.0.0.1":
            r.continue_()
        else:
            refused.append(url)
            r.abort()

    page.context.route("**/*", route)
    return refused


def test_swagger_ui_shows_the_api_offline_and_tries_it_out_with_a_key(page: Page, server: Served) -> None:
    refused = _loopback_only(page)
    page.goto(server.url + "/docs")
    expect(page.get_by_role("heading", name=re.compile(r"^lookalike\b"), level=1)).to_be_visible(timeout=30_000)
    for path in ("/v1/images", "/v1/check", "/v1/check/hash", "/v1/review"):
        expect(page.locator(f".opblock-summary-path[data-path='{path}']").first).to_be_visible()
    screenshot(page, "docs.png")

    # the bearer scheme gives an Authorize button; a call tried out from the page carries the key
    alice = server.key("alice")
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").first.fill(bearer(alice))
    page.locator(".modal-ux button.modal-btn.authorize").click()
    page.locator(".modal-ux button.btn-done").click()
    operation = page.locator("#operations-images-list_images_v1_images_get")
    operation.locator(".opblock-summary").click()
    operation.get_by_role("button", name="Try it out").click()
    operation.get_by_role("button", name="Execute").click()
    status = operation.locator(".live-responses-table tbody .response-col_status").first
    expect(status).to_have_text("200", timeout=30_000)

    assert refused == []
    assert page.problems == []  # type: ignore[attr-defined]  # no CSP violation, no failed request


def test_redoc_shows_the_api_offline(page: Page, server: Served) -> None:
    refused = _loopback_only(page)
    page.goto(server.url + "/redoc")
    expect(page.get_by_role("heading", name="lookalike").first).to_be_visible(timeout=30_000)
    expect(page.get_by_text("/v1/check/hash").first).to_be_attached()
    assert refused == []
    # ReDoc's bundle links its "powered by" logo from its CDN: the page's CSP refuses it (a console
    # error, and no request leaves the machine); nothing else may go wrong
    problems = [p for p in page.problems if "logo-mini.svg" not in p]  # type: ignore[attr-defined]
    assert problems == []
