"""Rows spilled to disk by bucket and read back a bucket at a time: the distribution pass of an
external-memory sort (Aggarwal and Vitter, "The input/output complexity of sorting and related
problems", CACM 31(9), 1988), so that the client regroups a run-sized table in one pass over it,
holding one bucket, where reading the whole input once per output range grew as the square of
the run.

Each bucket is an Arrow IPC stream file (``.arrows.tmp``: a killed run's are removed when the
run folder is prepared again); appending a few rows costs a message header, not a Parquet row
group.
"""

from __future__ import annotations

import os

import numpy as np
import numpy.typing as npt
import pyarrow as pa

__all__ = ["BucketFiles"]


class BucketFiles:
    """Numbered buckets of rows of one schema in ``folder``, files named with ``stem``: ``append``
    rows to their buckets, ``done`` when all are in, then ``take`` each bucket (its rows in the
    order appended; its file removed). ``remove`` deletes what is left. Raises ``OSError`` when
    ``folder`` cannot be written."""

    def __init__(self, folder: str, stem: str) -> None:
        os.makedirs(folder, exist_ok=True)
        self._folder, self._stem = folder, stem
        self._writers: dict[int, pa.ipc.RecordBatchStreamWriter] = {}
        self._paths: dict[int, str] = {}

    def append(self, table: pa.Table, bucket: npt.NDArray[np.integer]) -> None:
        """Append each row of ``table`` to bucket ``bucket[row]``."""
        for k in np.unique(bucket).tolist():
            if k not in self._writers:
                self._paths[k] = os.path.join(self._folder, f"{self._stem}-{k:06d}.arrows.tmp")
                self._writers[k] = pa.ipc.new_stream(self._paths[k], table.schema)
            self._writers[k].write_table(table.filter(pa.array(bucket == k)))

    def done(self) -> None:
        """Every row is in: close the files."""
        for w in self._writers.values():
            w.close()
        self._writers.clear()

    def take(self, k: int) -> pa.Table | None:
        """Bucket ``k``'s rows (None: it has none); its file is removed."""
        path = self._paths.pop(k, None)
        if path is None:
            return None
        with pa.ipc.open_stream(path) as reader:
            table = reader.read_all()
        os.remove(path)
        return table

    def remove(self) -> None:
        """Remove every bucket file not taken."""
        self.done()
        for path in self._paths.values():
            if os.path.exists(path):
                os.remove(path)
        self._paths.clear()
