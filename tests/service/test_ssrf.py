"""URL ingestion cannot be turned against the server's own network (SSRF).

Every hostile URL in the table is refused (``url_refused``, 422) without a
single request reaching the loopback servers below, which count what they
get; an operator's allowed host works, and its redirects are checked again.
"""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from lookalike.config import FetchLimits
from lookalike.errors import ConfigError, FetchError
from lookalike.service import ServiceSettings
from lookalike.service.errors import UrlRefused
from lookalike.service.fetch import SafeFetcher
from tests.conftest import ImageServer
from tests.service.conftest import Api, body, jpeg, make_api


class Redirector:
    """A loopback server that redirects ``/to?u=URL`` to URL and counts every request it gets."""

    def __init__(self) -> None:
        self.hits = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                outer.hits += 1
                target = parse_qs(urlsplit(self.path).query).get("u", ["/"])[0]
                self.send_response(302)
                self.send_header("Location", target)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


@pytest.fixture(scope="module")
def redirector() -> Iterator[Redirector]:
    r = Redirector()
    yield r
    r.stop()


@pytest.fixture(scope="module")
def ssrf_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """The service (SQLite: the address policy does not depend on the database) that trusts only
    the host name ``localhost`` on any port, as an operator's ``--allow-url-host 'localhost:*'`` would."""
    root: Path = tmp_path_factory.mktemp("ssrf")
    settings = ServiceSettings(
        db=str(root / "db.sqlite"), storage=root / "files", allow_url_hosts=frozenset({"localhost:*"})
    )
    yield from make_api(settings)


def hostile_urls(image_port: int, redirect_port: int) -> list[str]:
    """At least 30 URLs the service must refuse to fetch (the image server serves /files/pic)."""
    pic = f"{image_port}/files/pic"
    via = f"http://localhost:{redirect_port}/to?u="  # localhost is allowed; where it redirects is not
    return [
        # loopback, spelled every way
        f"http://127.0.0.1:{pic}",
        f"http://127.0.0.2:{pic}",
        f"http://2130706433:{pic}",  # decimal
        f"http://017700000001:{pic}",  # octal
        f"http://0177.0.0.1:{pic}",  # dotted octal
        f"http://0x7f000001:{pic}",  # hex
        f"http://0x7f.0.0.1:{pic}",  # dotted hex
        f"http://127.1:{pic}",  # short form
        f"http://[::1]:{pic}",
        f"http://[::ffff:127.0.0.1]:{pic}",  # IPv4-mapped IPv6
        f"http://[0:0:0:0:0:ffff:7f00:1]:{pic}",
        f"http://[64:ff9b::7f00:1]:{pic}",  # NAT64
        f"http://[2002:7f00:1::1]:{pic}",  # 6to4
        f"http://0.0.0.0:{pic}",
        f"http://0:{pic}",
        "http://[::]/",
        # a DNS name that resolves to loopback (or this machine's own private address), not on the allow-list
        f"http://{socket.gethostname()}:{pic}",
        # cloud metadata and link-local
        "http://169.254.169.254/latest/meta-data/",
        "http://[fe80::1]/",
        "http://[::ffff:169.254.169.254]/",
        # private, CGNAT, multicast, broadcast, documentation, unique-local
        "http://10.0.0.1/",
        "http://172.16.5.4/",
        "http://192.168.1.1/",
        "http://100.64.0.1/",
        "http://224.0.0.1/",
        "http://[ff02::1]/",
        "http://255.255.255.255/",
        "http://192.0.2.10/",
        "http://[fc00::1]/",
        # schemes other than http(s), credentials
        "file:///etc/passwd",
        f"gopher://127.0.0.1:{image_port}/_GET%20/files/pic",
        "ftp://example.com/pic.jpg",
        f"dict://127.0.0.1:{image_port}/",
        "http://user:secret@example.com/pic.jpg",
        # redirects from an allowed host to where it may not go
        f"{via}http://127.0.0.1:{pic}",
        f"{via}http://169.254.169.254/latest/meta-data/",
        f"{via}http://[::1]:{pic}",
        f"{via}http://10.1.2.3/",
        f"{via}file:///etc/passwd",
    ]


ROWS = len(hostile_urls(1, 2))


def test_the_table_has_at_least_30_rows() -> None:
    assert ROWS >= 30


