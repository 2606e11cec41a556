"""Commands over a persistent index: index, check, remove, review, stats."""

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lookalike.cli.output import (
    EXIT_FAILED,
    ExitCodeOption,
    JsonOption,
    exit_status,
    fail,
    json_line,
    print_file_error,
    reporting_errors,
    say,
)
from lookalike.cli.progress import progress_bar
from lookalike.cli.settings import SettingsOption, settings_from, thresholds_from
from lookalike.index.store.records import DEFAULT_SCOPE, Decision, OnDuplicate
from lookalike.walk import each_file_once, iter_image_files

if TYPE_CHECKING:
    from lookalike.config import LearnedSettings, Thresholds
    from lookalike.index import CheckResult, Index
    from lookalike.index.results import AddOutcome

DbOption = Annotated[
    str,
    typer.Option("--db", help="The index database: an SQLite file (created if missing) or a postgresql:// URL."),
]
#: ``--db`` of a subcommand of a group that takes ``--db`` itself: either place works
SubDbOption = Annotated[
    str | None, typer.Option("--db", help="The index database (here or before the subcommand).", show_default=False)
]
ScopeOption = Annotated[str, typer.Option("--scope", help="The collection (user, album…) to work in.")]
JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Processes for fingerprinting; 0 = all cores.")]
LearnedOption = Annotated[
    bool | None,
    typer.Option(
        "--learned/--no-learned",
        help="The learned tier (EfficientNet-Lite0 embeddings; needs lookalike[learned]): one more piece of evidence "
        "for heavy edits, and semantic neighbours (burst shots) listed as similar, never as duplicates. "
        'Default: the settings file\'s "learned" key (off without one).',
        show_default=False,
    ),
]
ModelOption = Annotated[
    Path | None,
    typer.Option(
        "--model",
        help="With the learned tier, use this ONNX image encoder (a .onnx file, or a CLIP/sentence-transformers "
        "folder exported to ONNX) instead of EfficientNet-Lite0. Implies --learned.",
    ),
]


def _open(
    db: str, *, create: bool = True, thresholds: "Thresholds | None" = None, learned: "LearnedSettings | None" = None,
) -> "Index":  # fmt: skip
    from lookalike.cli.progress import INDEX_KERNELS, announce_compiling
    from lookalike.index import Index  # loads the Hamming kernels: only for commands that search
    from lookalike.learned import requested_embedder

    embedder = None if learned is None else requested_embedder(learned.on, learned.model)
    announce_compiling(INDEX_KERNELS)
    return Index(db, create=create, thresholds=thresholds, embedder=embedder)


def register(app: typer.Typer) -> typer.Typer:
    """Add this module's commands to ``app``; returns the ``review`` group (others add to it)."""
    app.command("index")(index_command)
    app.command("check")(check_command)
    app.command("remove")(remove_command)
    app.command("stats")(stats_command)
    review = typer.Typer(
        help="Potential duplicates waiting for a person's decision.", invoke_without_command=True, rich_markup_mode=None
    )
    review.callback()(review_list)
    review.command("decide")(review_decide)
    app.add_typer(review, name="review")
    app.command("eval")(eval_command)
    app.command("embed")(embed_command)
    return review


def group_db(ctx: typer.Context, db: str | None) -> str:
    """The ``--db`` given to a subcommand, else to its group (``review --db D decide`` and
    ``review decide … --db D`` both work); a clear error when neither has one."""
    chosen = db or (ctx.obj.get("db") if isinstance(ctx.obj, dict) else None)
    if not chosen:
        fail("missing option --db (the index database)")
    return str(chosen)


def group_json(ctx: typer.Context, as_json: bool) -> bool:
    """``--json`` given to a subcommand or to its group."""
    return as_json or bool(isinstance(ctx.obj, dict) and ctx.obj.get("json"))


