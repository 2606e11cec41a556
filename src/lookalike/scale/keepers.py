"""What the client of a scale-out run reads of its Parquet files to group the files and choose each
group's source as keeper, without reading an image: ``find``'s own decision
(``scan.evidence.source_order``) from the facts the workers wrote.

``gather`` reads each pair as the better of its two ends' checks saw it (``schema.PAIRS``, as
``find`` combines them) and the facts (``schema.FINGERPRINTS``) of the rows the answer holds;
``RunSourceEvidence`` answers ``scan.evidence.SourceEvidence`` from all that, and the spectrum
profiles the choice asks for (``with_spectra``), which ``spectrum_task`` computes on the workers
(``schema.SPECTRA``).
Memory on the client: the answer's rows and pairs as Python objects, nothing for a file in no group.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits
from lookalike.fingerprints import Fingerprint, fingerprint_from_bytes
from lookalike.match import Verdict
from lookalike.scale.rows import RunRows
from lookalike.scale.stages import spectrum_rows, write_atomically
from lookalike.scan.cache import RowFacts, StoredPair
from lookalike.scan.evidence import member_facts
from lookalike.scan.source import SourceFacts

T = TypeVar("T")

__all__ = [
    "ROW_COLUMNS",
    "Gathered",
    "RunSourceEvidence",
    "gather",
    "read_spectra",
    "spectrum_task",
    "with_spectra",
]

#: the columns of ``schema.FINGERPRINTS`` the client reads
ROW_COLUMNS = [
    "url", "sha256", "fingerprint", "lossless", "taken_at", "jpeg_quality", "padding", "content_aspect", "mtime_ns",
    "colours", "grid_step",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Gathered:
    """The rows of a run's answer and its pairs as ``groups_from_links`` takes them (each path's
    size in ``size_of``), and what the pairs said of pixels."""

    paths_of: dict[int, list[str]]
    facts: dict[int, RowFacts]
    fingerprints: dict[int, bytes]  # encoded (``fingerprint_from_bytes``): decoded only when asked
    mtime_of: dict[str, int]
    pairs: dict[tuple[int, int], StoredPair]
    same_pixels: frozenset[tuple[int, int]]
    decoded: frozenset[tuple[int, int]] = frozenset()
    size_of: dict[str, int] = field(default_factory=dict)


def gather(rows: RunRows, part_paths: list[str], pair_paths: list[str]) -> Gathered:
    """The pairs of ``pair_paths``, and the facts of the index rows the answer holds: those of a pair
    and those with several paths (``rows``; every other row is a group of one, which ``find``
    leaves out). Each fingerprint part is read once, and only if it holds such a row."""
    looks, same, decoded = _pairs(pair_paths)
    wanted = rows.shared()
    ends = np.fromiter((pk for key in looks for pk in key), np.int64, count=2 * len(looks))
    wanted[ends] = True
    at = rows.with_pks(wanted)
    by_part = np.argsort(rows.part[at], kind="stable")
    at_part = rows.part[at][by_part]
    values: dict[int, tuple[Any, ...]] = {}  # position (path order) -> its ROW_COLUMNS and size
    for p in np.unique(at_part).tolist():
        lo, hi = np.searchsorted(at_part, [p, p + 1])
        positions = at[by_part[lo:hi]]
        t = pq.read_table(part_paths[p], columns=[*ROW_COLUMNS, "size"]).take(pa.array(rows.row[positions]))
        values.update(zip(positions.tolist(), zip(*(t.column(n).to_pylist() for n in [*ROW_COLUMNS, "size"]))))
    paths_of: dict[int, list[str]] = defaultdict(list)
    facts: dict[int, RowFacts] = {}
    encoded: dict[int, bytes] = {}
    mtime_of: dict[str, int] = {}
    size_of: dict[str, int] = {}
    for position in at.tolist():  # path order: a row's facts are its first path's
        url, sha, fpb, lossless, taken_at, quality, padding, aspect, mtime_ns, colours, step, size = values.pop(
            position
        )
        pk = int(rows.pk[position])
        paths_of[pk].append(url)
        mtime_of[url], size_of[url] = mtime_ns or 0, size
        if pk not in facts:
            fp = fingerprint_from_bytes(fpb)
            facts[pk] = RowFacts(
                pk, pk, sha, fp.width, fp.height, fp.mime, bool(lossless), taken_at, quality, padding or 0.0,
                aspect or fp.width / max(1, fp.height), colours, step,
            )  # fmt: skip
            encoded[pk] = fpb
    return Gathered(dict(paths_of), facts, encoded, mtime_of, looks, frozenset(same), frozenset(decoded), size_of)


def _pairs(
    pair_paths: list[str],
) -> tuple[dict[tuple[int, int], StoredPair], set[tuple[int, int]], set[tuple[int, int]]]:
    """Each pair as the better of its two ends' checks saw it, ties to the lower row's check (as
    ``find`` combines them), and the pairs found to hold the same pixels, and pixels a level apart."""
    looks: dict[tuple[int, int], StoredPair] = {}
    same: set[tuple[int, int]] = set()
    decoded: set[tuple[int, int]] = set()
    columns = (
        "file_pk", "peer_pk", "score", "verdict", "evidence", "phash_bits", "by_local_features", "same_pixels",
        "decoded_pixels",
    )  # fmt: skip
    for path in pair_paths:
        t = pq.read_table(path, columns=list(columns))
        for file_pk, peer, score, verdict, evidence, bits, by_local, same_pixels, alike in zip(
            *(t.column(n).to_pylist() for n in columns)
        ):
            lo, hi = sorted((file_pk, peer))
            look = StoredPair(lo, hi, score, Verdict(verdict), evidence, bits, by_local)
            kept = looks.get((lo, hi))
            # a tie goes to the lower row's check, which ``find`` (checking in row order) sees first,
            # whatever the order of the parts (a grown run's partitions interleave)
            if kept is None or score > kept.score or (score == kept.score and file_pk == lo):
                looks[lo, hi] = look
            if same_pixels:
                same.add((lo, hi))
            if alike:
                decoded.add((lo, hi))
    return looks, same, decoded


@dataclass(slots=True)
class RunSourceEvidence:
    """``scan.evidence.SourceEvidence`` from a run's files: facts from the fingerprint rows, pixels
    compared by the verify stage, spectra from the spectrum stage (``spectra``: None for a row
    that could not be read). A spectrum not there yet is taken as unknown and noted in ``asked``
    (``with_spectra`` has it computed and the choice made again)."""

    gathered: Gathered
    spectra: dict[int, bytes | None] = field(default_factory=dict)
    asked: set[int] = field(default_factory=set)
    _fps: dict[int, Fingerprint] = field(default_factory=dict)

    def fingerprint(self, pk: int) -> Fingerprint:
        """The row's fingerprint, decoded once."""
        if pk not in self._fps:
            self._fps[pk] = fingerprint_from_bytes(self.gathered.fingerprints[pk])
        return self._fps[pk]

    def facts(self, pk: int, path: str) -> SourceFacts:
        """``member_facts`` from the row's facts and fingerprint and the path's listed mtime."""
        return member_facts(path, self.gathered.facts[pk], self.fingerprint(pk), self.gathered.mtime_of.get(path, 0))

    def spectrum(self, pk: int) -> npt.NDArray[np.float64] | None:
        """The spectrum profile the spectrum stage computed, or None."""
        if pk not in self.spectra:
            self.asked.add(pk)
            return None
        kept = self.spectra[pk]
        return None if kept is None else np.frombuffer(kept, dtype=np.float64)

    def same_pixels(self, a_pk: int, b_pk: int) -> bool:
        """What the verify stage found when it compared the two files' pixels."""
        return (min(a_pk, b_pk), max(a_pk, b_pk)) in self.gathered.same_pixels

    def decoded(self, a_pk: int, b_pk: int) -> bool:
        """What the verify stage found when it compared the two files' pixels to a level."""
        return (min(a_pk, b_pk), max(a_pk, b_pk)) in self.gathered.decoded


