"""Sources in object storage: the tree uploaded to a local S3 server (moto) and read as
``s3://bucket/tree`` gives the groups the local folder gives, with the standard AWS variables."""

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
from tests.scale.conftest import groups_of, start_cluster


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
