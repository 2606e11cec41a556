"""Fetching images from URLs that users send, without letting them reach what they should not (SSRF).

For the URL and every redirect, one at a time:

1. only ``http`` and ``https``, no credentials in the URL;
2. the host is resolved here, once; every address it resolves to must be a
   public unicast address: loopback, private, link-local (cloud metadata at
   169.254.169.254), CGNAT, multicast, unspecified, reserved, documentation,
   and IPv6 forms that embed such an IPv4 address (IPv4-mapped, 6to4, NAT64,
   Teredo) are refused. Numeric hosts in any spelling (decimal, octal, hex,
   short forms) resolve to the address they denote and are judged by it;
3. the connection goes to the address that was checked (the URL's host is
   replaced by it; ``Host`` and TLS SNI/certificate checks keep the name), so
   a second DNS answer cannot swap in another address (DNS rebinding);
4. redirects are followed by hand, each re-checked, at most ``max_redirects``;
   the body is asked for uncompressed, read raw and cut at the byte cap (at
   most one gzip/deflate layer is undone, through a bounded decompressor: see
   ``decode.BoundedBody``), and the whole fetch at the time cap.

Teredo (``2001::/32``) and local-use NAT64 (``64:ff9b:1::/48``) addresses are
refused whatever they embed: they reach hosts through relays and translators
whose own networks are out of sight. Fetching is asynchronous (the event loop
waits on sockets, not a thread per fetch); names are resolved in a small pool
of threads of the fetcher's own, so slow DNS ties up neither the event loop
nor the threads that serve other requests.

Messages for the client say why a URL was refused but never what a name
resolved to, nor the URL's query string; the server log has the details (with
query strings left out: a signed URL's query is a credential).

Hosts on the operator's allow-list (``--allow-url-host``) skip the address
check, for internal image sources, on the ports the entry names: ``HOST`` for
80 and 443, ``HOST:PORT`` for that port, ``HOST:*`` for any (an internal host's
other ports are often its admin consoles and databases); their redirects are
checked like any other URL.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx

from lookalike.config import FetchLimits, allowed_url_host
from lookalike.decode import REQUEST_HEADERS, BoundedBody, Source, redacted_url
from lookalike.errors import FetchError, TooLarge
from lookalike.service.errors import UrlRefused

__all__ = ["Resolver", "SafeFetcher", "refusal_reason", "system_resolver"]

log = logging.getLogger("lookalike.service.fetch")

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host name and port to the addresses to connect to
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_TEREDO = ipaddress.IPv6Network("2001::/32")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")
#: threads resolving names for one fetcher (``getaddrinfo`` blocks); lookups beyond wait their turn
_RESOLVER_THREADS = 4


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as ``connect`` would use it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError("cannot resolve the URL's host name") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal_reason(address: Address) -> str | None:
    """Why the service must not connect to ``address`` (words without the address itself), or None
    when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        if address in _TEREDO:
            return "is a Teredo tunnel address"
        if address in _NAT64_LOCAL:
            return "is a local-use NAT64 address"
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"embeds an IPv4 address that {inner}" if inner else None
    checks = (
        (address.is_unspecified, "is unspecified"),
        (address.is_loopback, "is loopback"),
        (address.is_link_local, "is link-local (cloud metadata lives there)"),
        (address.is_multicast, "is multicast"),
        (isinstance(address, ipaddress.IPv4Address) and address in _CGNAT, "is carrier-grade NAT space"),
        (address.is_private, "is private"),
        (address.is_reserved, "is reserved"),
        (not address.is_global, "is not a public address"),
    )
    return next((why for bad, why in checks if bad), None)


