"""A Dask ``LocalCluster`` (two single-threaded worker processes) and a local S3 server (moto)
for the scale-out tests, both started here and stopped when their module is done."""

from __future__ import annotations

import io
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("dask.distributed")
pytest.importorskip("pyarrow")

from tests.images import corpus_photos, encode  # noqa: E402
from tests.scan.conftest import make_tree  # noqa: E402

#: the copies ``add_family`` writes beside the original, under names that say nothing of what they are
FAMILY = {
    "original": "p3.jpg", "enlarged": "p1.jpg", "recompressed": "p2.jpg", "lossless": "p4.png", "lossless2": "p0.webp",
}  # fmt: skip


def start_cluster(workers: int) -> tuple[Any, Any]:
    """A ``LocalCluster`` of ``workers`` single-threaded processes on 127.0.0.1 and its client."""
    from dask.distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=workers, threads_per_worker=1, processes=True, dashboard_address="127.0.0.1:0", host="127.0.0.1"
    )
    return cluster, Client(cluster)


@pytest.fixture(scope="module")
def client() -> Iterator[Any]:
    """A client of a two-worker local cluster, for every test of a module."""
    cluster, c = start_cluster(2)
    yield c
    c.close()
    cluster.close()


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The generated tree ``find``'s tests use: three groups, two singles, two unreadable files."""
    return make_tree(tmp_path_factory.mktemp("scale") / "tree")


def add_family(root: Path) -> dict[str, Path]:
    """A real photo (an enlargement is told by the way real detail fades) and copies that a keeper
    choice must see through, in ``root``: an enlargement to 150 % (the most pixels: the quality
    policy ``DEFAULT_KEEP`` would keep it), a recompression at quality 60 of the same size, and the
    original's pixels stored losslessly twice, as PNG and as WebP (only their pixels, compared at
    full size, say which way they were made); the original is the oldest file."""
    from PIL import Image

    photos = corpus_photos()
    if not photos:
        pytest.skip("the public benchmark corpus is not beside the repository")
    im = Image.open(photos[0]).convert("RGB")
    im = im.resize((480, round(480 * im.height / im.width)), Image.Resampling.LANCZOS)
    w, h = im.size
    original = encode(im, "JPEG", quality=95)
    files = {
        "original": original,
        "enlarged": encode(im.resize((w * 3 // 2, h * 3 // 2), Image.Resampling.LANCZOS), "JPEG", quality=90),
        "recompressed": encode(im, "JPEG", quality=60),
        "lossless": encode(Image.open(io.BytesIO(original)).convert("RGB"), "PNG"),
        "lossless2": encode(Image.open(io.BytesIO(original)).convert("RGB"), "WEBP", lossless=True),
    }
    root.mkdir(parents=True, exist_ok=True)
    out: dict[str, Path] = {}
    for i, (role, data) in enumerate(files.items()):
        path = out[role] = root / FAMILY[role]
        path.write_bytes(data)
        os.utime(path, ns=(1_700_000_000_000_000_000 + i * 3_600_000_000_000,) * 2)  # an hour apart, original first
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def s3_server() -> Iterator[str]:
    """A moto S3 server on 127.0.0.1, and the standard AWS variables pointing at it (set before any
    cluster of the module starts, so that its workers inherit them). Yields the endpoint URL."""
    pytest.importorskip("s3fs")
    exe = shutil.which("moto_server", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("moto[server] is not installed")
    port = free_port()
    proc = subprocess.Popen(
        [exe, "-H", "127.0.0.1", "-p", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail("moto_server did not start")
            time.sleep(0.1)
    saved = {k: os.environ.get(k) for k in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                             "AWS_DEFAULT_REGION")}  # fmt: skip
    os.environ.update(
        AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
        AWS_DEFAULT_REGION="us-east-1",
    )  # fmt: skip
    yield endpoint
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    proc.terminate()
    proc.wait(timeout=10)


def groups_of(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
    """(keeper, sorted members) of each group of a ``find --json`` document, in its order."""
    return [(g["keep"], sorted(m["path"] for m in g["members"])) for g in doc["groups"]]