@pytest.mark.parametrize("row", range(ROWS))
def test_a_hostile_url_is_refused(row: int, ssrf_api: Api, image_server: ImageServer, redirector: Redirector) -> None:
    image_server.add("pic", jpeg(1))
    url = hostile_urls(image_server.port, redirector.port)[row]
    alice = ssrf_api.key("alice")
    before = redirector.hits
    r = ssrf_api.client.post("/v1/images/from-url", headers=alice, json={"url": url})
    assert r.status_code == 422, (url, r.text)
    err = body(r)["error"]
    assert err["code"] in ("url_refused", "fetch_failed"), (url, err)
    if err["code"] == "fetch_failed":  # only a name that does not resolve at all may fail this way
        assert "cannot resolve" in err["message"], (url, err)
    # no address in any spelling: a refusal never tells what a name resolved to
    assert not re.search(r"\d+\.\d+\.\d+\.\d+|[0-9a-f]*:[0-9a-f]*:|0x[0-9a-f]+", err["message"], re.I), err
    assert redirector.hits - before <= 1  # at most the allowed first hop, never the redirect target
    assert ssrf_api.stored_keys() == set()


def fetch(fetcher: SafeFetcher, url: str) -> bytes:
    """What ``fetcher`` gets from ``url`` (on an event loop of its own)."""
    try:
        return asyncio.run(fetcher.fetch(url)).data
    finally:
        fetcher.close()


def test_a_name_resolving_to_loopback_is_refused_unless_allowed(image_server: ImageServer) -> None:
    url = image_server.add("pic", jpeg(1)).replace("127.0.0.1", "localhost")
    with pytest.raises(UrlRefused, match="resolves to an address that is loopback") as err:
        fetch(SafeFetcher(FetchLimits()), url)
    assert "127.0.0.1" not in str(err.value)  # what internal names resolve to is nobody's business
    assert fetch(SafeFetcher(FetchLimits(), allow_hosts=["localhost:*"]), url) == jpeg(1)


def test_an_allowed_host_is_allowed_on_the_ports_it_names(image_server: ImageServer, redirector: Redirector) -> None:
    """``HOST:PORT`` allows that port only, a bare ``HOST`` the web ports (80, 443): an internal
    host's other ports (its admin console, its database) stay out of reach."""
    url = image_server.add("ported", jpeg(3)).replace("127.0.0.1", "localhost")
    port = httpx.URL(url).port
    assert fetch(SafeFetcher(FetchLimits(), allow_hosts=[f"localhost:{port}"]), url) == jpeg(3)
    other_port = f"http://localhost:{redirector.port}/to?u=/"
    with pytest.raises(UrlRefused, match="loopback"):
        fetch(SafeFetcher(FetchLimits(), allow_hosts=[f"localhost:{port}"]), other_port)
    with pytest.raises(UrlRefused, match="loopback"):
        fetch(SafeFetcher(FetchLimits(), allow_hosts=["localhost"]), url)
    assert fetch(SafeFetcher(FetchLimits(), allow_hosts=["LocalHost", f"localhost:{port}"]), url) == jpeg(3)


