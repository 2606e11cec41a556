"""Sources in object storage: the tree uploaded to a local S3 server (moto) and read as
``s3://bucket/tree`` gives the groups the local folder gives, with the standard AWS variables, and
the same keepers when the uploader kept each file's modification time (as rclone does)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from lookalike.config import DecodeLimits
from lookalike.errors import FetchError
from lookalike.scale import Pipeline
from lookalike.scale.schema import MANIFEST
from lookalike.scale.stages import fingerprint_rows
from lookalike.scale.storage import kept_mtime_ns
from tests.scale.conftest import FAMILY, add_family, groups_of, start_cluster
from tests.scan.conftest import make_tree


@pytest.fixture(scope="module")
def bucket(s3_server: str, tree: Path) -> str:
    """The tree uploaded to ``s3://pictures/tree``."""
    import s3fs

    fs = s3fs.S3FileSystem()  # from AWS_ENDPOINT_URL and the key variables alone
    fs.mkdir("pictures")
    for p in sorted(tree.rglob("*")):
        if p.is_file():
            fs.pipe_file(f"pictures/tree/{p.relative_to(tree).as_posix()}", p.read_bytes())
    return "s3://pictures/tree"


@pytest.fixture(scope="module")
def family_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``find``'s generated tree and, under ``family/``, a photo with copies that only the keeper's
    facts tell from it: an enlargement, a recompression, its pixels stored losslessly twice."""
    root = make_tree(tmp_path_factory.mktemp("s3keepers") / "tree")
    add_family(root / "family")
    return root


@pytest.fixture(scope="module")
def kept_bucket(s3_server: str, family_tree: Path) -> str:
    """``family_tree`` uploaded to ``s3://kept/tree`` in path order, each object with its file's
    modification time in its user metadata as rclone keeps it (``mtime``: seconds since the epoch)."""
    import s3fs

    fs = s3fs.S3FileSystem()
    fs.mkdir("kept")
    for p in sorted(family_tree.rglob("*")):
        if p.is_file():
            ns = p.stat().st_mtime_ns
            mtime = f"{ns // 1_000_000_000}.{ns % 1_000_000_000:09d}"
            fs.pipe_file(
                f"kept/tree/{p.relative_to(family_tree).as_posix()}", p.read_bytes(), Metadata={"mtime": mtime}
            )
    return "s3://kept/tree"


@pytest.fixture(scope="module")
def s3_client(s3_server: str) -> Iterator[Any]:
    """A two-worker cluster started after the AWS variables were set, so its workers have them."""
    cluster, c = start_cluster(2)
    yield c
    c.close()
    cluster.close()


def test_a_bucket_gives_the_groups_of_the_local_folder(s3_client: Any, bucket: str, tree: Path, tmp_path: Path) -> None:
    local = Pipeline(partition_size=3).run([str(tree)], out=tmp_path / "local", cluster=s3_client)
    remote = Pipeline(partition_size=3).run([bucket], out=tmp_path / "remote", cluster=s3_client)

    def members(doc: dict[str, Any]) -> list[list[str]]:
        return sorted([m.replace(bucket, str(tree)) for m in ms] for _, ms in groups_of(doc))

    # the same members; not always the same keeper: a keeper choice weighs each file's modification
    # time, and an object's is when it was uploaded (two copies of one file: the first uploaded)
    assert members(remote.result.to_dict()) == members(local.result.to_dict())
    assert len(remote.result.groups) == 3
    assert {e.path for e in remote.result.errors} == {f"{bucket}/phone/broken.jpg", f"{bucket}/phone/empty.png"}


def test_a_bucket_gives_the_keepers_of_the_local_folder(
    s3_client: Any, kept_bucket: str, family_tree: Path, tmp_path: Path
) -> None:
    local = Pipeline(partition_size=3).run([str(family_tree)], out=tmp_path / "local", cluster=s3_client)
    remote = Pipeline(partition_size=3).run([kept_bucket], out=tmp_path / "remote", cluster=s3_client)

    def as_local(doc: dict[str, Any]) -> list[tuple[str, list[str]]]:
        back = str(family_tree)
        return sorted(
            (k.replace(kept_bucket, back), [m.replace(kept_bucket, back) for m in ms]) for k, ms in groups_of(doc)
        )

    remote_groups, local_groups = as_local(remote.result.to_dict()), as_local(local.result.to_dict())
    assert remote_groups == local_groups
    assert len(local_groups) == 4
    # the photo is kept over its enlargement, its recompression and its pixels stored losslessly
    # (same pixels compared through the object store), and over nothing by the upload order
    family = next(k for k, ms in remote_groups if any("/family/" in m for m in ms))
    assert family == str(family_tree / "family" / FAMILY["original"])


def test_an_uploaders_kept_modification_time_is_the_objects_time(kept_bucket: str, family_tree: Path) -> None:
    import s3fs

    original = family_tree / "family" / FAMILY["original"]
    assert kept_mtime_ns(f"{kept_bucket}/family/{FAMILY['original']}", {}) == original.stat().st_mtime_ns
    fs = s3fs.S3FileSystem()
    fs.pipe_file("kept/s3cmd.jpg", original.read_bytes(), Metadata={"s3cmd-attrs": "atime:1/gid:0/mtime:1600000000"})
    fs.pipe_file("kept/plain.jpg", original.read_bytes())
    assert kept_mtime_ns("s3://kept/s3cmd.jpg", {}) == 1_600_000_000_000_000_000
    assert kept_mtime_ns("s3://kept/plain.jpg", {}) is None  # judged by its upload time
    assert kept_mtime_ns(str(original), {}) is None


def test_a_missing_bucket_is_a_clear_error_naming_it(s3_client: Any, tmp_path: Path) -> None:
    with pytest.raises(FetchError, match="s3://no-such-bucket"):
        Pipeline().run(["s3://no-such-bucket/x"], out=tmp_path / "r", cluster=s3_client)


def test_an_object_that_cannot_be_read_is_an_error_row_naming_it(bucket: str) -> None:
    manifest = pa.table(
        {"url": [f"{bucket}/phone/gone.jpg"], "size": [10], "version": [""], "mtime_ns": [0]}, schema=MANIFEST
    )
    row = fingerprint_rows(manifest, limits=DecodeLimits(), storage_options={}).to_pylist()[0]
    assert row["error_code"] == "fetch_failed" and f"{bucket}/phone/gone.jpg" in row["error"]
    assert row["sha256"] is None
