"""A file that kills the worker reading it (a decoder that crashes, or memory it runs out of) must
not take the run down with it: ``fingerprint_with_strikes`` fingerprints a partition file by file,
and leaves a mark in ``RUN_DIR/strikes/`` while each file is read. A mark still there when the
partition starts again (the scheduler retries the task of a worker that died, or ``--resume`` does)
is a strike against that file; a file with ``STRIKES`` strikes is not read again but becomes an
error row (``KILLED_WORKER``), and the rest of the partition goes on.

A mark is an empty plain file of its own, made with ``O_EXCL`` and named by the partition, the file
and a random token, so that no two processes write the same file and nothing needs locking across
machines. A partition that finishes removes its marks.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Mapping
from typing import Any

import pyarrow as pa

from lookalike.config import DecodeLimits
from lookalike.scale.schema import FINGERPRINTS
from lookalike.scale.stages import FINGERPRINT_GROUP_ROWS, PixelSink, fingerprint_rows, write_atomically

__all__ = ["KILLED_WORKER", "STRIKES", "fingerprint_with_strikes"]

#: times a file may be the one being read when its worker died before it is left out
STRIKES = 2
#: the error code of a file left out for that
KILLED_WORKER = "killed_worker"


def _file_key(url: str) -> str:
    return hashlib.sha256(url.encode()).hexdigest()[:16]


def fingerprint_with_strikes(
    manifest: pa.Table,
    path: str,
    limits: DecodeLimits,
    storage_options: Mapping[str, Any],
    pixels_to: PixelSink | None = None,
) -> tuple[int, int]:
    """Fingerprint one partition (``schema.MANIFEST`` rows) into ``path``, a file of
    ``RUN_DIR/fingerprints/``, as ``stages.fingerprint_rows`` does (``pixels_to`` handed each
    decoded file's pixels), a file at a time, leaving out the files that killed their worker
    ``STRIKES`` times. Returns (files, errors)."""
    part = os.path.basename(path).removesuffix(".parquet")
    marks = os.path.join(os.path.dirname(os.path.dirname(path)), "strikes")
    os.makedirs(marks, exist_ok=True)
    struck: dict[str, int] = {}
    for name in os.listdir(marks):
        owner, _, rest = name.partition("~")
        if owner == part:
            key = rest.split("~")[0]
            struck[key] = struck.get(key, 0) + 1
    rows: list[pa.Table] = []
    for i in range(manifest.num_rows):
        one = manifest.slice(i, 1)
        url = str(one.column("url")[0].as_py())
        key = _file_key(url)
        if struck.get(key, 0) >= STRIKES:
            rows.append(_left_out(one, struck[key]))
            continue
        mark = os.path.join(marks, f"{part}~{key}~{uuid.uuid4().hex}")
        os.close(os.open(mark, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        try:
            rows.append(fingerprint_rows(one, limits=limits, storage_options=storage_options, pixels_to=pixels_to))
        finally:  # an error raised is not a death: only a mark a dead worker left counts
            os.remove(mark)
    table = pa.concat_tables(rows) if rows else FINGERPRINTS.empty_table()
    write_atomically(table, path, row_group_rows=FINGERPRINT_GROUP_ROWS)
    for name in os.listdir(marks):
        if name.startswith(f"{part}~"):
            try:
                os.remove(os.path.join(marks, name))
            except FileNotFoundError:  # another attempt of this partition removed it first
                pass
    return table.num_rows, table.num_rows - table.column("error_code").null_count


def _left_out(one: pa.Table, strikes: int) -> pa.Table:
    """The error row of a file that was being read each of the ``strikes`` times its worker died."""
    row: dict[str, Any] = dict.fromkeys(FINGERPRINTS.names)
    url = one.column("url")[0].as_py()
    row.update(url=url, size=one.column("size")[0].as_py(), mtime_ns=one.column("mtime_ns")[0].as_py())
    row["error_code"] = KILLED_WORKER
    row["error"] = f"{url}: its worker died {strikes} times while reading it (a crash or out of memory); left out"
    return pa.Table.from_pylist([row], schema=FINGERPRINTS)
