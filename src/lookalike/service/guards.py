"""ASGI middleware that refuses a request before its body is read: the wrong content type (415)
and bodies over the size limit (413), whether declared by Content-Length or streamed."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lookalike.service.errors import BodyTooLarge, error_body

__all__ = ["RequestGuard"]


class RequestGuard:
    """``media_types`` maps (method, path pattern) to the content type its body must have."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, media_types: Mapping[tuple[str, str], str]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.media_types = [(m, re.compile(p), t) for (m, p), t in media_types.items()]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        wanted = next((t for m, p, t in self.media_types if m == scope["method"] and p.fullmatch(scope["path"])), None)
        if wanted is not None:
            given = headers.get("content-type", "").split(";")[0].strip().lower()
            if given != wanted:
                shown = given or "none"
                await _answer(send, 415, "unsupported_media_type", f"expected a {wanted} body, got {shown}")
                return
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_body_bytes:
            await _answer(send, 413, "too_large", f"request body over the limit of {self.max_body_bytes:,} bytes")
            return
        seen = 0
        started = False

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge(f"request body over the limit of {self.max_body_bytes:,} bytes")
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, watched)
        except BodyTooLarge:
            if not started:
                await _answer(send, 413, "too_large", f"request body over the limit of {self.max_body_bytes:,} bytes")


async def _answer(send: Send, status: int, code: str, message: str) -> None:
    body = json.dumps(error_body(code, message)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
