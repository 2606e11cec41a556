"""Commands over a persistent index: index, check, remove, review, stats."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lookalike.cli.output import EXIT_FAILED, json_line, reporting_errors, say
from lookalike.cli.progress import progress_bar
from lookalike.cli.settings import SettingsOption, thresholds_from
from lookalike.decode import is_url
from lookalike.fingerprints import FINGERPRINT_VERSION, Analysis, analyse_files, default_jobs
from lookalike.index.records import DEFAULT_SCOPE, Decision
from lookalike.walk import each_file_once, iter_image_files

if TYPE_CHECKING:
    from lookalike.config import Thresholds
    from lookalike.index import CheckResult, Index

DbOption = Annotated[
    str,
    typer.Option("--db", help="The index database: an SQLite file (created if missing) or a postgresql:// URL."),
]
ScopeOption = Annotated[str, typer.Option("--scope", help="The collection (user, album…) to work in.")]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Processes for fingerprinting; 0 = all cores.")]

_BATCH = 64


def _open(db: str, *, create: bool = True, thresholds: Thresholds | None = None) -> Index:
    from lookalike.index import Index  # loads the Hamming kernels: only for commands that search

    return Index(db, create=create, thresholds=thresholds)


def register(app: typer.Typer) -> typer.Typer:
    """Add this module's commands to ``app``; returns the ``review`` group (others add to it)."""
    app.command("index")(index_command)
    app.command("check")(check_command)
    app.command("remove")(remove_command)
    app.command("stats")(stats_command)
    review = typer.Typer(help="Potential duplicates waiting for a person's decision.", invoke_without_command=True)
    review.callback()(review_list)
    review.command("decide")(review_decide)
    app.add_typer(review, name="review")
    app.command("eval")(eval_command)
    return review


def index_command(
    paths: Annotated[list[Path], typer.Argument(help="Image files and folders (searched recursively).")],
    db: DbOption,
    scope: ScopeOption = DEFAULT_SCOPE,
    jobs: JobsOption = 0,
    settings: SettingsOption = None,
) -> None:
    """Add images to the index; report how many were added, already present, or failed."""
    files = list(each_file_once(iter_image_files(paths)))
    added = present = failed = 0
    with reporting_errors(), _open(db, thresholds=thresholds_from(settings)) as index:
        batch: list[tuple[Analysis, str]] = []

        def flush() -> None:
            nonlocal added, present
            for r in index.add_analyses(batch, scope=scope):
                added += r.added
                present += not r.added
            batch.clear()

        with progress_bar(total=len(files), enabled=len(files) >= 20, label="indexing") as advance:
            for r in analyse_files(files, jobs=jobs or default_jobs(), local=True):
                advance()
                if r.analysis is None:
                    failed += 1
                    say(f"error: {r.error}", err=True)
                    continue
                batch.append((r.analysis, str(r.path.resolve())))
                if len(batch) >= _BATCH:
                    flush()
            flush()
    say(f"added {added}, already present {present}, failed {failed}")
    if failed:
        raise typer.Exit(EXIT_FAILED)


def check_command(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or http(s) URLs to check.")],
    db: DbOption,
    scope: ScopeOption = DEFAULT_SCOPE,
    top: Annotated[int, typer.Option("--top", min=1, help="Matches to report per input.")] = 10,
    jobs: JobsOption = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per input.")] = False,
    settings: SettingsOption = None,
) -> None:
    """Is each image already in the index? One line per input with its verdict and matches."""
    from lookalike.index.parallel import check_files  # loads the index's kernels: only when checking

    found = (i if is_url(i) else str(p) for i in inputs for p in ([Path(i)] if is_url(i) else iter_image_files([i])))
    expanded = list(each_file_once(found))
    failed = 0
    with reporting_errors():
        thresholds = thresholds_from(settings)
        checks = check_files(db, expanded, scope=scope, top=top, jobs=jobs or default_jobs(), thresholds=thresholds)
        with progress_bar(
            total=len(expanded), enabled=not as_json and len(expanded) >= 20, label="checking"
        ) as advance:
            for item, c in zip(expanded, checks):
                advance()
                if c.result is None:
                    failed += 1
                    if as_json:
                        json_line({"path": item, "error": {"code": c.error_code, "message": c.error}})
                    else:
                        say(f"error: {c.error}", err=True)
                    continue
                _print_check(item, c.result, as_json)
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _print_check(item: str, result: CheckResult, as_json: bool) -> None:
    if as_json:
        json_line({"path": item, "verdict": result.verdict, "matches": [m.to_dict() for m in result.matches]})
        return
    say(f"{item}: {result.verdict}")
    for m in result.matches:
        if m.verdict.value != "different":
            say(f"  {m.score:.3f}  {m.verdict.value:14s}  {m.image_id}  {m.file.source}  — {m.explanation}")


