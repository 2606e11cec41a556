"""The browser pages: upload with a pre-check at ``/``, duplicate review at ``/review``, the gallery
at ``/images``. Static HTML (no key needed to load them: each page asks for the API key and keeps it
in ``sessionStorage``); their scripts come from ``/static/`` and talk to the API."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from string import Template

from fastapi import APIRouter
from fastapi.responses import Response

router = APIRouter(tags=["pages"], include_in_schema=False)

#: each page's <main>, and the layout they share (not served as files: the routes below render them)
PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
#: page name -> its title
PAGES = {"upload": "Upload", "review": "Review", "gallery": "Gallery"}

#: nothing beyond the service itself: no CDN, no inline script, images only from the API (blob: URLs)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob:; worker-src 'self'; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


@cache
def _render(name: str) -> bytes:
    """The page ``name``: its ``<main>`` (``pages/NAME.html``) in the layout every page shares
    (head, navigation with this page marked, the API-key form; ``pages/layout.html``)."""
    fields = {f"current_{page}": ' aria-current="page"' if page == name else "" for page in PAGES}
    layout = Template((PAGES_DIR / "layout.html").read_text(encoding="utf-8"))
    main = (PAGES_DIR / f"{name}.html").read_text(encoding="utf-8").rstrip("\n")
    return layout.substitute(fields, title=PAGES[name], script=name, main=main).encode()


def _page(name: str) -> Response:
    return Response(
        _render(name),
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


@router.get("/")
def upload_page() -> Response:
    """Pick or drop pictures; each is pre-checked in the browser and only new ones are uploaded."""
    return _page("upload")


@router.get("/review")
def review_page() -> Response:
    """Potential-duplicate pairs side by side, with the buttons that decide them."""
    return _page("review")


@router.get("/images")
def gallery_page() -> Response:
    """The tenant's images, their renditions and their near-duplicates."""
    return _page("gallery")