class SafeFetcher:
    """Fetches http(s) URLs for untrusted users (see the module docstring). Safe to share between
    requests of one event loop; ``close`` stops its resolver threads."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        allow_hosts: Iterable[str] = (),
        resolver: Resolver = system_resolver,
        verify: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.limits = limits
        #: host to the ports it may be fetched on (None: every port), from ``allowed_url_host``
        self.allow_hosts: dict[str, tuple[int, ...] | None] = {}
        for entry in allow_hosts:
            host, ports = allowed_url_host(entry)
            known = self.allow_hosts.get(host, ())
            self.allow_hosts[host] = None if ports is None or known is None else (*known, *ports)
        self.resolver = resolver
        self.verify = verify
        self.transport = transport  # tests hand in httpx.MockTransport: nothing leaves the process
        self._resolving = ThreadPoolExecutor(_RESOLVER_THREADS, thread_name_prefix="lookalike-resolve")

    def close(self) -> None:
        """Stop the resolver threads (lookups under way finish on their own)."""
        self._resolving.shutdown(wait=False, cancel_futures=True)

    async def _target(self, url: httpx.URL) -> str:
        """The checked address to connect to for ``url``. Raises ``UrlRefused``."""
        if url.scheme not in ("http", "https"):
            raise UrlRefused(f"only http and https URLs are fetched, not {url.scheme or 'this'}")
        if url.userinfo:
            raise UrlRefused("URLs with credentials are not fetched")
        host = url.host.lower()
        if not host:
            raise UrlRefused("the URL has no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        loop = asyncio.get_running_loop()
        addresses = await loop.run_in_executor(self._resolving, self.resolver, host, port)
        if not addresses:
            raise FetchError("the URL's host name resolves to no address")
        allowed_ports = self.allow_hosts.get(host, ())
        if allowed_ports is None or port in allowed_ports:
            return addresses[0]
        for text in addresses:
            try:
                address = ipaddress.ip_address(text.split("%")[0])
            except ValueError as exc:
                raise UrlRefused("the URL's host resolves to an unreadable address") from exc
            why = refusal_reason(address)
            if why is not None:
                log.warning("refused to fetch %s: %s resolves to %s, which %s", redacted_url(str(url)), host, text, why)
                return_why = (
                    "a literal address that" if _is_literal(host) else "a name that resolves to an address that"
                )
                raise UrlRefused(f"refused: the URL's host is {return_why} {why}")
        return addresses[0]

    async def fetch(self, url: str) -> Source:
        """The bytes at ``url``, within the byte and time caps. Raises ``UrlRefused``, ``FetchError``
        or ``TooLarge``."""
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UrlRefused("not a valid URL") from exc
        shown = redacted_url(url)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self.limits.read_timeout_s):
                return await self._fetch(current, url)
        except TimeoutError as exc:
            log.info("fetch of %s timed out after %.1f s", shown, time.monotonic() - started)
            raise FetchError(f"the URL did not answer within {self.limits.read_timeout_s:g} s") from exc
        except httpx.InvalidURL as exc:
            raise UrlRefused("not a valid URL") from exc
        except httpx.HTTPError as exc:
            log.info("fetch of %s failed: %s: %s", shown, type(exc).__name__, exc)
            raise FetchError(f"the URL cannot be fetched ({_kind_of(exc)})") from exc

    async def _fetch(self, current: httpx.URL, url: str) -> Source:
        cap = self.limits.max_bytes
        connect_s = self.limits.connect_timeout_s
        async with httpx.AsyncClient(
            follow_redirects=False, trust_env=False, verify=self.verify, http2=False, transport=self.transport,
            timeout=httpx.Timeout(self.limits.read_timeout_s, connect=connect_s),
        ) as client:  # fmt: skip
            for _ in range(self.limits.max_redirects + 1):
                address = await self._target(current)
                pinned = current.copy_with(host=address)
                request = client.build_request(
                    "GET",
                    pinned,
                    headers={"Host": current.netloc.decode("ascii", "replace"), **REQUEST_HEADERS},
                    extensions={"sni_hostname": current.host} if current.scheme == "https" else {},
                )
                resp = await client.send(request, stream=True)
                try:
                    if resp.is_redirect:
                        location = resp.headers.get("location", "")
                        if not location:
                            raise FetchError("the URL redirects without a Location")
                        try:
                            current = current.join(location)
                        except httpx.InvalidURL as exc:
                            raise UrlRefused("the URL redirects to an invalid URL") from exc
                        continue
                    if resp.status_code != 200:
                        raise FetchError(f"the URL's server answered HTTP {resp.status_code}")
                    declared = resp.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > cap:
                        raise TooLarge(f"the URL's body is {int(declared):,} bytes, over the limit of {cap:,}")
                    body = BoundedBody(resp.headers.get("content-encoding", ""), cap=cap, name="the URL")
                    async for chunk in resp.aiter_raw():
                        body.feed(chunk)
                    return Source(data=body.finish(), name=url)
                finally:
                    await resp.aclose()
            raise FetchError(f"the URL redirects more than {self.limits.max_redirects} times")


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host.split("%")[0])
    except ValueError:
        return False
    return True


def _kind_of(exc: httpx.HTTPError) -> str:
    """What went wrong, in words that name no address or library."""
    if isinstance(exc, httpx.ConnectError):
        return "cannot connect"
    if isinstance(exc, httpx.RemoteProtocolError):
        return "the server broke the HTTP protocol"
    if isinstance(exc, httpx.ReadError):
        return "the connection broke"
    return "network error"
