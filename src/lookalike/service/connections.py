"""Connections that cannot exhaust the server: a cap per client address, a reserve for everyone
else, and a deadline for a request's headers.

Every open connection holds a file descriptor, and a worker has few (1,024 is what a systemd unit
gets unless it says otherwise). A slow-headers attack (slowloris) opens connections and sends each
a few header bytes now and then: with no deadline and no cap, 1,100 such connections from one
address left a worker with 1,023 descriptors open and every other client refused.
``GuardedHttpProtocol`` (uvicorn's httptools protocol, which ``lookalike serve`` hands uvicorn by
import string) answers that three ways:

* **headers by a deadline**: a request whose headers are not complete ``header_timeout_s`` after
  its first byte (or after the connection opened) is answered 408 and its connection closed.
  A keep-alive connection waiting for its next request is uvicorn's (5 s);
* **a cap per client address** (``max_connections_per_client``; an IPv6 client counts by its /64,
  the block one host is given): a connection beyond it is answered 503 at once and closed;
* **a reserve for everyone else**: a worker keeps connections to its descriptor limit less
  ``RESERVED_DESCRIPTORS`` (the database, stored files, its decoding processes' pipes, logs), and
  one address may hold at most a quarter of that, whatever the cap, so three quarters stay for
  other clients. A connection beyond the total is answered 503 and closed.

Counts are per worker process (each ``--workers`` process has its own descriptors). A request
body that arrives slowly is not timed out here: it holds one of its address's connections.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import resource
import time
from collections import Counter
from dataclasses import dataclass

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from lookalike.service.settings import settings_from_environment

__all__ = ["RESERVED_DESCRIPTORS", "ConnectionGuard", "GuardedHttpProtocol"]

log = logging.getLogger("lookalike.service")

#: descriptors a worker keeps for other than connections: its database (SQLite: the file, its WAL
#: and shared memory; PostgreSQL: a socket), files being stored or sent, the pipes of its decoding
#: processes, the rate-limit file, logs and Python's own
RESERVED_DESCRIPTORS = 128
#: how often a refusal is logged, at most (an attack would otherwise write a line per connection)
_LOG_EVERY_S = 10.0

_TIMEOUT = b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
_BUSY = b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Length: 0\r\n\r\n"


@dataclass
class ConnectionGuard:
    """The counts of one worker process (one event loop: no locking)."""

    max_total: int
    max_per_client: int
    header_timeout_s: float

    def __post_init__(self) -> None:
        self.open: Counter[str] = Counter()
        self.total = 0
        self._logged = 0.0

    @classmethod
    def for_this_process(cls, *, max_per_client: int, header_timeout_s: float) -> ConnectionGuard:
        """Limits from this process's descriptor limit (the soft one: what ``accept`` runs into)."""
        soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        total = max(16, soft - RESERVED_DESCRIPTORS) if soft != resource.RLIM_INFINITY else 1 << 20
        return cls(max_total=total, max_per_client=max(1, min(max_per_client, total // 4)),
                   header_timeout_s=header_timeout_s)  # fmt: skip

    def admit(self, client: str) -> bool:
        """Count a new connection from ``client``; False (and not counted) when it must be refused."""
        if self.total >= self.max_total or self.open[client] >= self.max_per_client:
            now = time.monotonic()
            if now - self._logged > _LOG_EVERY_S:
                self._logged = now
                log.warning(
                    "refusing connections: %d open (limit %d), %d from one client (limit %d)",
                    self.total, self.max_total, self.open[client], self.max_per_client,
                )  # fmt: skip
            return False
        self.open[client] += 1
        self.total += 1
        return True

    def release(self, client: str) -> None:
        """A counted connection ended."""
        self.total -= 1
        self.open[client] -= 1
        if self.open[client] <= 0:
            del self.open[client]


def client_key(host: str | None) -> str:
    """Whose connection this is: the IPv4 address, or the /64 of an IPv6 address."""
    if not host:
        return ""
    try:
        address = ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((int(address) >> 64 << 64, 64)))
    return str(address)


_guard: ConnectionGuard | None = None


def _the_guard() -> ConnectionGuard:
    global _guard
    if _guard is None:
        settings = settings_from_environment()
        _guard = ConnectionGuard.for_this_process(
            max_per_client=settings.max_connections_per_client, header_timeout_s=settings.header_timeout_s
        )
    return _guard


class GuardedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with the guard of the module docstring."""

    _counted: str | None = None
    _header_deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        guard = _the_guard()
        key = client_key(self.client[0] if self.client else None)
        if not guard.admit(key):
            transport.write(_BUSY)
            transport.close()
            return
        self._counted = key
        self._arm(guard.header_timeout_s)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._counted is not None:
            _the_guard().release(self._counted)
            self._counted = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        waiting = self.cycle is None or self.cycle.response_complete
        if waiting and self._header_deadline is None and self._counted is not None:
            self._arm(_the_guard().header_timeout_s)  # the first bytes of the next request
        before = self.cycle
        super().data_received(data)
        if self.cycle is not before:  # a request's headers are complete
            self._disarm()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._header_deadline = self.loop.call_later(seconds, self._headers_too_slow)

    def _disarm(self) -> None:
        if self._header_deadline is not None:
            self._header_deadline.cancel()
            self._header_deadline = None

    def _headers_too_slow(self) -> None:
        self._header_deadline = None
        if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
            self.transport.write(_TIMEOUT)
            self.transport.close()
