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
   the body is streamed and cut at the byte cap, and the whole fetch at the
   time cap.

Hosts on the operator's allow-list (``--allow-url-host``) skip the address
check, for internal image sources; their redirects are checked like any other.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable, Iterable

import httpx

from lookalike.config import FetchLimits
from lookalike.decode import Source
from lookalike.errors import FetchError, TooLarge
from lookalike.service.errors import UrlRefused

__all__ = ["Resolver", "SafeFetcher", "refusal_reason", "system_resolver"]

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
#: host name and port to the addresses to connect to
Resolver = Callable[[str, int], list[str]]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = ipaddress.IPv6Network("64:ff9b:1::/48")
_CGNAT = ipaddress.IPv4Network("100.64.0.0/10")


def system_resolver(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to (the system resolver, as ``connect`` would use it)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise FetchError(f"{host}: cannot resolve ({exc})") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def refusal_reason(address: Address) -> str | None:
    """Why the service must not connect to ``address``, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address.teredo is not None:
            embedded = address.teredo[1]
        if embedded is None and (address in _NAT64 or address in _NAT64_LOCAL):
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            inner = refusal_reason(embedded)
            return f"embeds {embedded}, which {inner}" if inner else None
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
    """Fetches http(s) URLs for untrusted users (see the module docstring). Thread-safe."""

    def __init__(
        self,
        limits: FetchLimits,
        *,
        allow_hosts: Iterable[str] = (),
        resolver: Resolver = system_resolver,
        verify: bool = True,
    ) -> None:
        self.limits = limits
        self.allow_hosts = frozenset(h.lower().strip("[]") for h in allow_hosts)
        self.resolver = resolver
        self.verify = verify

    def _target(self, url: httpx.URL, original: str) -> str:
        """The checked address to connect to for ``url``. Raises ``UrlRefused``."""
        if url.scheme not in ("http", "https"):
            raise UrlRefused(f"{original}: only http and https URLs are fetched, not {url.scheme or 'this'}")
        if url.userinfo:
            raise UrlRefused(f"{original}: URLs with credentials are not fetched")
        host = url.host.lower()
        if not host:
            raise UrlRefused(f"{original}: no host")
        port = url.port or (443 if url.scheme == "https" else 80)
        addresses = self.resolver(host, port)
        if not addresses:
            raise FetchError(f"{original}: {host} resolves to no address")
        if host in self.allow_hosts:
            return addresses[0]
        for text in addresses:
            try:
                address = ipaddress.ip_address(text.split("%")[0])
            except ValueError as exc:
                raise UrlRefused(f"{original}: {host} resolves to an unreadable address {text!r}") from exc
            why = refusal_reason(address)
            if why is not None:
                raise UrlRefused(f"{original}: refused, {host} resolves to {address}, which {why}")
        return addresses[0]

    def fetch(self, url: str) -> Source:
        """The bytes at ``url``. Raises ``UrlRefused``, ``FetchError`` or ``TooLarge``."""
        cap = self.limits.max_bytes
        deadline = time.monotonic() + self.limits.read_timeout_s
        try:
            current = httpx.URL(url)
        except (httpx.InvalidURL, TypeError, ValueError) as exc:
            raise UrlRefused(f"{url}: not a valid URL ({exc})") from exc
        try:
            with httpx.Client(follow_redirects=False, trust_env=False, verify=self.verify, http2=False) as client:
                for _ in range(self.limits.max_redirects + 1):
                    address = self._target(current, url)
                    pinned = current.copy_with(host=address)
                    host_header = current.netloc.decode("ascii", "replace")
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise FetchError(f"{url}: timed out")
                    timeout = httpx.Timeout(remaining, connect=min(self.limits.connect_timeout_s, remaining))
                    request = client.build_request(
                        "GET",
                        pinned,
                        headers={"Host": host_header, "Accept": "image/*", "User-Agent": "lookalike"},
                        timeout=timeout,
                        extensions={"sni_hostname": current.host} if current.scheme == "https" else {},
                    )
                    resp = client.send(request, stream=True)
                    try:
                        if resp.is_redirect:
                            location = resp.headers.get("location", "")
                            if not location:
                                raise FetchError(f"{url}: redirect without a Location")
                            try:
                                current = current.join(location)
                            except httpx.InvalidURL as exc:
                                raise UrlRefused(f"{url}: redirected to an invalid URL") from exc
                            continue
                        if resp.status_code != 200:
                            raise FetchError(f"{url}: the server answered HTTP {resp.status_code}")
                        declared = resp.headers.get("content-length", "")
                        if declared.isdigit() and int(declared) > cap:
                            raise TooLarge(f"{url}: {int(declared):,} bytes, over the limit of {cap:,}")
                        chunks: list[bytes] = []
                        total = 0
                        for chunk in resp.iter_bytes():
                            total += len(chunk)
                            if total > cap:
                                raise TooLarge(f"{url}: over the limit of {cap:,} bytes")
                            if time.monotonic() > deadline:
                                raise FetchError(f"{url}: timed out")
                            chunks.append(chunk)
                        return Source(data=b"".join(chunks), name=url)
                    finally:
                        resp.close()
                raise FetchError(f"{url}: more than {self.limits.max_redirects} redirects")
        except httpx.TimeoutException as exc:
            raise FetchError(f"{url}: timed out") from exc
        except httpx.InvalidURL as exc:
            raise UrlRefused(f"{url}: invalid URL ({exc})") from exc
        except httpx.HTTPError as exc:
            raise FetchError(f"{url}: cannot fetch ({type(exc).__name__})") from exc