def index_command(
    paths: Annotated[list[Path], typer.Argument(help="Image files and folders (searched recursively).")],
    db: DbOption,
    scope: ScopeOption = DEFAULT_SCOPE,
    on_duplicate: Annotated[
        OnDuplicate,
        typer.Option(
            "--on-duplicate",
            help="A copy of a stored image: reject (leave it out, as the HTTP service does by default), "
            "store, review (store it and list the pair for review), or replace (store it in place of the stored "
            "copy's file: the image keeps its id, other renditions and review pairs).",
        ),
    ] = OnDuplicate.REJECT,
    jobs: JobsOption = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per file (what check said, what was done).")
    ] = False,
    settings: SettingsOption = None,
    learned: LearnedOption = None,
    model: ModelOption = None,
) -> None:
    """Check each image against the index, then add it: per file, what `check` says and what was done."""
    from lookalike.fingerprints import analyse_files, default_jobs
    from lookalike.index.results import Outcome
    from lookalike.match.local import query_features

    files = list(each_file_once(iter_image_files(paths)))
    counts = {o: 0 for o in Outcome}
    failed = 0
    with reporting_errors(as_json=as_json):
        found = settings_from(settings)
        tier = found.learned.chosen(learned, model)
    with reporting_errors(as_json=as_json), _open(db, thresholds=found.thresholds, learned=tier) as index:
        embed = None
        if tier.on:  # each file is embedded in the worker process that decodes and fingerprints it
            from functools import partial

            from lookalike.learned.isolated import embed_pixels

            embed = partial(embed_pixels, model=tier.model)
        workers = jobs or default_jobs()
        # with workers, each file's check features are computed where it is decoded too: the check
        # itself runs here, one file after another, and would otherwise compute them (~23% of its CPU)
        query = query_features if workers > 1 else None
        with progress_bar(total=len(files), enabled=not as_json and len(files) >= 20, label="indexing") as advance:
            # with workers, the pixels stay there: what is needed of them came back computed
            each = analyse_files(files, jobs=workers, local=True, embed=embed, query=query, pixels=query is None)
            for r in each:
                advance()
                if r.analysis is None:
                    failed += 1
                    print_file_error(r.path, r.error, as_json=as_json)
                    continue
                done = index.add_checked(
                    r.analysis, str(r.path.resolve()), scope=scope, on_duplicate=on_duplicate, embedding=r.vector,
                    query_local=r.query_local,
                )  # fmt: skip
                counts[done.outcome] += 1
                if as_json:
                    json_line({"path": str(r.path), **done.to_dict()})
                else:
                    _print_added(r.path, done)
    if not as_json:
        say(
            f"added {counts[Outcome.ADDED]}, copies left out {counts[Outcome.REJECTED]}, "
            + (f"copies replaced {counts[Outcome.REPLACED]}, " if on_duplicate is OnDuplicate.REPLACE else "")
            + f"already present {counts[Outcome.PRESENT]}, failed {failed}"
        )
    if failed:
        raise typer.Exit(EXIT_FAILED)


def _print_added(path: Path, done: "AddOutcome") -> None:
    from lookalike.index.results import Outcome
    from lookalike.match import QueryVerdict

    best = done.check.matches[0] if done.check.matches else None
    verdict = done.check.verdict
    if done.outcome is Outcome.PRESENT:
        say(f"{path}: already present as {done.image_id} (identical)")
    elif done.outcome is Outcome.REPLACED and done.replaced is not None:
        was, copy = f"{done.replaced.source} of {done.image_id}", done.because
        say(f"{path}: replaced {was}" + (f" ({copy.verdict.value}, score {copy.score:.3f})" if copy else ""))
    elif done.outcome is Outcome.REJECTED and best is not None:
        say(f"{path}: {verdict} of {best.image_id} (score {best.score:.3f}), not added — {best.explanation}")
    elif best is not None and verdict is not QueryVerdict.UNIQUE:
        extra = f", {done.review} pair(s) to review" if done.review else ""
        say(f"{path}: added as {done.image_id}; {verdict} of {best.image_id} (score {best.score:.3f}){extra}")
    else:
        say(f"{path}: added as {done.image_id}")


