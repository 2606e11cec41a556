"""Fixtures shared across the test folders: the sample pictures and a local HTTP server."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from tests.images import CORPUS, corpus_photos
from tests.pg import PostgresServer


@pytest.fixture(scope="session")
def corpus() -> Path:
    """The public benchmark corpus beside the repository; tests that need it skip without it."""
    if not (CORPUS / "photos").is_dir():
        pytest.skip(f"benchmark corpus not found at {CORPUS}")
    return CORPUS


@pytest.fixture(scope="session")
def ant_photos(corpus: Path) -> list[Path]:
    """The corpus's ant photos, sorted."""
    ants = [p for p in corpus_photos() if p.name.startswith("ants_")]
    if len(ants) < 4:
        pytest.skip("benchmark corpus has too few ant photos")
    return ants


class ImageServer:
    """A real HTTP server on 127.0.0.1 with a few misbehaving routes.

    ``/files/<name>``            the bytes registered with ``add``
    ``/redirect/<n>/<name>``     ``n`` redirects, then ``/files/<name>``
    ``/loop``                    redirects to itself forever
    ``/to-file``                 redirects to a ``file://`` address
    ``/missing``                 404
    ``/huge``                    declares and sends ``huge_bytes`` bytes
    ``/huge-undeclared``         sends ``huge_bytes`` bytes without a Content-Length
    ``/slow``                    says nothing for ``slow_s`` seconds

    A file added with ``encoding`` is sent with that ``Content-Encoding`` (its bytes as given);
    ``request_headers`` keeps the headers of the last request.
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.encodings: dict[str, str] = {}
        self.request_headers: dict[str, str] = {}
        self.huge_bytes = 4 * 1024 * 1024
        self.slow_s = 10.0
        self.stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                server.request_headers = {k.lower(): v for k, v in self.headers.items()}
                if parts[0] == "files" and len(parts) == 2 and parts[1] in server.files:
                    self._send(server.files[parts[1]], server.encodings.get(parts[1]))
                elif parts[0] == "redirect" and len(parts) == 3:
                    n = int(parts[1])
                    self._redirect(f"/redirect/{n - 1}/{parts[2]}" if n > 1 else f"/files/{parts[2]}")
                elif parts[0] == "loop":
                    self._redirect("/loop")
                elif parts[0] == "to-file":
                    self._redirect("file:///etc/passwd")
                elif parts[0] == "huge":
                    self._stream(declared=True)
                elif parts[0] == "huge-undeclared":
                    self._stream(declared=False)
                elif parts[0] == "slow":
                    server.stopping.wait(server.slow_s)
                    self._send(b"too late")
                else:
                    self.send_error(404)

            def _send(self, body: bytes, encoding: str | None = None) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                if encoding is not None:
                    self.send_header("Content-Encoding", encoding)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _stream(self, *, declared: bool) -> None:
                self.send_response(200)
                if declared:
                    self.send_header("Content-Length", str(server.huge_bytes))
                self.end_headers()
                chunk = b"\xff" * 65536
                for _ in range(server.huge_bytes // len(chunk)):
                    self.wfile.write(chunk)

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request: object, client_address: object) -> None:
                pass  # clients hang up on purpose in these tests (caps, timeouts)

        self._httpd = Server(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def add(self, name: str, data: bytes, *, encoding: str | None = None) -> str:
        """Serve ``data`` at ``/files/<name>`` (with ``Content-Encoding: encoding``); returns its URL."""
        self.files[name] = data
        if encoding is not None:
            self.encodings[name] = encoding
        return self.url(f"/files/{name}")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@pytest.fixture(scope="session")
def image_server() -> Iterator[ImageServer]:
    """A local HTTP server running in a thread for the whole session."""
    server = ImageServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture()
def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/picture.jpg"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A real PostgreSQL server (a throwaway cluster) for the whole session."""
    server = PostgresServer()
    yield server
    server.stop()
