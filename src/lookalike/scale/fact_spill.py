"""The fingerprint facts of a run's answer rows, read from the parts once and spilled to disk by
grouping batch, so that grouping reads each part once however many batches its rows fall in.

A grouping batch is a set of whole connected components, and a component's rows lie anywhere in
path order: read straight from the parts, each batch read every part that held one of its rows,
and the work grew as batches times parts, the square of the run (at 300,000 synthetic rows,
parts of 4,096 rows and batches of 512 rows, about 9,000 reads of a part where 74 do). Here the
parts are read in turn, each once, and its answer rows appended to the bucket file of their
batch (``buckets.BucketFiles``, ``BUCKET_BATCHES`` grouping batches a file); grouping then reads
one bucket at a time. Memory on the client: one part's answer rows while spilling, one bucket's
rows while grouping.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from lookalike.scale.buckets import BucketFiles
from lookalike.scale.memory import give_back
from lookalike.scale.rows import RunRows

__all__ = ["BUCKET_BATCHES", "FactSpill"]

#: grouping batches a bucket holds: grouping reads one at a time, about 8,000 rows' facts (a few
#: MB), and a run of n answer rows keeps n / 8,000 files open while spilling
BUCKET_BATCHES = 16


class FactSpill:
    """The ``columns`` of the fingerprint rows at ``positions`` of ``rows`` (each in grouping batch
    ``batch_of_position``), spilled to ``folder`` by batch; ``batch(b)`` gives batch ``b``'s rows
    with their ``position``, batches asked in increasing order. ``close`` removes the files.
    Raises ``OSError`` when ``folder`` cannot be written."""

    def __init__(
        self, folder: str, rows: RunRows, part_paths: list[str], columns: list[str],
        positions: npt.NDArray[np.intp], batch_of_position: npt.NDArray[np.int32],
    ) -> None:  # fmt: skip
        self._files = BucketFiles(folder, "facts")
        self._loaded = -1
        self._table = pa.table({})
        self._bounds = np.zeros(BUCKET_BATCHES + 1, np.int64)
        by_part = np.lexsort((rows.row[positions], rows.part[positions]))
        positions, batch_of_position = positions[by_part], batch_of_position[by_part]
        part_of = rows.part[positions]
        try:
            for p in np.unique(part_of).tolist():
                lo, hi = np.searchsorted(part_of, [p, p + 1])
                here, batch = positions[lo:hi], batch_of_position[lo:hi]
                t = pq.read_table(part_paths[p], columns=columns).take(pa.array(rows.row[here]))
                t = t.append_column("position", pa.array(here.astype(np.int64)))
                t = t.append_column("batch", pa.array(batch))
                self._files.append(t, batch // BUCKET_BATCHES)
                self._table = t.schema.empty_table()
                del t
        except BaseException:
            self._files.remove()
            raise
        self._files.done()
        give_back()

    def batch(self, b: int) -> pa.Table:
        """The spilled rows of grouping batch ``b`` (the columns, ``position`` and ``batch``)."""
        k = b // BUCKET_BATCHES
        if k != self._loaded:
            self._table = self._table.schema.empty_table()  # a bucket may hold no row: batch numbers skip
            give_back()
            self._loaded = k
            t = self._files.take(k)
            if t is None:
                self._bounds[:] = 0
            else:
                batches = t.column("batch").to_numpy()
                order = np.argsort(batches, kind="stable")
                self._table = t.take(pa.array(order))
                first = k * BUCKET_BATCHES
                self._bounds = np.searchsorted(batches[order], np.arange(first, first + BUCKET_BATCHES + 1))
        i = b - k * BUCKET_BATCHES
        return self._table.slice(int(self._bounds[i]), int(self._bounds[i + 1] - self._bounds[i]))

    def close(self) -> None:
        """Remove the spill files not read yet."""
        self._table = self._table.schema.empty_table()
        self._files.remove()