def remove_command(
    image_ids: Annotated[list[str], typer.Argument(help="Image ids to delete from the index.")],
    db: DbOption,
    scope: ScopeOption = DEFAULT_SCOPE,
) -> None:
    """Delete images (all their files) from the index."""
    with reporting_errors(), _open(db, create=False) as index:
        for image_id in image_ids:
            index.remove(image_id, scope=scope)
            say(f"removed {image_id}")


def review_list(
    ctx: typer.Context,
    db: DbOption,
    scope: Annotated[str | None, typer.Option("--scope", help="Only this scope (default: all).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include pairs already decided.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per pair.")] = False,
) -> None:
    """List potential-duplicate pairs waiting for a decision (`review decide` records one)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = db
        return
    with reporting_errors(), _open(db, create=False) as index:
        pairs = index.review(scope=scope, decision=None if show_all else Decision.PENDING)
    for p in pairs:
        if as_json:
            json_line(
                {"pair": p.pk, "scope": p.scope, "a": p.a_id, "b": p.b_id, "a_path": p.a_source,
                 "b_path": p.b_source, "score": round(p.score, 4), "verdict": p.verdict, "evidence": p.evidence,
                 "decision": p.decision.value}
            )  # fmt: skip
        else:
            say(
                f"#{p.pk}  [{p.scope}]  {p.a_id} ({p.a_source}) ~ {p.b_id} ({p.b_source})  "
                f"score {p.score:.3f}  {p.decision.value}"
            )
            say(f"      {p.evidence}")
    if not pairs and not as_json:
        say("nothing to review")


def review_decide(
    ctx: typer.Context,
    pair: Annotated[int, typer.Argument(help="The pair number shown by `lookalike review`.")],
    decision: Annotated[Decision, typer.Argument(help="duplicate or not_duplicate.")],
) -> None:
    """Record a decision on a pair; later checks and scans honour it."""
    with reporting_errors(), _open(ctx.obj, create=False) as index:
        p = index.decide(pair, decision)
    say(f"#{p.pk} {p.a_id} ~ {p.b_id}: {p.decision.value}")


def stats_command(db: DbOption) -> None:
    """Counts of scopes, images, files and review pairs."""
    with reporting_errors(), _open(db, create=False) as index:
        s = index.stats()
        memory = index.memory_bytes()
    say(
        f"scopes {s.scopes}, images {s.images}, files {s.files}, review pending {s.review_pending}, "
        f"decided {s.review_decided}; {s.bytes_on_disk:,} bytes on disk, {memory:,} bytes of in-memory index"
    )
    if s.outdated_fingerprints:
        typer.echo(
            f"{s.outdated_fingerprints} files carry fingerprints older than v{FINGERPRINT_VERSION}: they still match, "
            "but their hashes may differ from new ones in tie bits; add them again to refresh them"
        )


def eval_command(
    bench: Annotated[Path, typer.Argument(help="A folder with references/, queries/ and truth.json.")],
    jobs: JobsOption = 0,
    top: Annotated[int, typer.Option("--top", min=1, help="Matches per query.")] = 10,
    db: Annotated[Path | None, typer.Option("--db", help="Keep the index here (default: a temporary file).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    settings: SettingsOption = None,
) -> None:
    """Measure lookalike on labelled images: uAP, recall at precision 0.90/0.99, per-edit recall, verdicts."""
    from lookalike.evaluate import evaluate_folder  # loads the index: only for this command

    with reporting_errors():
        report = evaluate_folder(bench, db=db, jobs=jobs, top=top, thresholds=thresholds_from(settings))
    if as_json:
        json_line(report.to_dict())
        return
    d = report.to_dict()
    for key in ("uAP", "recall@P90", "recall@P99", "verdict_precision", "verdict_recall", "positives", "predictions"):
        say(f"{key:>20}: {d[key]}")
    say("recall per edit at the precision-0.90 cut:")
    for edit, value in d["recall_by_edit@P90"].items():
        say(f"{edit:>20}: {value}")
    if report.failed:
        say(f"{report.failed} files could not be read", err=True)
