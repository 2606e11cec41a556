"""``Pipeline``: ``find`` and ``hash`` over many machines, with the answer of one machine.

    Pipeline().run(["s3://bucket/photos"], out="run1", cluster="local:2")

Sources are listed through fsspec (``storage``), split into partitions of ``partition_size``
files in sorted order and fingerprinted partition by partition into Parquet (``schema``). Rows
with the same bytes are one index row, numbered in order of first bytes as ``find`` numbers them.
The matching stage (``matching``) then runs as tasks: each partition's compact codes, every row's
pHash and PDQ in two memory-mapped arrays, and for each partition its rows' candidates (the
multi-index-hashing join of ``scale.join``, the nearest pHashes, the crop tier's descriptor votes
asked of shards of rows in turn), checked by ``find``'s own cascade from the fingerprints and
local features read from the parts that hold them. No task opens an index of every row. The
pairs are grouped by ``group_stage``: connected components on compact int ids, then ``find``'s own
``groups_of_links`` a batch of components at a time, each group's keeper its source as ``find``
chooses it, from the facts the stages wrote (``keepers``; the spectra it asks for computed on the
workers, in rounds). The answer goes to ``RUN_DIR/groups.parquet`` and
``RUN_DIR/answer-pairs.parquet`` as it is found (``answer``); ``ScaleRun`` reads it back a group
at a time (``lookalike find --json`` streams it) or whole (``ScaleRun.result``, the
``FindResult`` that ``find`` returns). With ``options.similar`` (the learned tier) the fingerprint
tasks embed each file too, and ``embed_stage`` lists the semantic neighbours ``find --similar``
lists in ``RUN_DIR/similar.parquet``. ``match`` runs the same stages from fingerprint files
written already.

Every partition's output is named by the digest of its inputs, so ``resume=True`` reuses each
finished one and recomputes the rest; on a source that grew, each matching task reuses or extends
the earlier checks of its old rows and checks in full only those whose answer may change
(``reuse``), with the answer of a fresh run; without ``resume`` a run folder that holds a run is refused
rather than mixed with. Memory on the client: the listing and each row's path, part and index
row as Arrow and NumPy columns (``rows.RunRows``, about a hundred bytes a file), the pairs as
NumPy columns (``keepers.RunPairs``, about 30 bytes a pair and its evidence's words), and one
grouping batch's Python objects; the pixels, local features and turned signals stay in the
workers and the Parquet files, and the answer on disk.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, TypedDict, Unpack

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits, Thresholds
from lookalike.errors import ConfigError, FileError
from lookalike.fingerprints import FINGERPRINT_VERSION
from lookalike.scale.answer import GroupSpill, read_groups, read_pairs, write_pairs
from lookalike.scale.embed_stage import EmbedSink, EmbedTarget, Tier, embeddings_path, read_similar, similar_stage
from lookalike.scale.faults import fingerprint_with_strikes
from lookalike.scale.group_stage import answer_pairs, group_batches
from lookalike.scale.keepers import Gathered, RunPairs, spectrum_task
from lookalike.scale.match_stage import match_stage
from lookalike.scale.partitions import digest, drop_others, plan_fingerprints
from lookalike.scale.reuse import SpectraFiles, checked_rows, content_key, signed_key
from lookalike.scale.rows import RunRows, listed_table
from lookalike.scale.runner import Runner, call, open_runner
from lookalike.scale.stages import error_rows, write_atomically
from lookalike.scale.storage import is_local, list_sources
from lookalike.scan.options import FindOptions, Progress, steps
from lookalike.scan.results import FindResult, FindStats, Group, Pair, SimilarPair

__all__ = ["DEFAULT_PARTITION_SIZE", "HashRun", "Pipeline", "RunStats", "ScaleRun", "Where"]

#: files a partition: big enough that a task outlives its scheduling cost (~1 ms) many times
#: over (a camera photo takes ~30 ms to fingerprint), small enough that a killed run loses little
DEFAULT_PARTITION_SIZE = 256
#: a group past this many files is more than a person can review; the run warns
REVIEWABLE_GROUP = 1000


class Where(TypedDict, total=False):
    """Where and how ``Pipeline.run`` and ``Pipeline.hash`` run. ``cluster``: None for processes on
    this machine, ``"local:N"`` (N Dask worker processes here), ``"tcp://HOST:8786"`` (a running
    scheduler) or a ``distributed.Client``; ``resume``: go on with the run in ``out``, reusing every
    finished partition; ``progress``: how each stage shows its progress."""

    cluster: str | Any | None
    resume: bool
    progress: Progress | None


@dataclass(frozen=True, slots=True)
class RunStats:
    """Work of one run: partitions computed now and reused from an earlier run, per stage."""

    fingerprint_partitions: int
    fingerprint_reused: int
    verify_partitions: int
    verify_reused: int
    index_reused: bool
    seconds: float
    #: rows of the matching partitions computed now whose earlier check was reused as it was,
    #: extended by their new candidates, or checked in full (``reuse``; a grown run's work)
    rows: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "fingerprint_partitions": self.fingerprint_partitions, "fingerprint_reused": self.fingerprint_reused,
            "verify_partitions": self.verify_partitions, "verify_reused": self.verify_reused,
            "index_reused": self.index_reused, "seconds": round(self.seconds, 2), "rows": dict(self.rows),
        }  # fmt: skip


@dataclass(frozen=True, slots=True)
class HashRun:
    """What ``Pipeline.hash`` wrote: the fingerprint files, files fingerprinted, and errors."""

    parts: tuple[str, ...]
    files: int
    errors: tuple[FileError, ...]
    stats: RunStats


@dataclass(frozen=True, slots=True)
class ScaleRun:
    """What ``Pipeline.run`` found, where, and the work it took. The answer is in the run folder
    (``groups_path``: ``schema.GROUPS``, ``pairs_path``: ``schema.ANSWER_PAIRS``), read one
    group or pair at a time (``groups``, ``pairs``); ``summary`` is the rest of ``find``'s result
    (counts, errors, roots; no groups or pairs), and ``result`` the whole of it in memory."""

    summary: FindResult
    groups_path: str
    pairs_path: str
    stats: RunStats
    warnings: tuple[str, ...] = field(default=())
    #: with ``--similar``: ``RUN_DIR/similar.parquet``, the semantic neighbours (``embed_stage.SIMILAR``)
    similar_path: str | None = None

    def groups(self) -> Iterator[Group]:
        """The groups, largest first, as ``find`` returns them, one at a time."""
        return read_groups(self.groups_path)

    def pairs(self) -> Iterator[Pair]:
        """The linked pairs as paths, as ``find`` returns them, one at a time."""
        return read_pairs(self.pairs_path)

    def similar(self) -> Iterator[SimilarPair]:
        """With ``--similar``, the semantic neighbours as ``find --similar`` lists them, one at a time."""
        return iter(()) if self.similar_path is None else read_similar(self.similar_path)

    @property
    def result(self) -> FindResult:
        """The ``FindResult`` that ``find`` returns (``lookalike find --json`` prints it), read whole."""
        similar = None if self.similar_path is None else tuple(self.similar())
        return replace(self.summary, groups=tuple(self.groups()), pairs=tuple(self.pairs()), similar=similar)


# ---- tasks: module-level functions, shipped to workers by reference --------------------------


def fingerprint_task(
    manifest: pa.Table, path: str, limits: DecodeLimits, storage_options: Mapping[str, Any],
    embed: EmbedTarget | None = None,
) -> tuple[int, int]:  # fmt: skip
    """Fingerprint one partition into ``path`` (atomically), a file that killed its worker twice
    left out as an error row (``faults``), and with ``embed`` embed each file from the same decode
    (``embed_stage``); returns (files, errors)."""
    if embed is None:
        return fingerprint_with_strikes(manifest, path, limits, storage_options)
    sink = EmbedSink(embed)
    done = fingerprint_with_strikes(manifest, path, limits, storage_options, sink.add)
    sink.write()
    return done


# ---- the pipeline ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Pipeline:
    """A scale-out ``find`` (``run``) or fingerprint stage alone (``hash``); see the module docstring.

    ``options`` are ``find``'s (scope, strict, keeper policy, keep-in folders, linking verdicts);
    ``storage_options`` go to every fsspec filesystem (e.g. ``{"anon": True}``)."""

    options: FindOptions = field(default_factory=FindOptions)
    partition_size: int = DEFAULT_PARTITION_SIZE
    storage_options: Mapping[str, Any] = field(default_factory=dict)
    limits: DecodeLimits = field(default_factory=DecodeLimits)
    thresholds: Thresholds = field(default_factory=Thresholds)

    def __post_init__(self) -> None:
        if self.partition_size < 1:
            raise ConfigError("the partition size must be at least 1 file")

    def hash(
        self, sources: Sequence[str | os.PathLike[str]], *, out: str | os.PathLike[str], **where: Unpack[Where]
    ) -> HashRun:
        """The fingerprint stage alone: ``out/fingerprints/*.parquet`` (``schema.FINGERPRINTS``)."""
        started = time.perf_counter()
        run_dir = self._prepare(out, where.get("resume", False))
        progress = where.get("progress")
        with closing(open_runner(where.get("cluster"))) as runner:
            with steps(progress, 1, "listing"):
                manifest = self._list(sources)
            parts, computed, read, errors = self._fingerprint(runner, manifest, run_dir, progress)
        stats = RunStats(computed, len(parts) - computed, 0, 0, False, time.perf_counter() - started)
        return HashRun(tuple(p for p, _ in parts), manifest.num_rows, tuple(errors), stats)

    def run(
        self, sources: Sequence[str | os.PathLike[str]], *, out: str | os.PathLike[str], **where: Unpack[Where]
    ) -> ScaleRun:
        """Groups of copies among the sources, as ``find`` finds them; writes ``out/groups.parquet``
        (and with ``options.similar``, ``out/similar.parquet``).

        Raises ``ConfigError`` for a run folder that holds another run (without ``resume``), a
        bad cluster, or ``options.similar`` without the ``learned`` extra; ``FetchError`` when a
        source cannot be listed."""
        started = time.perf_counter()
        opts = self.options
        tier = Tier.load(opts.model) if opts.similar else None  # a missing extra fails before any work
        run_dir = self._prepare(out, where.get("resume", False))
        progress = where.get("progress")
        keep_in = tuple(os.path.abspath(k) for k in opts.keep_in)
        with closing(open_runner(where.get("cluster"))) as runner:
            with steps(progress, 1, "listing"):
                manifest = self._list([*sources, *(k for k in keep_in if k not in sources)])
            parts, computed, read, errors = self._fingerprint(runner, manifest, run_dir, progress, tier)
            roots = tuple(os.path.abspath(os.fspath(s)) if is_local(os.fspath(s)) else os.fspath(s) for s in sources)
            found = _Fingerprinted(parts, computed, read, errors, manifest.num_rows)
            del manifest
            return self._from_fingerprints(runner, run_dir, found, roots + keep_in, started, progress, tier)

    def match(
        self, parts: Sequence[str | os.PathLike[str]], *, out: str | os.PathLike[str], **where: Unpack[Where]
    ) -> ScaleRun:
        """``run`` from the fingerprint stage on: the groups among the rows of fingerprint files
        ``parts`` (``schema.FINGERPRINTS``, written by ``hash`` or another tool, each in path order
        and all in that order together). Each file stands for its path, size and modification time
        in the run's digests. Raises ``ConfigError`` as ``run`` does."""
        started = time.perf_counter()
        tier = Tier.load(self.options.model) if self.options.similar else None
        run_dir = self._prepare(out, where.get("resume", False))
        named = []
        for part in parts:
            p = os.path.abspath(os.fspath(part))
            st = os.stat(p)
            named.append((p, digest(p, st.st_size, st.st_mtime_ns)))
        files = 0
        errors: list[FileError] = []
        for path, _ in named:
            t = pq.read_table(path, columns=["url", "error_code", "error"])
            files += t.num_rows
            errors.extend(error_rows(t))
        with closing(open_runner(where.get("cluster"))) as runner:
            found = _Fingerprinted(named, 0, 0, errors, files)
            return self._from_fingerprints(runner, run_dir, found, (), started, where.get("progress"), tier)

    def _from_fingerprints(
        self, runner: Runner, run_dir: str, found: _Fingerprinted, roots: tuple[str, ...], started: float,
        progress: Progress | None, tier: Tier | None,
    ) -> ScaleRun:  # fmt: skip
        """Matching, grouping and keepers of the fingerprinted rows ``found``, and with a ``tier`` the
        semantic neighbours; writes ``groups.parquet`` (and ``similar.parquet``)."""
        parts = found.parts
        keep_in = tuple(os.path.abspath(k) for k in self.options.keep_in)
        rows = RunRows.read([p for p, _ in parts])
        matched = match_stage(
            runner, parts, rows, run_dir, progress, scope=self.options.scope, thresholds=self.thresholds,
            limits=self.limits, storage_options=self.storage_options,
        )  # fmt: skip
        verified, computed, index_reused = matched.pairs, matched.computed, matched.stored_reused
        pairs = RunPairs.read(verified)
        groups_path = os.path.join(run_dir, "groups.parquet")
        pairs_path = os.path.join(run_dir, "answer-pairs.parquet")
        spill, written = GroupSpill(os.path.join(run_dir, "groups.spill.tmp")), list[str]()
        spectra_dir = os.path.join(run_dir, "spectra")
        known = SpectraFiles(spectra_dir, f"part-{digest(self.limits)}-")
        fetch = partial(self._spectra, runner, spectra_dir, known, progress, written)
        with steps(progress, 1, "grouping"):
            counts = group_batches(
                rows, [p for p, _ in parts], pairs, self.options, keep_in, spill, fetch, REVIEWABLE_GROUP,
                os.path.join(run_dir, "grouping"),
            )  # fmt: skip
            spill.finish(groups_path)
            answered = write_pairs(pairs_path, answer_pairs(rows, pairs))
        similar_path = None
        if tier is not None:
            similar_path = similar_stage(
                runner, run_dir, parts, rows, pairs, groups_path, progress, tier=tier,
                stored_digest=matched.stored_digest, thresholds=self.thresholds, limits=self.limits,
                storage_options=self.storage_options,
            )  # fmt: skip
        del rows, pairs
        drop_others(os.path.join(run_dir, "spectra"), set(written))
        errors = sorted(found.errors, key=lambda e: e.path)
        summary = FindResult(
            groups=(), pairs=(), errors=tuple(errors), roots=roots,
            stats=FindStats(
                files=found.files, read=found.read, cached=found.files - found.read, errors=len(errors),
                groups=counts.groups, duplicates=counts.duplicates, reclaimable_bytes=counts.reclaimable_bytes,
                pairs=answered, seconds=time.perf_counter() - started,
            ),
        )  # fmt: skip
        warnings = [
            f"a group of {size:,} files (keeper {keep}) is more than a person can review"
            for keep, size in counts.too_large or ()
        ]
        stats = RunStats(
            found.computed, len(parts) - found.computed, len(computed), len(verified) - len(computed), index_reused,
            time.perf_counter() - started, checked_rows(computed),
        )  # fmt: skip
        return ScaleRun(summary, groups_path, pairs_path, stats, tuple(warnings), similar_path)

    # ---- steps -------------------------------------------------------------------------------

    def _prepare(self, out: str | os.PathLike[str], resume: bool) -> str:
        run_dir = os.path.abspath(os.fspath(out))
        if not is_local(os.fspath(out)):
            raise ConfigError(f"--out {out}: the run folder must be a path every worker can reach (a shared disk)")
        if os.path.isdir(run_dir) and os.listdir(run_dir) and not resume:
            if not os.path.exists(os.path.join(run_dir, "manifest.parquet")):
                raise ConfigError(f"--out {out}: the folder is not empty and holds no run")
            raise ConfigError(f"--out {out}: the folder holds a run; pass --resume to go on with it, or choose another")
        # "": the run folder's own spill files (``answer.GroupSpill``)
        for sub in ("", "fingerprints", "matching", "pairs", "checks", "spectra", "embeddings", "similar", "grouping"):
            os.makedirs(os.path.join(run_dir, sub), exist_ok=True)
            for name in os.listdir(os.path.join(run_dir, sub)):
                if name.endswith(".tmp"):  # left by a run killed while writing
                    os.remove(os.path.join(run_dir, sub, name))
        return run_dir

    def _list(self, sources: Sequence[str | os.PathLike[str]]) -> pa.Table:
        """The ``MANIFEST`` of every source file, in path order, each once."""
        return listed_table(list_sources([os.fspath(s) for s in sources], self.storage_options))

    def _fingerprint(
        self, runner: Runner, manifest: pa.Table, run_dir: str, progress: Progress | None, tier: Tier | None = None
    ) -> tuple[list[tuple[str, str]], int, int, list[FileError]]:
        """Fingerprint every partition of ``manifest`` not already done, each file embedded from the
        same decode with a ``tier``: ([(path, digest)] in order, partitions computed, files read, errors)."""
        write_atomically(manifest, os.path.join(run_dir, "manifest.parquet"))
        salt = (FINGERPRINT_VERSION, self.limits)
        # spread over every worker: a grown source's new files are too few to fill one partition a worker
        planned = plan_fingerprints(
            manifest, run_dir, size=self.partition_size, salt=salt, write=write_atomically, spread=runner.workers
        )
        parts = [(p.path, p.digest) for p in planned]
        options = dict(self.storage_options)
        embed = partial(_embed_target, run_dir, tier)
        todo: list[tuple[str, tuple[Any, ...]]] = [
            (f"fingerprint-{p.digest}", (fingerprint_task, _own(p.rows), p.path, self.limits, options, embed(p.digest)))
            for p in planned
            if not p.done
        ]
        drop_others(os.path.join(run_dir, "fingerprints"), {p for p, _ in parts})
        read = 0
        with steps(progress, len(todo), "fingerprinting") as advance:
            for _, (files, _errors) in runner.map(call, todo):
                read += files
                advance()
        errors: list[FileError] = []
        for path, _ in parts:
            errors.extend(error_rows(pq.read_table(path, columns=["url", "error_code", "error"])))
        return parts, len(todo), read, errors

    def _spectra(
        self,
        runner: Runner,
        folder: str,
        files: SpectraFiles,
        progress: Progress | None,
        written: list[str],
        gathered: Gathered,
        batch: int,
        pks: list[int],
        round_number: int,
    ) -> dict[int, bytes | None]:
        """The spectrum profiles of rows ``pks`` (asked for in one round of keeper choices), computed
        on the workers into ``folder``, or reused (``files`` knows which file holds which); the
        files they come from are added to ``written``.

        A profile is a function of the file's bytes, so the files hold each row's content key
        (``reuse.content_key``) where ``SPECTRA`` has ``file_pk``, and a profile any run with these
        limits computed is reused: a grown run decodes only the files it had not asked for."""
        prefix = f"part-{digest(self.limits)}-"
        keys = {pk: signed_key(content_key(gathered.facts[pk].sha256)) for pk in pks}
        known = files.read(keys.values())
        todo: list[tuple[str, tuple[Any, ...]]] = []
        missing = list({keys[pk]: pk for pk in pks if keys[pk] not in known}.values())
        for start in range(0, len(missing), self.partition_size):
            chunk = missing[start : start + self.partition_size]
            urls = [gathered.paths_of[pk][0] for pk in chunk]
            rows = pa.table(
                {
                    "file_pk": [keys[pk] for pk in chunk],
                    "url": urls,
                    "sha256": [gathered.facts[pk].sha256 for pk in chunk],
                }
            )
            sd = digest([keys[pk] for pk in chunk], urls)
            path = os.path.join(folder, f"{prefix}{sd}.parquet")
            args = (spectrum_task, rows, path, self.limits, dict(self.storage_options))
            todo.append((f"spectra-{batch:05d}-{round_number:02d}-{sd}", args))
        with steps(progress, len(todo), "spectra") as advance:
            for _ in runner.map(call, todo):
                advance()
        files.add([args[2] for _, args in todo])
        known.update(files.read([keys[pk] for pk in missing]))  # only what was just written
        written.extend({known[keys[pk]][1] for pk in pks if keys[pk] in known})
        return {pk: known[keys[pk]][0] if keys[pk] in known else None for pk in pks}


@dataclass(frozen=True, slots=True)
class _Fingerprinted:
    """What the fingerprint stage gave: its parts (path, digest) in order, partitions computed now,
    files read now, error rows, and files listed."""

    parts: list[tuple[str, str]]
    computed: int
    read: int
    errors: list[FileError]
    files: int


def _embed_target(run_dir: str, tier: Tier | None, part_digest: str) -> EmbedTarget | None:
    """Where the fingerprint task of part ``part_digest`` writes its embeddings (None: the tier is off)."""
    return None if tier is None else EmbedTarget(tier.model, embeddings_path(run_dir, tier.name, part_digest))


def _own(rows: pa.Table) -> pa.Table:
    """``rows`` in buffers of their own: a slice of the manifest pickles the whole manifest (Arrow
    pickles a slice's full buffers), so each task would carry every file of the run."""
    return rows.take(pa.array(np.arange(rows.num_rows)))
