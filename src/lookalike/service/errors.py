"""Every error the service answers with, mapped to an HTTP status in this one place.

Bodies are always ``{"error": {"code": ..., "message": ...}}`` (a 409 adds the
existing image's id, verdict, score and evidence). Library errors keep their
``code``; the service adds a few of its own below. An unexpected exception is
logged with its traceback and answered 500 without details; the server goes on.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from lookalike import errors
from lookalike.errors import FetchError, InputError, LookalikeError, TooLarge, error_body

__all__ = [
    "NOSNIFF",
    "BadRequest",
    "Busy",
    "BodyTooLarge",
    "Duplicate",
    "RateLimited",
    "Unauthorized",
    "UnsupportedMediaType",
    "UrlRefused",
    "install_error_handlers",
    "status_of",
]

log = logging.getLogger("lookalike.service")

#: on every answer: browsers must take a body for the type it is sent as (an uploaded "image" that
#: is really HTML is never rendered as a page)
NOSNIFF = {"X-Content-Type-Options": "nosniff"}


class Unauthorized(LookalikeError):
    """No API key, or one that is not (or no longer) valid."""

    code = "unauthorized"


class RateLimited(LookalikeError):
    """The key spent its request budget; ``retry_after_s`` says when to come back."""

    code = "rate_limited"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Busy(LookalikeError):
    """The server's queue for this kind of request is full; ``retry_after_s`` says when to come back."""

    code = "busy"

    def __init__(self, message: str, *, retry_after_s: float) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class Duplicate(LookalikeError):
    """The upload is a copy of a stored image (409), which ``details`` describe."""

    code = "duplicate"

    def __init__(self, message: str, *, details: dict[str, Any]) -> None:
        super().__init__(message)
        self.details = details


class UrlRefused(FetchError):
    """A URL the service will not fetch: its scheme, or an address it resolves or redirects to."""

    code = "url_refused"


class BodyTooLarge(TooLarge):
    """A request body over the service's size limit."""


class BadRequest(InputError):
    """A request the service cannot read (malformed JSON, a missing or invalid field)."""

    code = "invalid_request"


class UnsupportedMediaType(InputError):
    """A request body of the wrong content type."""

    code = "unsupported_media_type"


#: most specific first
_STATUS: tuple[tuple[type[LookalikeError], int], ...] = (
    (Unauthorized, 401),
    (RateLimited, 429),
    (Busy, 503),
    (Duplicate, 409),
    (errors.NotFound, 404),
    (UnsupportedMediaType, 415),
    (UrlRefused, 422),
    (errors.OverBudget, 422),
    (errors.TooLarge, 413),
    (errors.UnsupportedFormat, 415),
    (errors.NotAnImage, 422),
    (errors.CorruptImage, 422),
    (errors.FetchError, 422),
    (BadRequest, 400),
    (errors.FingerprintError, 400),
    (errors.InputError, 400),
    (errors.StoreError, 503),
    (errors.ConfigError, 500),
)


def status_of(err: LookalikeError) -> int:
    """The HTTP status for ``err``."""
    return next((status for kind, status in _STATUS if isinstance(err, kind)), 500)


def error_response(exc: LookalikeError, *, method: str, path: str) -> JSONResponse:
    """The answer for ``exc``: its status, body and headers. A server-side failure (5xx) is logged
    in full and answered without its message, which may carry a path or a connection string."""
    status = status_of(exc)
    extra = exc.details if isinstance(exc, Duplicate) else {}
    headers: dict[str, str] = dict(NOSNIFF)
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, RateLimited | Busy):
        headers["Retry-After"] = str(max(1, round(exc.retry_after_s + 0.5)))
    message = str(exc)
    if status >= 500 and not isinstance(exc, Busy):
        log.error("%s %s: %s: %s", method, path, type(exc).__name__, exc)
        message = _PUBLIC_MESSAGES.get(status, "internal server error")
    return JSONResponse(error_body(exc.code, message, **extra), status_code=status, headers=headers)


#: what a client is told of a server-side failure (the log has the rest)
_PUBLIC_MESSAGES = {503: "the database is unavailable or refused the operation; try again"}


def _lookalike_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LookalikeError)
    return error_response(exc, method=request.method, path=request.url.path)


#: parts of pydantic's error locations that name no field: where a parameter came from, and the tags
#: of the discriminated union ``schemas.HashCheckBody`` (one item or a batch)
_NOT_A_PLACE = frozenset({"body", "query", "path", "single", "batch"})


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse(error_body("malformed_json", "the request body is not valid JSON"), status_code=400)
    parts = []
    for e in errors:
        where = ".".join(str(p) for p in e.get("loc", ()) if p not in _NOT_A_PLACE)
        # pydantic prefixes what a validator raised with "Value error, ": the rest is our own sentence
        message = str(e.get("msg", "invalid")).removeprefix("Value error, ")
        parts.append(f"{where or 'body'}: {message}")
    return JSONResponse(error_body("invalid_request", "; ".join(parts) or "invalid request"), status_code=422)


def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if isinstance(exc.__cause__, LookalikeError):  # FastAPI wraps errors raised while it reads a body
        return _lookalike_error(request, exc.__cause__)
    if exc.status_code == 400 and "parsing the body" in str(exc.detail):
        return JSONResponse(error_body("malformed_body", "the request body cannot be parsed"), status_code=400)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    message = "no such endpoint" if exc.status_code == 404 else str(exc.detail)
    return JSONResponse(error_body(code, message), status_code=exc.status_code, headers=exc.headers)


def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("%s %s failed", request.method, request.url.path, exc_info=exc)
    return JSONResponse(error_body("internal_error", "internal server error"), status_code=500, headers=NOSNIFF)


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error in the one shape."""
    app.add_exception_handler(LookalikeError, _lookalike_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