def with_spectra(
    evidence: RunSourceEvidence, choose: Callable[[], T], fetch: Callable[[list[int], int], Mapping[int, bytes | None]]
) -> T:
    """``choose()`` (keepers chosen from ``evidence``) again until it asks for no spectrum it lacks;
    ``fetch(rows, round)`` computes the spectra asked for in between. The choice asks for a
    spectrum only of a group's leading candidate's larger copies, as ``find`` does on one machine
    (on the public benchmark's small tree: 143 files of 1,975, against 1,685 larger ends of links),
    so a few rounds of a few files each cost less than a full-size decode of every larger copy."""
    for round_number in count():
        chosen = choose()
        missing = sorted(evidence.asked - evidence.spectra.keys())
        if not missing:
            return chosen
        evidence.spectra.update(fetch(missing, round_number))
    raise AssertionError("unreachable")


def spectrum_task(rows: pa.Table, path: str, limits: DecodeLimits, storage_options: Mapping[str, Any]) -> int:
    """Compute the spectra of ``rows`` (``file_pk``, ``url``, ``sha256``) into ``path``; returns the count."""
    table = spectrum_rows(rows, limits=limits, storage_options=storage_options)
    write_atomically(table, path)
    return int(table.num_rows)


def read_spectra(paths: list[str]) -> dict[int, bytes]:
    """Every spectrum profile the spectrum stage wrote (rows it could not read left out)."""
    out: dict[int, bytes] = {}
    for path in paths:
        t = pq.read_table(path)
        for pk, spectrum in zip(t.column("file_pk").to_pylist(), t.column("spectrum").to_pylist()):
            if spectrum is not None:
                out[pk] = spectrum
    return out
