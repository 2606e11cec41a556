"""The browser pages: upload with a pre-check at ``/``, duplicate review at ``/review``, the gallery
at ``/images``. Static HTML (no key needed to load them: each page asks for the API key and keeps it
in ``sessionStorage``); their scripts come from ``/static/`` and talk to the API."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

router = APIRouter(tags=["pages"], include_in_schema=False)

STATIC = Path(__file__).resolve().parents[1] / "static"

#: nothing beyond the service itself: no CDN, no inline script, images only from the API (blob: URLs)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' blob:; worker-src 'self'; connect-src 'self'; "
    "style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


def _page(name: str) -> FileResponse:
    return FileResponse(
        STATIC / name,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


@router.get("/")
def upload_page() -> FileResponse:
    """Pick or drop pictures; each is pre-checked in the browser and only new ones are uploaded."""
    return _page("upload.html")


@router.get("/review")
def review_page() -> FileResponse:
    """Potential-duplicate pairs side by side, with the buttons that decide them."""
    return _page("review.html")


@router.get("/images")
def gallery_page() -> FileResponse:
    """The tenant's images, their renditions and their near-duplicates."""
    return _page("gallery.html")
