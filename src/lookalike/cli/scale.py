"""``find`` and ``hash`` on a Dask cluster: ``--cluster local:N|tcp://HOST:8786 --out RUN_DIR [--resume]``.

The commands in ``find.py`` and ``main.py`` hand over to these functions when ``--cluster`` is
given; everything else about them (options, the JSON document, exit codes) stays as it is.
Runs on a cluster produce a report (``--action report``): a list of paths to act on, never a
deletion inside a bucket.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lookalike.cli.output import EXIT_FAILED, fail, json_line, print_file_error, reporting_errors
from lookalike.cli.progress import progress_bar, status

if TYPE_CHECKING:
    from lookalike.scan import FindOptions

__all__ = [
    "ClusterOption",
    "ClusterRun",
    "OutOption",
    "PartitionOption",
    "ResumeOption",
    "StorageOption",
    "find_on_cluster",
    "hash_on_cluster",
    "is_remote",
]

ClusterOption = Annotated[
    str | None,
    typer.Option(
        "--cluster", help="Run on Dask: local:N (N worker processes here) or tcp://HOST:8786 (a running scheduler)."
    ),
]
OutOption = Annotated[
    str | None,
    typer.Option(
        "--out",
        help="Run folder for the Parquet files and groups.parquet (with --cluster): a local path or file:// URL"
        " every worker can reach (a shared disk); object storage is refused.",
    ),
]
ResumeOption = Annotated[
    bool, typer.Option("--resume", help="Go on with the run in --out, reusing every finished partition.")
]
PartitionOption = Annotated[int, typer.Option("--partition-size", min=1, help="Files a task (with --cluster).")]
StorageOption = Annotated[
    str | None,
    typer.Option("--storage-options", help="JSON passed to every fsspec filesystem, e.g. '{\"anon\": true}'."),
]


def is_remote(source: str) -> bool:
    """Whether a source names an object store or another fsspec protocol rather than a local path."""
    return "://" in source and not source.startswith("file://")


def _storage(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        fail(f"--storage-options is not JSON ({exc.msg})")
    if not isinstance(value, dict):
        fail("--storage-options must be a JSON object")
    return value


#: the stage whose bar or spinner is on the terminal (a terminal shows one at a time)
_shown: list[str] = []


@contextmanager
def _progress(total: int, label: str) -> Iterator[Callable[[], None]]:
    """A bar for a stage of ``total`` tasks, and a spinner for a step of the client's (listing,
    grouping: one step of unknown length), on a terminal. A stage within another (the
    spectra a keeper choice asks for while grouping) shows under the outer one's."""
    if _shown:
        yield lambda: None
        return
    _shown.append(label)
    try:
        if total >= 2:
            with progress_bar(total=total, enabled=True, label=label) as advance:
                yield advance
        else:
            with status(f"{label} ..."):
                yield lambda: None
    finally:
        _shown.pop()


def _arrow_on_glibc() -> None:
    """Arrow's C++ default pool on glibc's allocator in this process and the local workers it
    starts (they inherit the environment), set before pyarrow is first imported: it reads
    ``ARROW_DEFAULT_MEMORY_POOL`` then, once. ``scale.memory.client_memory`` can only switch
    the pool pyarrow's own calls use; Parquet's reader threads allocate from the C++ default
    (mimalloc), whose pages freed in those threads stay with them: reading a 2,896-row
    ``groups.parquet`` left the client 14 MB larger, 0 MB on glibc. A value the user set is kept."""
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")


def _quiet_dask() -> None:
    """Leave the cause of a failed run to its one line (``ClusterError``): Dask's client would add
    its own tracebacks of lost connections and cancelled futures. Its loggers get their levels from
    Dask's configuration when it is imported, so that comes first."""
    import distributed  # noqa: F401 - configures the loggers set here

    for name in [n for n in logging.root.manager.loggerDict if n.split(".")[0] == "distributed"]:
        logging.getLogger(name).setLevel(logging.CRITICAL)
    # a run given up on leaves the client's waits cancelled, which asyncio reports as "never retrieved"
    logging.getLogger("asyncio").setLevel(logging.CRITICAL)


def _run_folder(out: str) -> Path:
    """``--out`` as a folder this machine can write, or the one line that says why it cannot be."""
    if is_remote(out):
        fail(
            f"--out {out}: the run folder must be a path on a disk every worker can reach (a shared disk, or"
            " file://); object storage cannot hold it"
        )
    path = Path(out.removeprefix("file://")).absolute()
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as exc:
        fail(f"--out {out}: cannot write there ({exc.strerror or exc})")
    return path


