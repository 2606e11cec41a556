"""The grouping stage of a scale-out ``find``: connected components on compact int ids, then
``find``'s own last step (``scan.grouping.groups_of_links``) a batch of components at a time.

The linking pairs (``RunPairs``, NumPy columns) make components of index rows, found by min-label
hooking and pointer jumping over NumPy arrays (Shiloach and Vishkin, "An O(log n) parallel
connectivity algorithm", J. Algorithms 3, 1982: 8 bytes an answer row). ``find`` groups within a
component only (a group's links are among its members; its keeper is chosen from its members),
so the components are cut into batches of about ``BATCH_ROWS`` rows, the batches' facts read
from the fingerprint parts in one pass and spilled by batch (``fact_spill``), each batch's groups
and keepers chosen (with the spectra its keeper choices ask for, ``keepers.with_spectra``) and
spilled to disk (``answer.GroupSpill``), and the batch let go. Memory on the client: a 4-byte
batch number a row (``batch_of``), the pairs' columns, one bucket of spilled facts and one
batch's Python objects; the answer's pairs are written from the columns (``answer_pairs``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lookalike.match import Verdict
from lookalike.scale.answer import GroupSpill
from lookalike.scale.fact_spill import FactSpill
from lookalike.scale.keepers import FACT_COLUMNS, Gathered, RunPairs, RunSourceEvidence, gather, with_spectra
from lookalike.scale.memory import give_back
from lookalike.scale.rows import RunRows
from lookalike.scan.grouping import Judges, groups_of_links
from lookalike.scan.options import FindOptions
from lookalike.scan.results import Group

__all__ = ["BATCH_ROWS", "Counts", "answer_pairs", "components", "group_batches"]

#: answer rows grouped at a time: their facts and fingerprints are the client's largest objects
BATCH_ROWS = 512
#: pairs of the answer turned into one Arrow table at a time
_PAIR_ROWS = 8_192
_VERDICT_WORDS = np.asarray([v.value for v in Verdict])

#: spectra of rows (batch, rows, round) -> profile bytes, or None for a row that could not be read
Fetch = Callable[[Gathered, int, list[int], int], Mapping[int, bytes | None]]


@dataclass(slots=True)
class Counts:
    """What the grouping stage found: groups, duplicates an action would touch, their bytes, and
    the groups too large to review (keeper, size)."""

    groups: int = 0
    duplicates: int = 0
    reclaimable_bytes: int = 0
    too_large: list[tuple[str, int]] | None = None

    def add(self, groups: list[Group], reviewable: int) -> None:
        """Count ``groups``; those past ``reviewable`` members are noted."""
        self.groups += len(groups)
        for g in groups:
            removable = g.removable
            self.duplicates += len(removable)
            self.reclaimable_bytes += sum(m.byte_size for m in removable)
            if len(g.members) > reviewable:
                self.too_large = [*(self.too_large or []), (g.keep, len(g.members))]


def components(n: int, a: npt.NDArray[np.int64], b: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The component of each of ``n`` nodes joined by edges ``a[i]``-``b[i]``: its smallest node."""
    parent = np.arange(n, dtype=np.int64)
    while len(a):
        ra, rb = parent[a], parent[b]
        lo, hi = np.minimum(ra, rb), np.maximum(ra, rb)
        moving = lo != hi
        if not moving.any():
            break
        np.minimum.at(parent, hi[moving], lo[moving])  # hook each root under the smallest it touches
        while True:  # then every node straight to its root
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    return parent


