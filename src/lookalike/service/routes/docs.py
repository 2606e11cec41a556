"""The API's documentation pages: Swagger UI at ``/docs`` (with an Authorize button for the bearer
key) and ReDoc at ``/redoc``, both over ``/openapi.json``. Their scripts and styles are files of
the ``fastapi-offline`` package (Swagger UI's and ReDoc's release bundles), served at
``/docs-assets/``: nothing comes from a CDN, so the pages work offline and under a strict CSP."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "router"]

router = APIRouter(tags=["docs"], include_in_schema=False)

STATIC = Path(__file__).resolve().parents[1] / "static"
#: swagger-ui-bundle.js, swagger-ui.css and redoc.standalone.js, as the package ships them
ASSETS = Path(str(files("fastapi_offline") / "static"))

#: as the service's other pages, but for what the two bundles do at run time: both set styles from
#: script (ReDoc adds <style> elements), draw icons from data: URLs, and ReDoc searches in a
#: worker it starts from a blob: URL
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; "
    "worker-src 'self' blob:; connect-src 'self'; font-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)


def _page(name: str) -> FileResponse:
    return FileResponse(
        STATIC / name,
        media_type="text/html; charset=utf-8",
        headers={"Content-Security-Policy": CONTENT_SECURITY_POLICY, "Cache-Control": "no-cache"},
    )


@router.get("/docs")
def swagger_ui() -> FileResponse:
    """Swagger UI: every operation, tried out with the key given under "Authorize"."""
    return _page("docs.html")


@router.get("/redoc")
def redoc() -> FileResponse:
    """ReDoc: the same document as a reference to read."""
    return _page("redoc.html")
