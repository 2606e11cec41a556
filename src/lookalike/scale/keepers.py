"""What the client of a scale-out run reads of its Parquet files to group the files and choose each
group's source as keeper, without reading an image: ``find``'s own decision
(``scan.evidence.source_order``) from the facts the workers wrote.

``RunPairs`` reads each pair as the better of its two ends' checks saw it (``schema.PAIRS``, as
``find`` combines them) into NumPy columns, and ``gather`` the facts (``schema.FINGERPRINTS``)
of one grouping batch's rows; ``RunSourceEvidence`` answers ``scan.evidence.SourceEvidence``
from all that, and the spectrum profiles the choice asks for (``with_spectra``), which
``spectrum_task`` computes on the workers (``schema.SPECTRA``).
Memory on the client: the pairs' columns, and one batch's rows and pairs as Python objects.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from itertools import count
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits
from lookalike.fingerprints import Fingerprint, fingerprint_from_bytes
from lookalike.match import Verdict
from lookalike.scale.memory import give_back
from lookalike.scale.rows import RunRows
from lookalike.scale.stages import spectrum_rows, write_atomically
from lookalike.scan.cache import RowFacts, StoredPair
from lookalike.scan.evidence import member_facts
from lookalike.scan.source import SourceFacts

T = TypeVar("T")
I32 = npt.NDArray[np.int32]

__all__ = [
    "FACT_COLUMNS",
    "ROW_COLUMNS",
    "Gathered",
    "RunPairs",
    "RunSourceEvidence",
    "gather",
    "spectrum_task",
    "with_spectra",
]

#: the columns of ``schema.FINGERPRINTS`` the client reads
ROW_COLUMNS = [
    "url", "sha256", "fingerprint", "lossless", "taken_at", "jpeg_quality", "padding", "content_aspect", "mtime_ns",
    "colours", "grid_step",
]  # fmt: skip
#: the columns ``gather`` takes: ``ROW_COLUMNS`` and each file's size
FACT_COLUMNS = [*ROW_COLUMNS, "size"]


@dataclass(frozen=True, slots=True)
class Gathered:
    """The rows of a run's answer and its pairs as ``groups_of_links`` takes them (each path's
    size in ``size_of``), and what the pairs said of pixels."""

    paths_of: dict[int, list[str]]
    facts: dict[int, RowFacts]
    fingerprints: dict[int, bytes]  # encoded (``fingerprint_from_bytes``): decoded only when asked
    mtime_of: dict[str, int]
    pairs: dict[tuple[int, int], StoredPair]
    same_pixels: frozenset[tuple[int, int]]
    decoded: frozenset[tuple[int, int]] = frozenset()
    size_of: dict[str, int] = field(default_factory=dict)


_PAIR_COLUMNS = [
    "file_pk", "peer_pk", "score", "verdict", "evidence", "phash_bits", "by_local_features", "same_pixels",
    "decoded_pixels",
]  # fmt: skip
_VERDICTS = list(Verdict)


@dataclass(frozen=True, slots=True)
class RunPairs:
    """Every pair of a run once, as the better of its two ends' checks saw it (ties to the lower
    row's check, which ``find``, checking in row order, sees first, whatever the order of the parts:
    a grown run's partitions interleave), sorted by ``(lo, hi)`` index rows: NumPy columns (28 bytes
    a pair). ``verdict`` indexes ``list(Verdict)``; ``bits`` is -1 where unknown; ``same`` and
    ``decoded``: whether any check of the pair found the same pixels, or pixels a level apart;
    ``evidence`` indexes ``words`` (a check's evidence is one of few sentences)."""

    lo: I32
    hi: I32
    score: npt.NDArray[np.float64]
    verdict: npt.NDArray[np.int8]
    bits: I32
    by_local: npt.NDArray[np.bool_]
    same: npt.NDArray[np.bool_]
    decoded: npt.NDArray[np.bool_]
    evidence: I32
    words: tuple[str, ...]

    @classmethod
    def read(cls, pair_paths: list[str]) -> RunPairs:
        """The pairs of the matching stage's files ``pair_paths`` (``schema.PAIRS``), read a file at
        a time into compact columns: no Arrow table of every check is held."""
        words: dict[str, int] = {}
        read = [_checks(pq.read_table(p, columns=_PAIR_COLUMNS), words) for p in pair_paths]
        c = {name: np.concatenate([r[name] for r in read]) if read else _NO_CHECKS[name] for name in _NO_CHECKS}
        del read
        lo, hi = c["lo"], c["hi"]
        order = np.lexsort((np.arange(len(lo)), ~c["lower"], -c["score"], hi, lo))
        new = np.ones(len(order), np.bool_)
        new[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
        best, starts = order[new], np.flatnonzero(new)

        def flag(name: str) -> npt.NDArray[np.bool_]:
            values = c[name][order]
            return np.logical_or.reduceat(values, starts) if len(starts) else np.zeros(0, np.bool_)

        pairs = cls(
            lo[best], hi[best], c["score"][best], c["verdict"][best], c["bits"][best], c["by_local"][best],
            flag("same"), flag("decoded"), c["evidence"][best], tuple(words),
        )  # fmt: skip
        give_back()
        return pairs

    def __len__(self) -> int:
        return len(self.lo)

    def linking(self, link: Collection[Verdict]) -> npt.NDArray[np.bool_]:
        """Whether each pair's verdict links files (``FindOptions.link``)."""
        return np.isin(self.verdict, np.asarray([_VERDICTS.index(v) for v in link], np.int8))

    def stored(self, at: npt.NDArray[np.intp]) -> dict[tuple[int, int], StoredPair]:
        """Pairs ``at`` as ``find`` keeps them, keyed ``(lo, hi)``."""
        columns = (self.lo[at], self.hi[at], self.score[at], self.verdict[at], self.bits[at], self.by_local[at])
        out: dict[tuple[int, int], StoredPair] = {}
        for lo, hi, score, verdict, bits, by_local, word in zip(*(c.tolist() for c in columns), self.evidence[at]):
            out[lo, hi] = StoredPair(
                lo, hi, score, _VERDICTS[verdict], self.words[word], None if bits < 0 else bits, by_local
            )
        return out


#: the compact columns of no check (``_checks``)
_NO_CHECKS: dict[str, npt.NDArray[Any]] = {
    "lo": np.zeros(0, np.int32), "hi": np.zeros(0, np.int32), "lower": np.zeros(0, np.bool_),
    "score": np.zeros(0, np.float64), "verdict": np.zeros(0, np.int8), "bits": np.zeros(0, np.int32),
    "by_local": np.zeros(0, np.bool_), "same": np.zeros(0, np.bool_), "decoded": np.zeros(0, np.bool_),
    "evidence": np.zeros(0, np.int32),
}  # fmt: skip


def _checks(t: pa.Table, words: dict[str, int]) -> dict[str, npt.NDArray[Any]]:
    """One pairs file's checks (``schema.PAIRS``) as the compact columns ``RunPairs.read`` sorts:
    each check's pair ``(lo, hi)``, whether it is the lower row's check, its score, verdict,
    bits, local features, pixel flags, and evidence as a number in ``words`` (added to)."""
    a, b = (t.column(n).to_numpy().astype(np.int32) for n in ("file_pk", "peer_pk"))
    verdicts = pc.dictionary_encode(t.column("verdict")).combine_chunks()
    code = np.asarray([_VERDICTS.index(Verdict(v)) for v in verdicts.dictionary.to_pylist()], np.int8)
    evidence = pc.dictionary_encode(t.column("evidence")).combine_chunks()
    number = np.asarray([words.setdefault(w, len(words)) for w in evidence.dictionary.to_pylist()], np.int32)

    def flag(name: str) -> npt.NDArray[np.bool_]:
        return np.asarray(pc.fill_null(t.column(name), False).to_numpy(zero_copy_only=False), np.bool_)

    return {
        "lo": np.minimum(a, b), "hi": np.maximum(a, b), "lower": a <= b,
        "score": t.column("score").to_numpy().astype(np.float64),
        "verdict": code[_indices(verdicts)],
        "bits": pc.fill_null(t.column("phash_bits"), -1).to_numpy().astype(np.int32),
        "by_local": flag("by_local_features"), "same": flag("same_pixels"), "decoded": flag("decoded_pixels"),
        "evidence": number[_indices(evidence)],
    }  # fmt: skip


def _indices(encoded: pa.DictionaryArray) -> npt.NDArray[np.intp]:
    """The dictionary indices of ``encoded``."""
    return np.asarray(encoded.indices.to_numpy(zero_copy_only=False), np.intp)


def gather(
    values: pa.Table, rows: RunRows, at: npt.NDArray[np.intp], pairs: RunPairs, links: npt.NDArray[np.intp],
    among: npt.NDArray[np.intp],
) -> Gathered:  # fmt: skip
    """The facts of the rows at positions ``at`` of ``rows`` (path order: one batch of the answer's
    rows) from ``values`` (their ``FACT_COLUMNS`` and ``position``, as ``fact_spill.FactSpill``
    gives a batch), the linking pairs ``links`` among them and what the pairs ``among`` them said
    of pixels."""
    columns = (values.column(n).to_pylist() for n in FACT_COLUMNS)
    found = dict(zip(values.column("position").to_pylist(), zip(*columns)))  # position -> its FACT_COLUMNS
    paths_of: dict[int, list[str]] = defaultdict(list)
    facts: dict[int, RowFacts] = {}
    encoded: dict[int, bytes] = {}
    mtime_of: dict[str, int] = {}
    size_of: dict[str, int] = {}
    for position in np.sort(at).tolist():  # path order: a row's facts are its first path's
        url, sha, fpb, lossless, taken_at, quality, padding, aspect, mtime_ns, colours, step, size = found.pop(position)
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
    same = {(lo, hi) for lo, hi, s in zip(pairs.lo[among].tolist(), pairs.hi[among].tolist(), pairs.same[among]) if s}
    alike = {
        (lo, hi) for lo, hi, d in zip(pairs.lo[among].tolist(), pairs.hi[among].tolist(), pairs.decoded[among]) if d
    }
    return Gathered(
        dict(paths_of), facts, encoded, mtime_of, pairs.stored(links), frozenset(same), frozenset(alike), size_of
    )


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
