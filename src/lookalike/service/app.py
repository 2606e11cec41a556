"""The app factory: ``create_app(settings)`` builds a FastAPI app with its own state (no globals);
``create_app_from_environment`` is what ``lookalike serve`` hands uvicorn for worker processes."""

from __future__ import annotations

import logging
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from lookalike.config import ServiceSettings
from lookalike.service.auth import TENANT_STATE, authenticate
from lookalike.service.errors import install_error_handlers
from lookalike.service.guards import RequestGuard
from lookalike.service.routes import check, docs, health, images, pages, review
from lookalike.service.routes import settings as settings_route
from lookalike.service.settings import settings_from_environment
from lookalike.service.state import ServiceState

__all__ = ["MEDIA_TYPES", "create_app", "create_app_from_environment"]

#: request bodies each endpoint reads, checked before reading them
MEDIA_TYPES = {
    ("POST", "/v1/images"): "multipart/form-data",
    ("POST", "/v1/check"): "multipart/form-data",
    ("POST", "/v1/images/from-url"): "application/json",
    ("POST", "/v1/check/hash"): "application/json",
    ("POST", "/v1/review/[^/]+"): "application/json",
}

STATIC = Path(__file__).with_name("static")


def create_app(settings: ServiceSettings) -> FastAPI:
    """The service for ``settings``: opens the database (migrating it) and the storage folder now,
    so a bad setting fails at start. Raises ``StoreError`` or ``ConfigError``."""
    state = ServiceState.open(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        state.close()

    app = FastAPI(
        title="lookalike",
        summary="Have I already got this image? Check before you store.",
        version="1",
        lifespan=lifespan,
        docs_url=None,  # ``routes.docs`` serves them from the package, not from a CDN
        redoc_url=None,
    )
    app.state.service = state
    install_error_handlers(app)
    for module in (images, check, review, settings_route, health, pages, docs):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.mount("/docs-assets", StaticFiles(directory=docs.ASSETS), name="docs-assets")
    app.add_middleware(
        RequestGuard, max_body_bytes=settings.max_body_bytes, max_json_bytes=settings.max_json_bytes,
        media_types=MEDIA_TYPES, authenticate=lambda header: authenticate(state, header), tenant_key=TENANT_STATE,
    )  # fmt: skip
    return app


def create_app_from_environment() -> FastAPI:
    """``create_app`` with the settings ``lookalike serve`` put in the environment (one per worker)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # httpx logs every request's full URL at INFO, a signed URL's query string (a credential)
    # included; the fetcher logs what matters itself, with query strings left out
    for noisy in ("httpx", "httpcore"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # the event loop answers hash checks between the picture threads' stretches of Python: each of
    # its waits for the GIL lasts up to the switch interval, and a hash check waits a few times
    # (every database call gives the GIL up), so 5 ms a wait became tens of ms a check
    sys.setswitchinterval(0.001)
    app = create_app(settings_from_environment())
    app.state.service.decoder.start()  # a server's first pictures should not wait for a process to start
    return app