def check_command(
    inputs: Annotated[list[str], typer.Argument(help="Image files, folders or http(s) URLs to check.")],
    db: DbOption,
    scope: ScopeOption = DEFAULT_SCOPE,
    top: Annotated[int, typer.Option("--top", min=1, help="Matches to report per input.")] = 10,
    jobs: JobsOption = 0,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON line per input (the /v1/check body + path).")
    ] = False,
    exit_code: ExitCodeOption = False,
    settings: SettingsOption = None,
    learned: LearnedOption = None,
    model: ModelOption = None,
) -> None:
    """Is each image already in the index? One line per input with its verdict and matches."""
    from lookalike.cli.progress import INDEX_KERNELS, announce_compiling
    from lookalike.decode import is_url
    from lookalike.fingerprints import default_jobs
    from lookalike.index.parallel import check_files  # loads the index's kernels: only when checking

    announce_compiling(INDEX_KERNELS)
    found = (i if is_url(i) else str(p) for i in inputs for p in ([Path(i)] if is_url(i) else iter_image_files([i])))
    expanded = list(each_file_once(found))
    failed = 0
    duplicate = False
    with reporting_errors(as_json=as_json, exit_code=exit_code):
        chosen = settings_from(settings)
        tier = chosen.learned.chosen(learned, model)
        checks = check_files(
            db, expanded, scope=scope, top=top, jobs=jobs or default_jobs(), thresholds=chosen.thresholds,
            learned=tier.on, model=tier.model,
        )  # fmt: skip
        with progress_bar(
            total=len(expanded), enabled=not as_json and len(expanded) >= 20, label="checking"
        ) as advance:
            for item, c in zip(expanded, checks):
                advance()
                if c.result is None:
                    failed += 1
                    print_file_error(item, c.error, as_json=as_json)
                    continue
                duplicate = duplicate or c.result.is_duplicate
                _print_check(item, c.result, as_json)
    raise typer.Exit(exit_status(exit_code=exit_code, duplicate=duplicate, failed=bool(failed)))


def _print_check(item: str, result: "CheckResult", as_json: bool) -> None:
    if as_json:
        json_line({"path": item, **result.to_dict()})
        return
    say(f"{item}: {result.verdict}")
    for m in result.matches:
        if m.verdict.value != "different":
            say(f"  {m.score:.3f}  {m.verdict.value:14s}  {m.image_id}  {m.file.source}  — {m.explanation}")


def remove_command(
    image_ids: Annotated[list[str], typer.Argument(help="Image ids to delete from the index.")],
    db: DbOption,
    scope: ScopeOption = DEFAULT_SCOPE,
    as_json: JsonOption = False,
) -> None:
    """Delete images (all their files) from the index."""
    with reporting_errors(as_json=as_json), _open(db, create=False) as index:
        for image_id in image_ids:
            index.remove(image_id, scope=scope)
            if as_json:
                json_line({"id": image_id, "scope": scope, "removed": True})
            else:
                say(f"removed {image_id}")


