"""ASGI middleware that settles a request before its body is read: the API key (401, 429), the
content type (415) and the body's size (413), whether declared by Content-Length or streamed.
JSON bodies get a small limit of their own; every answer gets ``X-Content-Type-Options: nosniff``.

Being ASGI middleware, it runs before FastAPI parses a body (FastAPI reads a request's body before
it resolves the route's dependencies, so a key checked in a dependency was checked after the body
was in memory: a 50 MB JSON body without a key had cost 1.3 GB).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.errors import LookalikeError, error_body
from lookalike.service.errors import NOSNIFF, BodyTooLarge, error_response

__all__ = ["RequestGuard"]

_NOSNIFF_HEADER = [(k.lower().encode(), v.encode()) for k, v in NOSNIFF.items()]


class RequestGuard:
    """``media_types`` maps (method, path pattern) to the content type its body must have; bodies of
    type ``application/json`` may be ``max_json_bytes`` long, others ``max_body_bytes``.
    ``authenticate`` turns an ``Authorization`` header into a tenant (raising ``Unauthorized`` or
    ``RateLimited``) for every path under ``protected``; the tenant is left in the request's state
    under ``tenant_key``."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body_bytes: int,
        max_json_bytes: int,
        media_types: Mapping[tuple[str, str], str],
        authenticate: Callable[[str], str],
        tenant_key: str,
        protected: str = "/v1/",
    ) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_bytes = max_json_bytes
        self.media_types = [(m, re.compile(p), t) for (m, p), t in media_types.items()]
        self.authenticate = authenticate
        self.tenant_key = tenant_key
        self.protected = protected

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        path: str = scope["path"]
        if path.startswith(self.protected):
            try:
                tenant = self.authenticate(headers.get("authorization", ""))
            except LookalikeError as err:
                await _send_error(send, err, scope)
                return
            scope.setdefault("state", {})[self.tenant_key] = tenant
        wanted = next((t for m, p, t in self.media_types if m == scope["method"] and p.fullmatch(path)), None)
        limit = self.max_body_bytes
        if wanted is not None:
            given = headers.get("content-type", "").split(";")[0].strip().lower()
            if given != wanted:
                shown = given or "none"
                await _answer(send, 415, "unsupported_media_type", f"expected a {wanted} body, got {shown}")
                return
            if wanted == "application/json":
                limit = self.max_json_bytes
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            await _answer(send, 413, "too_large", f"request body over the limit of {limit:,} bytes")
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(f"request body over the limit of {limit:,} bytes")
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                given = list(message.get("headers", []))
                if not any(k.lower() == _NOSNIFF_HEADER[0][0] for k, _ in given):
                    message = {**message, "headers": [*given, *_NOSNIFF_HEADER]}
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, "too_large", f"request body over the limit of {limit:,} bytes")


async def _send_error(send: Send, err: LookalikeError, scope: Scope) -> None:
    response = error_response(err, method=scope["method"], path=scope["path"])
    await send({"type": "http.response.start", "status": response.status_code, "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *_NOSNIFF_HEADER,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