def _batches(rows: RunRows, pairs: RunPairs, linking: npt.NDArray[np.bool_]) -> tuple[npt.NDArray[np.int32], int]:
    """Each index row's batch (position ``pk``; -1: in no group), and how many batches: the rows
    of a linking pair or with several paths, components whole, about ``BATCH_ROWS`` a batch."""
    at = np.flatnonzero(linking)
    ends = np.concatenate([pairs.lo[at], pairs.hi[at]])
    nodes = np.union1d(ends, np.flatnonzero(rows.shared()))
    del ends
    label = components(len(nodes), np.searchsorted(nodes, pairs.lo[at]), np.searchsorted(nodes, pairs.hi[at]))
    order = np.argsort(label, kind="stable")
    starts = np.flatnonzero(np.diff(label[order], prepend=-1))
    sizes = np.diff(starts, append=len(order))
    batch_of_component = ((np.cumsum(sizes) - sizes) // BATCH_ROWS).astype(np.int32)
    batch_of = np.full(rows.rows + 1, -1, np.int32)
    batch_of[nodes[order]] = np.repeat(batch_of_component, sizes)
    return batch_of, int(batch_of_component[-1]) + 1 if len(sizes) else 0


def group_batches(
    rows: RunRows, part_paths: list[str], pairs: RunPairs, opts: FindOptions, keep_in: tuple[str, ...],
    spill: GroupSpill, fetch: Fetch, reviewable: int, scratch: str,
) -> Counts:  # fmt: skip
    """Group the answer's rows batch by batch into ``spill``, keepers chosen as ``find`` chooses
    them (``fetch`` computes the spectra a choice asks for; the rows' facts are spilled to the
    folder ``scratch`` meanwhile, ``fact_spill``); returns what was found."""
    linking = pairs.linking(opts.link)
    batch_of, batches = _batches(rows, pairs, linking)
    positions = np.flatnonzero(batch_of[rows.pk] >= 0)
    position_batch = batch_of[rows.pk[positions]]
    by_batch = np.argsort(position_batch, kind="stable")
    row_bounds = np.searchsorted(position_batch[by_batch], np.arange(batches + 1))
    lo_batch, hi_batch = batch_of[pairs.lo], batch_of[pairs.hi]
    among = np.flatnonzero((lo_batch == hi_batch) & (lo_batch >= 0))
    among = among[np.argsort(lo_batch[among], kind="stable")]
    among_bounds = np.searchsorted(lo_batch[among], np.arange(batches + 1))
    counts = Counts()
    facts = FactSpill(scratch, rows, part_paths, FACT_COLUMNS, positions, position_batch)
    try:
        for b in range(batches):
            here = among[among_bounds[b] : among_bounds[b + 1]]
            at = np.sort(positions[by_batch[row_bounds[b] : row_bounds[b + 1]]])
            gathered = gather(facts.batch(b), rows, at, pairs, here[linking[here]], here)
            evidence = RunSourceEvidence(gathered)
            pks = sorted(gathered.paths_of)

            def choose(g: Gathered = gathered, e: RunSourceEvidence = evidence, p: list[int] = pks) -> list[Group]:
                return groups_of_links(
                    p, g.paths_of, g.size_of, g.facts, g.pairs, opts, keep_in, judges=Judges(source=e)
                )

            def spectra(
                pks_: list[int], round_: int, g: Gathered = gathered, b_: int = b
            ) -> Mapping[int, bytes | None]:
                return fetch(g, b_, pks_, round_)

            groups = with_spectra(evidence, choose, spectra)
            spill.add(groups)
            counts.add(groups, reviewable)
            del gathered, evidence, groups
            give_back()
    finally:
        facts.close()
    return counts


def answer_pairs(rows: RunRows, pairs: RunPairs) -> Iterator[pa.Table]:
    """The answer's pairs (``schema.ANSWER_PAIRS``) as ``find`` lists them (``scan.grouping.node_pairs``):
    each row's first path ``identical`` to each of its other paths, rows in order, then each pair
    of rows as their first paths, in order of ``(lo, hi)``."""
    first_at = np.zeros(rows.rows + 1, np.int64)
    first_at[rows.pk[rows.first]] = np.flatnonzero(rows.first)
    others = rows.with_pks(rows.shared())
    others = others[~rows.first[others]]
    others = others[np.argsort(rows.pk[others], kind="stable")]
    for start in range(0, len(others), _PAIR_ROWS):
        at = others[start : start + _PAIR_ROWS]
        yield pa.table(
            {
                "a": rows.urls.take(pa.array(first_at[rows.pk[at]])), "b": rows.urls.take(pa.array(at)),
                "score": pa.array(np.ones(len(at))), "verdict": pa.array(np.full(len(at), Verdict.IDENTICAL.value)),
            }
        )  # fmt: skip
    for start in range(0, len(pairs), _PAIR_ROWS):
        end = start + _PAIR_ROWS
        yield pa.table(
            {
                "a": rows.urls.take(pa.array(first_at[pairs.lo[start:end]])),
                "b": rows.urls.take(pa.array(first_at[pairs.hi[start:end]])),
                "score": pa.array(pairs.score[start:end]),
                "verdict": pa.array(_VERDICT_WORDS[pairs.verdict[start:end]]),
            }
        )  # fmt: skip
