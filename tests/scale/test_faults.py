"""``find --cluster tcp://...`` against a scheduler and workers started apart (``dask scheduler``,
``dask worker``, each its own process), and what a real cluster does to a run: a worker killed
with SIGKILL midway, a file that kills its worker, workers without lookalike or with another
version, a lost scheduler. Each run ends with the answer of one machine, or within seconds with a
message naming the cause and saying ``--resume``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from PIL import Image

from tests.images import encode, photo
from tests.scale.conftest import free_port, groups_of

SRC = Path(__file__).resolve().parents[2] / "src"
ENV = {**os.environ, "PYTHONPATH": str(SRC), "PYTHONFAULTHANDLER": "1"}
DASK = str(Path(sys.executable).with_name("dask"))
#: a run that should end within seconds is given this long before the test calls it a hang
HANG_S = 120


def lookalike(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lookalike", *args], capture_output=True, text=True, env=ENV, timeout=600
    )


def start(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """A process of its own session (so that it and its children can be killed together)."""
    with log.open("wb") as out:
        return subprocess.Popen(args, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)


@contextmanager
def cluster(
    tmp: Path, workers: int, *, worker_path: str | None = None, nanny: bool = False, preload: Path | None = None
) -> Iterator[tuple[str, list[subprocess.Popen[bytes]], subprocess.Popen[bytes]]]:
    """``dask scheduler`` and ``workers`` ``dask worker`` processes on 127.0.0.1 (single-threaded;
    ``worker_path``: the workers' PYTHONPATH instead of this repository's source; ``preload``: a
    script each worker process runs as it starts). Yields the
    scheduler's address, the worker processes and the scheduler process; kills them all after."""
    from dask.distributed import Client

    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    sched = start(
        [DASK, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--dashboard-address", "127.0.0.1:0"],
        ENV, tmp / "scheduler.log",
    )  # fmt: skip
    env = {**ENV, "PYTHONPATH": worker_path or str(SRC)}
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for i in range(workers):
            args = [DASK, "worker", address, "--nthreads", "1", "--host", "127.0.0.1"]
            args += ["--preload", str(preload)] if preload else []
            procs.append(start([*args, *([] if nanny else ["--no-nanny"])], env, tmp / f"worker{i}.log"))
        with Client(address, timeout="30s") as c:
            c.wait_for_workers(workers, timeout=60)
        yield address, procs, sched
    finally:
        for p in [*procs, sched]:
            if p.poll() is None:
                os.killpg(p.pid, signal.SIGKILL)
            p.wait()


def pictures(root: Path, n: int, size: tuple[int, int] = (640, 480)) -> Path:
    """``n`` pictures with two copies each (a smaller JPEG, a mirrored one), in folders of their own."""
    for i in range(n):
        im = photo(*size, seed=300 + i)
        d = root / f"p{i:03d}"
        d.mkdir(parents=True)
        (d / "a.png").write_bytes(encode(im, "PNG"))
        (d / "b.jpg").write_bytes(encode(im.resize((size[0] // 2, size[1] // 2)), "JPEG", quality=85))
        (d / "c.jpg").write_bytes(encode(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=90))
    return root


def keepers(doc: dict[str, object]) -> list[tuple[str, list[str]]]:
    return groups_of(doc)  # (keeper, members) of each group


def ended(proc: subprocess.Popen[str], timeout: float) -> tuple[str, str]:
    """What the process wrote, once it ended; aborted (its threads' stacks printed) and the test failed
    if it has not by ``timeout``."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)  # with PYTHONFAULTHANDLER: where each thread was
        out, err = proc.communicate()
        pytest.fail(f"the run did not end within {timeout} s: {err}")


def wait_for_parts(run: Path, proc: subprocess.Popen[str], count: int) -> None:
    deadline = time.monotonic() + 300
    while len(list((run / "fingerprints").glob("*.parquet"))) < count:
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            _, err = proc.communicate()
            pytest.fail(f"the run ended, or took too long, before the fault: {err}")
        time.sleep(0.02)


def started_run(src: Path, address: str, run: Path, parts: int, *more: str) -> subprocess.Popen[str]:
    """`find SRC --cluster ADDRESS --out RUN` started, once its first ``parts`` fingerprint parts are written."""
    cmd = [sys.executable, "-m", "lookalike", "find", str(src), "--cluster", address, "--out", str(run), *more]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for_parts(run, proc, parts)
    return proc


def test_a_worker_killed_midway_still_gives_the_groups_and_keepers_of_one_machine(tmp_path: Path) -> None:
    src = pictures(tmp_path / "src", 16)  # 48 files: 8 partitions of 6
    one = lookalike("find", str(src), "--db", str(tmp_path / "one.db"), "--json")
    assert one.returncode == 0, one.stderr
    run = tmp_path / "run"
    with cluster(tmp_path, 2) as (address, workers, _):
        proc = started_run(src, address, run, 2, "--partition-size", "6", "--json")
        os.kill(workers[0].pid, signal.SIGKILL)
        killed_midway = not (run / "groups.parquet").exists() and proc.poll() is None
        out, err = ended(proc, 600)
    assert killed_midway
    assert proc.returncode == 0, err
    assert keepers(json.loads(out)) == keepers(json.loads(one.stdout))
    assert "dashboard at http://127.0.0.1:" in err
    assert "fingerprint partitions 8 computed" in err


POISON = """
import os, signal
import lookalike.scale.storage as storage



def crashing(read):
    def read_source(path, **kw):  # what a decoder that crashes its process does
        if "poison" in os.path.basename(path):
            os.kill(os.getpid(), signal.SIGKILL)
        return read(path, **kw)

    read_source.crashing = True
    return read_source


if not getattr(storage.read_source, "crashing", False):  # a preload may run twice in one process
    storage.read_source = crashing(storage.read_source)
"""


def test_a_file_that_kills_its_worker_twice_is_an_error_row_and_the_run_goes_on(tmp_path: Path) -> None:
    src = pictures(tmp_path / "src", 3, size=(320, 240))
    (src / "p001" / "poison.jpg").write_bytes(encode(photo(320, 240, seed=9), "JPEG", quality=90))
    preload = tmp_path / "crash_on_poison.py"  # each worker's lookalike with a decoder that crashes on one file
    preload.write_text(POISON)
    with cluster(tmp_path, 1, nanny=True, preload=preload) as (address, _, _):  # the nanny starts it again
        r = lookalike("find", str(src), "--cluster", address, "--out", str(tmp_path / "run"), "--json")
    assert r.returncode == 1, r.stderr  # a file could not be read; the rest was
    doc = json.loads(r.stdout)
    assert [(Path(e["path"]).name, e["error"]["code"]) for e in doc["errors"]] == [("poison.jpg", "killed_worker")]
    assert "died 2 times" in doc["errors"][0]["error"]["message"]
    assert len(doc["groups"]) == 3


@pytest.mark.parametrize(
    ("stub", "message"),
    [
        ('__version__ = "0.0.1+other"\n', "runs lookalike 0.0.1+other, this client"),
        ('raise ModuleNotFoundError("No module named \'lookalike\'", name="lookalike")\n', "cannot import lookalike"),
    ],
    ids=["another-version", "missing"],
)
def test_a_worker_that_cannot_run_this_version_is_refused_within_seconds(
    tmp_path: Path, stub: str, message: str
) -> None:
    (tmp_path / "stub" / "lookalike").mkdir(parents=True)
    (tmp_path / "stub" / "lookalike" / "__init__.py").write_text(stub)
    src = pictures(tmp_path / "src", 1, size=(160, 120))
    with cluster(tmp_path, 1, worker_path=str(tmp_path / "stub")) as (address, _, _):
        r = lookalike("find", str(src), "--cluster", address, "--out", str(tmp_path / "run"))
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "--resume" in r.stderr and "Traceback" not in r.stderr


def test_a_lost_scheduler_ends_the_run_with_a_message_saying_resume(tmp_path: Path) -> None:
    src = pictures(tmp_path / "src", 16)
    run = tmp_path / "run"
    with cluster(tmp_path, 1) as (address, _, sched):
        proc = started_run(src, address, run, 1, "--partition-size", "2")
        os.killpg(sched.pid, signal.SIGKILL)
        _, err = ended(proc, HANG_S)
    assert proc.returncode == 2, err
    assert "lost the scheduler" in err and "--resume" in err and "Traceback" not in err
    resumed = lookalike("find", str(src), "--cluster", "local:2", "--out", str(run), "--partition-size", "2",
                        "--resume")  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "0 reused" not in resumed.stderr.splitlines()[-1].split(";")[0]


def test_a_run_whose_workers_all_died_ends_with_a_message_saying_resume(tmp_path: Path) -> None:
    src = pictures(tmp_path / "src", 16)
    run = tmp_path / "run"
    with cluster(tmp_path, 1) as (address, workers, _):
        proc = started_run(src, address, run, 1, "--partition-size", "2")
        os.kill(workers[0].pid, signal.SIGKILL)
        _, err = ended(proc, HANG_S)
    assert proc.returncode == 2, err
    assert "no worker left" in err and "--resume" in err and "Traceback" not in err


def test_a_permission_error_is_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    import fsspec
    from fsspec.spec import AbstractFileSystem

    from lookalike.errors import FetchError
    from lookalike.scale import storage

    asked: list[str] = []

    class Forbidden(AbstractFileSystem):  # what s3fs raises for a 403 (AccessDenied)
        protocol = "forbidden"

        def size(self, path: str) -> int:
            asked.append(path)
            raise PermissionError(f"Access Denied: {path}")

    fsspec.register_implementation("forbidden", Forbidden, clobber=True)
    monkeypatch.setattr(storage.time, "sleep", lambda s: pytest.fail("a 403 was retried"))
    with pytest.raises(FetchError, match="forbidden://bucket/a.jpg: cannot read .permission denied"):
        storage.read_bytes("forbidden://bucket/a.jpg", max_bytes=1 << 20, storage_options={})
    assert len(asked) == 1
