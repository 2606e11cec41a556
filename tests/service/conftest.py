"""Fixtures for the service: the app on a real SQLite file or a real PostgreSQL database (every test
that takes ``api`` runs on both), API keys, pictures, and a real ``lookalike serve`` process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import httpx
import pytest

from lookalike.index.store.interface import open_store
from lookalike.index.store.keys import create_api_key
from lookalike.service import ServiceSettings, create_app
from tests.images import encode, photo
from tests.index.conftest import cli_command, cli_env
from tests.pg import PostgresServer

with warnings.catch_warnings():
    # Starlette's TestClient warns on import that it wants httpx2 (see ../shared/ENVIRONMENT.md)
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient` is deprecated")
    from fastapi.testclient import TestClient


def jpeg(seed: int, width: int = 480, height: int = 360, quality: int = 90) -> bytes:
    """A photo-like JPEG; distinct seeds give unrelated pictures."""
    return encode(photo(width, height, seed=seed), "JPEG", quality=quality)


def edited(seed: int, kind: str = "smaller") -> bytes:
    """An edited copy of ``jpeg(seed)``: made smaller, recompressed, or mirrored."""
    from PIL import Image

    im = photo(480, 360, seed=seed)
    if kind == "smaller":
        return encode(im.resize((320, 240), Image.Resampling.LANCZOS), "JPEG", quality=80)
    if kind == "mirrored":
        return encode(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=85)
    if kind == "q60":
        return encode(im, "JPEG", quality=60)
    if kind == "webp":
        return encode(im, "WEBP", quality=80)
    raise AssertionError(kind)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database: an SQLite file, or a database on the real PostgreSQL server."""
    if request.param == "sqlite":
        return str(tmp_path / "service.sqlite")
    server: PostgresServer = request.getfixturevalue("postgres")
    return server.new_database()


@pytest.fixture
def settings(db_url: str, tmp_path: Path) -> ServiceSettings:
    return ServiceSettings(db=db_url, storage=tmp_path / "files")


@dataclass
class Api:
    """The app behind a test client, with a key maker."""

    client: TestClient
    settings: ServiceSettings

    def key(self, tenant: str) -> dict[str, str]:
        """Headers carrying a new API key of ``tenant``."""
        store = open_store(self.settings.db)
        try:
            key, _ = create_api_key(store, tenant)
        finally:
            store.close()
        return {"Authorization": f"Bearer {key}"}

    def upload(self, headers: dict[str, str], data: bytes, **fields: str) -> httpx.Response:
        return self.client.post("/v1/images", headers=headers, files={"file": ("p.jpg", data)}, data=fields)

    def check(self, headers: dict[str, str], data: bytes) -> httpx.Response:
        return self.client.post("/v1/check", headers=headers, files={"file": ("q.jpg", data)})

    def stored_keys(self) -> set[str]:
        """Every file the storage folder holds."""
        return self.client.app.state.service.storage.keys()  # type: ignore[attr-defined, no-any-return]

    def row_sources(self) -> set[str]:
        """The storage key of every file row of every tenant."""
        store = open_store(self.settings.db)  # the service's database, as another process sees it
        out: set[str] = set()
        try:
            for scope in store.scope_names().values():
                for record in store.images(scope, limit=100_000):
                    out.update(f.source for f in record.files)
        finally:
            store.close()
        return out


def make_api(settings: ServiceSettings) -> Iterator[Api]:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        yield Api(client, settings)


@pytest.fixture
def api(settings: ServiceSettings) -> Iterator[Api]:
    """The service on a fresh database (SQLite and PostgreSQL) and storage folder."""
    yield from make_api(settings)


@pytest.fixture
def small_api(settings: ServiceSettings) -> Iterator[Api]:
    """The service with a 200 KB upload limit and a tight rate limit (5 requests, then 1/s)."""
    yield from make_api(replace(settings, max_upload_bytes=200_000, rate_per_s=1.0, burst=5))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Served:
    """A real ``lookalike serve`` process on loopback."""

    def __init__(
        self, db: str, storage: Path, *, workers: int, extra: tuple[str, ...] = (), max_files: int | None = None
    ) -> None:
        self.db, self.storage, self.workers = db, storage, workers
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = storage.with_name(storage.name + f"-{self.port}.log")
        args = [*cli_command(), "serve", "--db", db, "--storage", str(storage), "--port", str(self.port)]
        args += ["--workers", str(workers), "--log-level", "warning", *extra]
        env = {**cli_env(), "PYTHONWARNINGS": "error::DeprecationWarning:lookalike"}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                args, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                preexec_fn=None if max_files is None else lambda: _soft_file_limit(max_files),
            )  # fmt: skip
        self._wait_until_up()

    def _wait_until_up(self, timeout_s: float = 90.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"lookalike serve exited: {self.log.read_text()}")
            try:
                if httpx.get(self.url + "/healthz", timeout=2).status_code == 200 and self.workers_up():
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"lookalike serve did not come up: {self.log.read_text()}")

    def worker_pids(self) -> list[int]:
        """The worker processes (children of the supervisor) when there are several."""
        out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(self.proc.pid)], capture_output=True, text=True)
        pids = [int(p) for p in out.stdout.split()]
        # uvicorn's supervisor also runs a resource tracker when it spawns workers
        return [p for p in pids if "resource_tracker" not in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]

    def workers_up(self) -> bool:
        return self.workers == 1 or len(self.worker_pids()) >= self.workers

    def key(self, tenant: str) -> dict[str, str]:
        store = open_store(self.db)
        try:
            key, _ = create_api_key(store, tenant)
        finally:
            store.close()
        return {"Authorization": f"Bearer {key}"}

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")


def _soft_file_limit(n: int) -> None:
    """In the server's process, before it starts: ``ulimit -Sn n`` (what a systemd unit gets)."""
    import resource

    resource.setrlimit(resource.RLIMIT_NOFILE, (n, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """Start ``lookalike serve`` processes (stopped after the test)."""
    started: list[Served] = []

    def start(
        db: str,
        *,
        workers: int = 2,
        storage: Path | None = None,
        extra: tuple[str, ...] = (),
        max_files: int | None = None,
    ) -> Served:
        s = Served(db, storage or tmp_path / "files", workers=workers, extra=extra, max_files=max_files)
        started.append(s)
        return s

    yield start
    for s in started:
        s.stop()


def body(r: httpx.Response) -> Any:
    """The JSON of a response (with the response shown when it is not JSON)."""
    assert r.headers.get("content-type", "").startswith("application/json"), (r.status_code, r.text[:200])
    return r.json()
