"""The answer of a scale-out ``find`` written as it is found, and read back as it is printed.

Groups come out of the grouping stage a batch of connected components at a time, in no useful
order; ``find`` lists them largest first, ties by keeper path. ``GroupSpill`` writes each batch's
members to a spill file and keeps two values a group (its size and keeper) to sort by; ``finish``
writes ``groups.parquet`` (``schema.GROUPS``) in ``find``'s order: an external sort, the spill
cut into ranges of ``SORT_GROUPS`` ranks in one pass and each range sorted in turn (the client
holds a range's groups, not the answer). The pairs of
the answer go to ``answer-pairs.parquet`` (``schema.ANSWER_PAIRS``) in ``find``'s order
(``write_pairs``). ``read_groups`` and ``read_pairs`` give them back one at a time, so the command
line prints an answer of any size without holding it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.match import Verdict
from lookalike.scale.buckets import BucketFiles
from lookalike.scale.memory import give_back
from lookalike.scale.schema import ANSWER_PAIRS, GROUPS
from lookalike.scan.results import Evidence, EvidenceKind, Group, Member, Pair

__all__ = ["SORT_GROUPS", "GroupSpill", "read_groups", "read_pairs", "write_pairs"]

#: groups sorted at a time (their members held as Arrow columns meanwhile): the spill is cut into
#: ranges of this many ranks in one pass (``buckets.BucketFiles``), each range then sorted; a pass
#: over the whole spill for each range grew as the square of the answer
SORT_GROUPS = 4_096
#: rows a row group of ``groups.parquet``: a reader decodes a row group at a time, and a row group
#: of a whole range (or before, of a pass: every member of up to 65,536 groups) grows with the answer
_WRITE_ROWS = 4_096
#: rows a Parquet batch when reading back (``read_groups`` holds a batch's rows as Python objects)
_READ_ROWS = 1_024


def _member_rows(group: int, g: Group) -> Iterator[tuple[Any, ...]]:
    """The ``GROUPS`` row of each member of ``g`` (numbered ``group``), in ``GROUPS.names`` order."""
    for m in g.members:
        r = m.reason
        yield (
            group, g.keep, m.path, m.keep, m.score, m.verdict.value, m.evidence, m.match, m.width, m.height,
            m.byte_size, m.mime, m.taken_at, m.eligible, m.eligibility, m.excluded, m.sha256, r.kind.value,
            r.detail, r.facts, r.same_picture, r.kept_in_folder,
        )  # fmt: skip


class GroupSpill:
    """Groups written as they are found (``add``), then sorted into ``groups.parquet`` (``finish``).

    Holds a group's size (4 bytes) and keeper path (Arrow) until ``finish``; the members are on
    disk. Raises ``OSError`` when the run folder cannot be written."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._writer = pq.ParquetWriter(path, GROUPS)
        self._sizes: list[npt.NDArray[np.int32]] = []
        self._keeps: list[pa.Array] = []
        self.groups = 0

    def add(self, groups: list[Group]) -> None:
        """Spill ``groups`` (one batch)."""
        if not groups:
            return
        rows = [row for i, g in enumerate(groups, self.groups) for row in _member_rows(i, g)]
        columns = list(zip(*rows))
        self._writer.write_table(pa.table(dict(zip(GROUPS.names, columns)), schema=GROUPS))
        self._sizes.append(np.fromiter((len(g.members) for g in groups), np.int32, count=len(groups)))
        self._keeps.append(pa.array([g.keep for g in groups], pa.string()))
        self.groups += len(groups)

    def finish(self, out: str) -> None:
        """Write ``out`` (``GROUPS``): the spilled groups largest first, ties by keeper path, each
        numbered by its place; removes the spill."""
        self._writer.close()
        keys = pa.table(
            {
                "size": pa.array(np.concatenate(self._sizes) if self._sizes else np.zeros(0, np.int32)),
                "keep": pa.chunked_array(self._keeps, pa.string()),
            }
        )
        order = pc.sort_indices(keys, sort_keys=[("size", "descending"), ("keep", "ascending")]).to_numpy()
        del keys
        self._sizes, self._keeps = [], []
        rank = np.empty(len(order), np.int32)
        rank[order] = np.arange(len(order), dtype=np.int32)
        folder, name = os.path.split(self._path)
        ranges = BucketFiles(folder or ".", f"{name}-ranked")
        tmp = out + ".tmp"
        try:
            # one pass over the spill into ranges of SORT_GROUPS ranks, then each range sorted in turn
            for batch in pq.ParquetFile(self._path).iter_batches(batch_size=_READ_ROWS):
                r = rank[batch.column("group").to_numpy()]
                ranges.append(pa.Table.from_batches([batch]).set_column(0, "group", pa.array(r)), r // SORT_GROUPS)
            ranges.done()
            with pq.ParquetWriter(tmp, GROUPS) as writer:
                for k in range(-(-len(order) // SORT_GROUPS)):
                    t = ranges.take(k)
                    if t is not None:  # each group in the order spilled: its members in their own order
                        t = t.take(pa.array(np.argsort(t.column("group").to_numpy(), kind="stable")))
                        writer.write_table(t, row_group_size=_WRITE_ROWS)
                    del t
                if not len(order):
                    writer.write_table(GROUPS.empty_table())
        finally:
            ranges.remove()
        os.replace(tmp, out)
        os.remove(self._path)
        give_back()


def read_groups(path: str) -> Iterator[Group]:
    """The groups of a ``groups.parquet`` in order, one at a time, as ``find`` returned them."""
    members: list[Member] = []
    current, keep = -1, ""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_READ_ROWS):
        for row in zip(*(batch.column(n).to_pylist() for n in GROUPS.names)):
            group, keeper, path_, kept, score, verdict, _, match, w, h, size, mime, taken, *rest = row
            eligible, eligibility, excluded, sha, kind, detail, facts, same_picture, in_folder = rest
            if group != current and members:
                yield Group(keep=keep, members=tuple(members))
                members = []
            current, keep = group, keeper
            reason = Evidence(EvidenceKind(kind), detail, facts, same_picture, in_folder)
            members.append(
                Member(
                    path_,
                    score,
                    Verdict(verdict),
                    reason,
                    match,
                    kept,
                    w,
                    h,
                    size,
                    mime,
                    taken,
                    eligible,
                    eligibility,
                    excluded,
                    sha,
                )  # fmt: skip
            )
    if members:
        yield Group(keep=keep, members=tuple(members))


def write_pairs(path: str, batches: Iterable[pa.Table]) -> int:
    """Write the answer's pairs (``ANSWER_PAIRS`` tables, in order) to ``path`` atomically; returns
    how many."""
    n = 0
    tmp = path + ".tmp"
    with pq.ParquetWriter(tmp, ANSWER_PAIRS) as writer:
        writer.write_table(ANSWER_PAIRS.empty_table())
        for t in batches:
            writer.write_table(t)
            n += t.num_rows
    os.replace(tmp, path)
    give_back()
    return n


def read_pairs(path: str) -> Iterator[Pair]:
    """The answer's pairs, one at a time, in order."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_READ_ROWS):
        for a, b, score, verdict in zip(*(batch.column(n).to_pylist() for n in ANSWER_PAIRS.names)):
            yield Pair(a, b, score, Verdict(verdict))