@pytest.mark.parametrize("entry", ["localhost:0", "localhost:http", "localhost:99999", "[::1", ":8080", "a/b:80"])
def test_a_malformed_allowed_host_fails_at_start(entry: str, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--allow-url-host"):
        ServiceSettings(db=str(tmp_path / "db.sqlite"), storage=tmp_path / "files", allow_url_hosts=frozenset({entry}))


def test_an_allowed_host_works_through_the_api_with_its_redirects(ssrf_api: Api, image_server: ImageServer) -> None:
    image_server.add("pic2", jpeg(2))
    alice = ssrf_api.key("alice")
    url = image_server.url("/redirect/2/pic2").replace("127.0.0.1", "localhost")
    r = ssrf_api.client.post("/v1/images/from-url", headers=alice, json={"url": url, "id": "fetched"})
    assert r.status_code == 201, r.text
    assert ssrf_api.client.get("/v1/images/fetched/file", headers=alice).content == jpeg(2)
    again = ssrf_api.client.post("/v1/images/from-url", headers=alice, json={"url": url})
    assert again.status_code == 409 and body(again)["error"]["id"] == "fetched"
    loop = ssrf_api.client.post(
        "/v1/images/from-url", headers=alice, json={"url": image_server.url("/loop").replace("127.0.0.1", "localhost")}
    )
    assert loop.status_code == 422 and "redirects" in body(loop)["error"]["message"]
    big = ssrf_api.client.post(
        "/v1/images/from-url", headers=alice, json={"url": image_server.url("/huge").replace("127.0.0.1", "localhost")}
    )
    assert big.status_code in (413, 422)


def test_the_address_checked_is_the_address_connected_to(redirector: Redirector) -> None:
    """DNS rebinding: a name that answers a public address first and loopback next is connected to at
    the first answer (the one checked); the loopback server is never reached."""
    answers = [["198.51.100.7"], ["127.0.0.1"]]  # 198.51.100.0/24 is documentation space: refused too
    calls: list[str] = []

    def rebinding(host: str, port: int) -> list[str]:
        calls.append(host)
        return answers[min(len(calls) - 1, 1)]

    fetcher = SafeFetcher(FetchLimits(connect_timeout_s=0.5, read_timeout_s=1.0), resolver=rebinding)
    with pytest.raises(UrlRefused):
        fetch(fetcher, f"http://rebind.example:{redirector.port}/to?u=/")
    assert calls == ["rebind.example"]

    public = ["8.8.8.8", "127.0.0.1"]  # a public first answer: we connect there, never to the second
    hits = redirector.hits
    fetcher = SafeFetcher(FetchLimits(connect_timeout_s=0.5, read_timeout_s=1.0), resolver=lambda h, p: public)
    with pytest.raises(UrlRefused):  # every answer is checked: one private answer refuses the name
        fetch(fetcher, f"http://mixed.example:{redirector.port}/")
    # an allowed name is pinned to the address it resolved to: the request goes there (a transport
    # that records it stands in for the network: tests never connect beyond loopback)
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(503)

    pinned = SafeFetcher(
        FetchLimits(connect_timeout_s=0.5, read_timeout_s=1.0), resolver=lambda h, p: ["192.0.2.1"],
        allow_hosts=[f"pinned.example:{redirector.port}"], transport=httpx.MockTransport(record),
    )  # fmt: skip
    with pytest.raises(FetchError, match="503"):
        fetch(pinned, f"http://pinned.example:{redirector.port}/")
    assert [(r.url.host, r.headers["host"]) for r in sent] == [("192.0.2.1", f"pinned.example:{redirector.port}")]
    assert redirector.hits == hits


@pytest.mark.parametrize(
    "address",
    ["2001:0:4136:e378:8000:63bf:3fff:fdd2", "2001::1", "64:ff9b:1::808:808", "64:ff9b:1:ffff::1"],
    ids=["teredo-public-client", "teredo", "nat64-local-public", "nat64-local"],
)
def test_teredo_and_local_nat64_are_refused_whatever_they_embed(address: str) -> None:
    """Checked at the resolver and transport: a name resolving there is refused before any request."""
    sent: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, content=jpeg(1))

    fetcher = SafeFetcher(FetchLimits(), resolver=lambda h, p: [address], transport=httpx.MockTransport(record))
    with pytest.raises(UrlRefused) as err:
        fetch(fetcher, "http://tunnel.example/pic.jpg")
    assert sent == []
    assert "refused" in str(err.value) and not re.search(r"[0-9a-f]*:[0-9a-f]*:", str(err.value))
    literal = SafeFetcher(FetchLimits(), transport=httpx.MockTransport(record))
    with pytest.raises(UrlRefused):
        fetch(literal, f"http://[{address}]/pic.jpg")
    assert sent == []


def test_compressed_bodies_are_bounded_through_the_api(ssrf_api: Api, image_server: ImageServer) -> None:
    import gzip

    alice = ssrf_api.key("alice")
    nested = gzip.compress(gzip.compress(bytes(32 << 20), 9), 9)  # a few KB, 32 MB inflated twice over
    url = image_server.add("nested", nested, encoding="gzip, gzip").replace("127.0.0.1", "localhost")
    r = ssrf_api.client.post("/v1/images/from-url", headers=alice, json={"url": url + "?signature=s3cr3t"})
    assert r.status_code == 422 and body(r)["error"]["code"] == "fetch_failed"
    assert "s3cr3t" not in r.text and "localhost" not in r.text
    url = image_server.add("gz", gzip.compress(jpeg(7)), encoding="gzip").replace("127.0.0.1", "localhost")
    assert ssrf_api.client.post("/v1/images/from-url", headers=alice, json={"url": url}).status_code == 201
    assert ssrf_api.stored_keys() == ssrf_api.row_sources()