def review_list(
    ctx: typer.Context,
    db: SubDbOption = None,
    scope: Annotated[str | None, typer.Option("--scope", help="Only this scope (default: all).")] = None,
    show_all: Annotated[bool, typer.Option("--all", help="Include pairs already decided.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per pair.")] = False,
) -> None:
    """List potential-duplicate pairs waiting for a decision (`review decide` records one)."""
    if ctx.invoked_subcommand is not None:
        ctx.obj = {"db": db, "json": as_json}
        return
    database = group_db(ctx, db)
    with reporting_errors(as_json=as_json), _open(database, create=False) as index:
        pairs = index.review(scope=scope, decision=None if show_all else Decision.PENDING)
    for p in pairs:
        if as_json:
            json_line(dict(p.to_dict()))
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
    db: SubDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a decision on a pair; later checks and scans honour it."""
    as_json = group_json(ctx, as_json)
    database = group_db(ctx, db)
    with reporting_errors(as_json=as_json), _open(database, create=False) as index:
        p = index.decide(pair, decision)
    from lookalike.scan.lookup import remember_decision

    with reporting_errors(as_json=as_json):
        remember_decision(database, p)  # a pair find read: kept by its bytes, past --rescan and renames
    if as_json:
        json_line(p.to_dict())
    else:
        say(f"#{p.pk} {p.a_id} ~ {p.b_id}: {p.decision.value}")


def stats_command(db: DbOption, as_json: JsonOption = False) -> None:
    """Counts of scopes, images, files and review pairs."""
    from lookalike.fingerprints import FINGERPRINT_VERSION

    with reporting_errors(as_json=as_json), _open(db, create=False) as index:
        s = index.stats()
        memory = index.memory_bytes()
    if as_json:
        json_line({**s.to_dict(), "memory_bytes": memory, "fingerprint_version": FINGERPRINT_VERSION})
        return
    say(
        f"scopes {s.scopes}, images {s.images}, files {s.files}, review pending {s.review_pending}, "
        f"decided {s.review_decided}; {s.bytes_on_disk:,} bytes on disk, {memory:,} bytes of in-memory index"
    )
    if s.outdated_fingerprints:
        say(
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
    learned: Annotated[
        bool,
        typer.Option(
            "--learned",
            help="Run with the learned tier too (as index/check --learned; needs lookalike[learned]): "
            "per-edit recall with and without it, and its cost.",
        ),
    ] = False,
    model: ModelOption = None,
) -> None:
    """Measure lookalike on labelled images: uAP, recall at precision 0.90/0.99, per-edit recall, verdicts."""
    from lookalike.cli.progress import INDEX_KERNELS, announce_compiling, stage_bars
    from lookalike.evaluate import evaluate_folder  # loads the index: only for this command

    announce_compiling(INDEX_KERNELS)
    with reporting_errors(as_json=as_json), stage_bars(enabled=True) as tell:
        thresholds = thresholds_from(settings)
        report = evaluate_folder(
            bench, db=db, jobs=jobs, top=top, thresholds=thresholds, learned=learned, model=model, on_progress=tell
        )
    if as_json:
        json_line(report.to_dict())
        return
    d = report.to_dict()
    w = d.get("learned")
    columns = "" if w is None else f"  (with learned: {w['model']})"
    for key in ("uAP", "recall@P90", "recall@P99", "verdict_precision", "verdict_recall", "positives", "predictions"):
        say(f"{key:>20}: {d[key]}" + ("" if w is None else f"  ->  {w[key]}"))
    say("recall per edit at the precision-0.90 cut:" + columns)
    for edit, value in d["recall_by_edit@P90"].items():
        say(f"{edit:>20}: {value}" + ("" if w is None else f"  ->  {w['recall_by_edit@P90'][edit]}"))
    if w is not None:
        say(f"learned tier: {w['cpu_ms_per_image']} CPU ms and {w['bytes_per_image']} bytes per image; "
            f"{w['promoted']} similar matches promoted, {w['semantic']} semantic neighbours added")  # fmt: skip
    if report.failed:
        say(f"{report.failed} files could not be read", err=True)


def embed_command(
    db: DbOption,
    model: ModelOption = None,
    storage: Annotated[
        Path | None,
        typer.Option("--storage", help="A service's storage folder: where its files (stored by key) are read from."),
    ] = None,
    jobs: JobsOption = 0,
    as_json: JsonOption = False,
    settings: SettingsOption = None,
) -> None:
    """Back-fill the learned tier: embed the stored files that have no embedding yet (an index built without
    --learned), so that check --learned sees them all. Resumable: commits every 64 files; a re-run skips done ones."""
    from lookalike.cli.progress import stage_bars
    from lookalike.fingerprints import default_jobs
    from lookalike.index.backfill import embed_stored

    with reporting_errors(as_json=as_json), stage_bars(enabled=not as_json) as tell:
        tier = settings_from(settings).learned.chosen(True, model)  # the settings file's model, unless --model
        report = embed_stored(
            db, model=tier.model, root=storage, jobs=jobs or default_jobs(),
            on_progress=lambda done, total: tell("embedding", done, total),
        )  # fmt: skip
    if as_json:
        json_line(report.to_dict())
    else:
        say(f"embedded {report.embedded} files ({report.already} had an embedding already), failed {report.failed}")
    if report.failed:
        raise typer.Exit(EXIT_FAILED)