@dataclass(frozen=True, slots=True)
class ClusterRun:
    """The options of a command run on a cluster (``--cluster``, ``--out``, ``--resume``,
    ``--partition-size``, ``--storage-options``), checked together."""

    cluster: str
    out: Path
    resume: bool
    partition_size: int
    storage_options: str | None

    @staticmethod
    def of(
        sources: list[str],
        cluster: str | None,
        out: str | None,
        resume: bool,
        partition_size: int,
        storage_options: str | None,
    ) -> ClusterRun | None:
        """The run on a cluster the options ask for, or None to run here. Refuses options that need
        ``--cluster`` without it, and ``--cluster`` without ``--out``."""
        if cluster is None:
            if out is not None or resume:
                fail("--out and --resume go with --cluster")
            remote = [s for s in sources if is_remote(s)]
            if remote:
                fail(f"{remote[0]}: sources in object storage need --cluster (e.g. --cluster local:2)")
            return None
        if out is None:
            fail("--cluster needs --out RUN_DIR, the folder the run writes to")
        return ClusterRun(cluster, _run_folder(out), resume, partition_size, storage_options)

    def pipeline(self, **kwargs: Any) -> Any:
        """A ``Pipeline`` with these options (and ``kwargs``), or the one error line that says which
        extra to install."""
        _arrow_on_glibc()
        try:
            from lookalike.scale import Pipeline
        except ImportError as exc:
            fail(f"--cluster needs the dask extra: pip install 'lookalike[dask]' ({exc})")
        return Pipeline(partition_size=self.partition_size, storage_options=_storage(self.storage_options), **kwargs)

    def where(self) -> dict[str, Any]:
        """Where and how ``Pipeline.run``/``hash`` run: the keywords both take. Connects to the
        cluster (``ClusterError`` when it cannot be used) and prints its dashboard's address."""
        from lookalike.scale.memory import client_memory
        from lookalike.scale.runner import DaskRunner

        _quiet_dask()
        client_memory()  # this process is the run's client: it gives back what it frees

        with status(f"connecting to {self.cluster} ..."):
            runner = DaskRunner(self.cluster)
        if runner.dashboard:
            typer.echo(f"lookalike: dashboard at {runner.dashboard}", err=True)
        return {"out": self.out, "cluster": runner, "resume": self.resume, "progress": _progress}


def find_on_cluster(
    sources: list[str], run_on: ClusterRun, *, options: FindOptions, as_json: bool, csv_path: Path | None
) -> None:
    """``lookalike find ... --cluster``: print what ``find`` prints, and write ``out/groups.parquet``."""
    with reporting_errors():
        # the thresholds ``find`` was given (``--settings``) judge the cluster's pairs too
        judged = {} if options.thresholds is None else {"thresholds": options.thresholds}
        run = run_on.pipeline(options=options, **judged).run(sources, **run_on.where())
        if csv_path is not None:
            from lookalike.report import write_csv

            write_csv(run.summary, csv_path, run.groups())  # a group at a time, from groups.parquet
    for w in run.warnings:
        typer.echo(f"lookalike: warning: {w}", err=True)
    result = run.summary
    if as_json:
        _json_streamed(run)
    else:
        from lookalike.cli.find import print_result

        print_result(run.summary, run.groups())  # a group at a time, from groups.parquet
    s = run.stats
    typer.echo(
        f"{run.groups_path}: fingerprint partitions {s.fingerprint_partitions} computed, {s.fingerprint_reused} reused;"
        f" matching partitions {s.verify_partitions} computed, {s.verify_reused} reused"
        + (  # a grown run's partitions are computed again, but most of their rows' checks are not
            f" (their rows: {s.rows['reused']:,} checks reused, {s.rows['extended']:,} extended,"
            f" {s.rows['checked']:,} checked)"
            if s.rows.get("reused") or s.rows.get("extended")
            else ""
        ),
        err=True,
    )
    if result.errors:
        raise typer.Exit(EXIT_FAILED)


def _json_streamed(run: Any) -> None:
    """``find --json``'s one line (``FindResult.to_dict``, as ``json_line`` writes it) written a
    group and a pair at a time from the run folder: the answer of millions of files is never
    held whole on the client."""
    out = sys.stdout
    out.write('{"groups":[')
    for i, g in enumerate(run.groups()):
        out.write(("," if i else "") + json.dumps(g.to_dict(), separators=(",", ":")))
    out.write('],"pairs":[')
    for i, p in enumerate(run.pairs()):
        out.write(("," if i else "") + json.dumps(p.to_dict(), separators=(",", ":")))
    rest = {k: v for k, v in run.summary.to_dict().items() if k not in ("groups", "pairs")}
    out.write("]," + json.dumps(rest, separators=(",", ":"))[1:-1])
    if run.similar_path is not None:  # with --similar: last, as find --json lists them
        out.write(',"similar":[')
        for i, s in enumerate(run.similar()):
            out.write(("," if i else "") + json.dumps(s.to_dict(), separators=(",", ":")))
        out.write("]")
    out.write("}\n")


def hash_on_cluster(sources: list[str], run_on: ClusterRun, *, as_json: bool) -> None:
    """``lookalike hash ... --cluster``: the fingerprint stage alone, into ``out/fingerprints/``."""
    with reporting_errors():
        run = run_on.pipeline().hash(sources, **run_on.where())
    for e in run.errors:
        print_file_error(e.path, e, as_json=as_json)
    summary = {
        "files": run.files, "errors": len(run.errors), "parts": list(run.parts), **run.stats.to_dict(),
    }  # fmt: skip
    if as_json:
        json_line(summary)
    else:
        typer.echo(
            f"{run.files:,} files into {len(run.parts)} Parquet files under {run_on.out / 'fingerprints'}"
            f" ({run.stats.fingerprint_partitions} computed, {run.stats.fingerprint_reused} reused)"
        )
    if run.errors:
        typer.echo(f"lookalike: {len(run.errors)} of {run.files} files could not be fingerprinted", err=True)
        raise typer.Exit(EXIT_FAILED)
