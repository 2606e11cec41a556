"""Commands over folders: find (groups, keepers, actions, reports), undo, plot, review mark."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from lookalike.cli.collection import ModelOption, SubDbOption, group_db, group_json
from lookalike.cli.output import EXIT_FAILED, JsonOption, fail, json_line, reporting_errors, say
from lookalike.cli.progress import progress_bar
from lookalike.cli.scale import (
    ClusterOption,
    ClusterRun,
    OutOption,
    PartitionOption,
    ResumeOption,
    StorageOption,
    find_on_cluster,
)
from lookalike.cli.settings import SettingsOption, settings_from
from lookalike.config import default_cache_dir
from lookalike.index.store.records import Decision

#: files a task with --cluster (``lookalike.scale.DEFAULT_PARTITION_SIZE``, not imported: it needs the dask extra)
DEFAULT_PARTITION_SIZE = 256

if TYPE_CHECKING:
    from lookalike.scan import Action, FindResult, Group, Step

JobsOption = Annotated[int, typer.Option("--jobs", "-j", min=0, help="Processes for fingerprinting; 0 = all cores.")]
FindScope = Annotated[str, typer.Option("--scope", help="The index scope find keeps its files in.")]


def default_db() -> Path:
    """Where ``find`` keeps its cache unless told: ``$XDG_CACHE_HOME/lookalike/find.db``."""
    return default_cache_dir() / "find.db"


DbOption = Annotated[
    Path | None,
    typer.Option("--db", help="Database for the cache and the index (default: ~/.cache/lookalike/find.db)."),
]


def register(app: typer.Typer, review: typer.Typer | None = None) -> None:
    """Add this module's commands to ``app`` (and ``mark`` to the ``review`` group)."""
    app.command("find")(find_command)
    app.command("undo")(undo_command)
    app.command("plot")(plot_command)
    if review is not None:
        review.command("mark")(review_mark)
        review.command("unmark")(review_unmark)


def find_command(
    paths: Annotated[
        list[str], typer.Argument(help="Folders (searched recursively) and image files; s3://… with --cluster.")
    ],
    db: DbOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON document.")] = False,
    csv_path: Annotated[Path | None, typer.Option("--csv", help="Write a CSV report here.")] = None,
    html_path: Annotated[Path | None, typer.Option("--html", help="Write a self-contained HTML report here.")] = None,
    jobs: JobsOption = 0,
    strict: Annotated[
        bool, typer.Option("--strict", help="Groups are cliques: every member a duplicate of every other.")
    ] = False,
    keep: Annotated[
        str | None,
        typer.Option(
            "--keep",
            help="Keeper policy: criteria in order (resolution, lossless, bytes, oldest, newest, shortest-path, path)."
            " Default: the original each group's copies derive from.",
        ),
    ] = None,
    keep_in: Annotated[
        list[Path] | None,
        typer.Option("--keep-in", help="A folder whose files are always kept (repeatable; scanned too)."),
    ] = None,
    action: Annotated[
        str, typer.Option("--action", help="report | move | hardlink | trash | delete (non-kept copies only).")
    ] = "report",
    to: Annotated[Path | None, typer.Option("--to", help="Destination folder of move (and trash).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print what the action would do; change nothing.")] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask before changing files.")] = False,
    manifest: Annotated[Path | None, typer.Option("--manifest", help="Where to write the undo manifest.")] = None,
    scope: FindScope = "find",
    rescan: Annotated[bool, typer.Option("--rescan", help="Read every file again, ignoring the cache.")] = False,
    cluster: ClusterOption = None,
    out: OutOption = None,
    resume: ResumeOption = False,
    partition_size: PartitionOption = DEFAULT_PARTITION_SIZE,
    storage_options: StorageOption = None,
    include_edited: Annotated[
        bool,
        typer.Option(
            "--include-edited",
            help="Let actions touch edited copies joined only by local features (crops, overlays) or only"
            " through another member; by default they are reported and left alone.",
        ),
    ] = False,
    decisions: Annotated[
        Path | None,
        typer.Option(
            "--decisions", help="A decisions file exported from the HTML report (keepers, excluded files); remembered."
        ),
    ] = None,
    similar: Annotated[
        bool,
        typer.Option(
            "--similar",
            "--learned",
            help="Also list semantic neighbours (burst shots, the same scene re-shot) found by the learned tier's "
            "embeddings (needs lookalike[learned]): listed apart from the groups, put on the review list "
            "(with --cluster: RUN_DIR/similar.parquet), never acted on.",
        ),
    ] = False,
    model: ModelOption = None,
    settings: SettingsOption = None,
) -> None:
    """Find groups of copies under folders, pick a keeper per group, report, and optionally act on the other copies."""
    from lookalike.cli.progress import INDEX_KERNELS, announce_compiling
    from lookalike.scan import FindOptions, find_groups, parse_keep, read_decisions

    announce_compiling(INDEX_KERNELS)
    with reporting_errors(as_json=as_json):
        act = _checked_action(action, cluster=cluster, to=to, dry_run=dry_run, yes=yes)
        options = FindOptions(
            scope=scope, jobs=jobs, strict=strict, keep=None if keep is None else parse_keep(keep),
            keep_in=tuple(str(k) for k in keep_in or ()), rescan=rescan,
            decisions=() if decisions is None else read_decisions(decisions),
            similar=(tier := (found := settings_from(settings)).learned.chosen(similar or None, model)).on,
            model=tier.model, thresholds=found.thresholds,
        )  # fmt: skip
        on_cluster = ClusterRun.of(paths, cluster, out, resume, partition_size, storage_options)
        if on_cluster is not None:
            if html_path is not None:
                fail("--html needs find's database; with --cluster, use --json or --csv")
            if options.similar:  # a missing extra is one line before the cluster is reached, as without it
                from lookalike.scan.similar import embedder_for

                embedder_for(options.model)
            find_on_cluster(paths, on_cluster, options=options, as_json=as_json, csv_path=csv_path)
            return
        database = db or default_db()
        database.parent.mkdir(parents=True, exist_ok=True)

        def progress(total: int, label: str):  # type: ignore[no-untyped-def]
            return progress_bar(total=total, enabled=total >= 20, label=label)

        result = find_groups(paths, db=database, options=options, progress=progress)
        _write_reports(result, csv_path=csv_path, html_path=html_path, database=database, scope=scope, jobs=jobs)
        if not as_json:
            print_result(result)
        plan, acted = None, 0
        if act.touches_files:
            plan, acted = _act(
                result, act, to=to, dry_run=dry_run, yes=yes, manifest=manifest, quiet=as_json,
                include_edited=include_edited,
            )  # fmt: skip
        if as_json:  # printed after acting, so that the plan says what became of each step
            json_line(result.to_dict() | ({"plan": plan} if plan is not None else {}))
    if acted or result.errors:
        raise typer.Exit(acted or EXIT_FAILED)


def _checked_action(action: str, *, cluster: str | None, to: Path | None, dry_run: bool, yes: bool) -> Action:
    """``--action`` as an ``Action``, refused (one line, exit 2) when the other options cannot go with it."""
    from lookalike.scan import Action

    try:
        act = Action(action)
    except ValueError:
        fail(f"unknown action {action!r} (choose from {', '.join(a.value for a in Action)})")
    if cluster is not None and act is not Action.REPORT:
        fail("--cluster runs report only (--action report): act on the paths they list yourself")
    if act is Action.MOVE and to is None:
        fail("--action move needs --to DIR")
    if act.touches_files and not dry_run and not yes and not sys.stdin.isatty():
        fail(f"--action {act.value} changes files: pass --yes to go ahead without a terminal to confirm on")
    return act


def _write_reports(
    result: FindResult, *, csv_path: Path | None, html_path: Path | None, database: Path, scope: str, jobs: int
) -> None:
    """The CSV and HTML reports asked for (the HTML one's page reads the database for thumbnails and decisions)."""
    if csv_path is not None:
        from lookalike.report import write_csv

        write_csv(result, csv_path)
    if html_path is not None:
        from lookalike.report import write_html

        write_html(result, html_path, db=str(database), scope=scope, jobs=jobs)


def print_result(result: FindResult, groups: Iterable[Group] | None = None) -> None:
    """The readable form of a ``find`` result: groups, members, errors, counts. ``groups``, when
    given, stands for ``result.groups``, printed one at a time (a scale-out run's, read from disk)."""
    also = {a.path: a.also for a in result.aliases}
    edited = 0
    for i, g in enumerate(result.groups if groups is None else groups, 1):
        _print_group(i, g, also)
        edited += sum(1 for m in g.members if not m.keep and not m.eligible)
    if result.similar:
        say(f"semantic neighbours ({len(result.similar)} pairs; the same scene, not copies: never acted on):")
        for p in result.similar:
            say(f"  {p.score:.3f} similar  {p.a} ~ {p.b}  — {p.evidence}")
    for e in result.errors:
        say(f"error: {e.message}", err=True)
    for note in result.notices:
        say(f"note: {note}", err=True)
    _print_footnotes(result, edited)


def _print_group(i: int, g: Group, also: dict[str, tuple[str, ...]]) -> None:
    """Group ``i``: each member with its evidence, and why one is left alone."""
    say(f"group {i}: {len(g.members)} files")
    for m in g.members:
        tag = "keep " if m.keep else ("     " if m.eligible else "left ")
        say(f"  {tag} {m.path}  ({m.width}x{m.height}, {m.byte_size:,} bytes)")
        if m.path != g.keep or len(g.members) > 1:
            say(f"          {m.score:.3f} {m.verdict}: {m.evidence}")
        if m.path != g.keep and not m.eligible:
            say(f"          not acted on: {m.eligibility}")
        if m.path in also:
            say(f"          the same file is also reached as: {', '.join(also[m.path])}")


def _print_footnotes(result: FindResult, edited: int) -> None:
    """What a person should know beyond the groups: files reached by several paths, the ``edited``
    copies left alone, and the counts."""
    if result.aliases:
        paths = sum(len(a.also) for a in result.aliases)
        say(
            f"{len(result.aliases):,} files were reached through more than one path ({paths:,} other paths: "
            "symlinks, hard links, folders named twice): each is listed once and never counted as its own copy"
        )
    if edited:
        say(
            f"{edited:,} edited copies (crops, overlays, or linked only through another copy) are reported but"
            " left alone by actions; pass --include-edited to act on them too"
        )
    s = result.stats
    say(
        f"{s.files:,} files ({s.read:,} read, {s.cached:,} cached, {s.errors:,} unreadable): {s.groups:,} groups, "
        f"{s.duplicates:,} copies not kept ({s.reclaimable_bytes / 1e6:,.1f} MB), {s.pairs:,} pairs, {s.seconds:.1f} s"
    )


def _act(
    result: FindResult,
    act: Action,
    *,
    to: Path | None,
    dry_run: bool,
    yes: bool,
    manifest: Path | None,
    quiet: bool,
    include_edited: bool,
) -> tuple[dict[str, Any], int]:
    """Plan and (unless a dry run) carry out ``act``; returns the plan as data (for ``--json``:
    each step with source, destination, keeper, why, and what became of it) and the exit code."""
    from lookalike.scan import apply_actions, held_back, plan_actions

    steps = plan_actions(result, act, to=to, include_edited=include_edited)
    held = held_back(result, act, include_edited=include_edited)
    plan: dict[str, Any] = {
        "action": act.value, "dry_run": dry_run, "manifest": None,
        "steps": [s.to_dict() | {"status": "planned"} for s in steps],
        "held_back": [{"path": p, "why": why} for p, why in held],
    }  # fmt: skip

    def tell(text: str) -> None:  # with --json, stdout carries the document only
        say(text, err=quiet)

    for p, why in held:
        tell(f"held back: {p}: {why}")
    if not steps:
        tell("nothing to do")
        return plan, 0
    if dry_run:
        for s in steps:
            tell("would " + s.describe())
        tell(f"dry run: {len(steps)} files would be affected; nothing was changed")
        return plan, 0
    if not yes and not typer.confirm(f"{act.value} {len(steps)} files?", err=True):
        say("lookalike: error: nothing was changed", err=True)
        plan["declined"] = True
        return plan, EXIT_FAILED
    where = manifest or _default_manifest(act, steps, to)
    protected = [m.path for g in result.groups for m in g.members if m.keep]
    report = apply_actions(steps, manifest=where, protected=protected)
    plan["manifest"] = str(where)
    index = {id(s): i for i, s in enumerate(steps)}
    for s in report.done:
        tell(s.describe())
        plan["steps"][index[id(s)]]["status"] = "done"
    for s, why in report.failed:
        tell(f"failed: {s.describe()}: {why}")
        plan["steps"][index[id(s)]] |= {"status": "failed", "error": why}
    undo_hint = f"; undo with: lookalike undo {where}" if act.undoable else ""
    tell(f"{act.value}: {len(report.done)} done, {len(report.failed)} failed; manifest {where}{undo_hint}")
    return plan, EXIT_FAILED if report.failed else 0


def _default_manifest(act: Action, steps: list[Step], to: Path | None) -> Path:
    from lookalike.scan import Action

    stamp = time.strftime("%Y%m%d-%H%M%S")
    if act is Action.TRASH:
        # in the trash folder itself (--to, or .lookalike-trash/<time>/), where the README says it is,
        # not in the deepest folder the trashed files share
        if to is not None:
            return to.resolve() / f"manifest-{stamp}.jsonl"
        parts = Path(steps[0].target).parts
        where = parts.index(".lookalike-trash") + 2 if ".lookalike-trash" in parts else len(parts) - 1
        return Path(*parts[:where]) / f"manifest-{stamp}.jsonl"
    if act is Action.MOVE and to is not None:
        return to / f".lookalike-manifest-{stamp}.jsonl"
    return Path(f"lookalike-{act.value}-{stamp}.jsonl").resolve()


def undo_command(
    manifest: Annotated[Path, typer.Argument(help="The manifest a move or trash wrote.")],
    as_json: JsonOption = False,
) -> None:
    """Put back the files a `find --action move` or `trash` moved."""
    from lookalike.scan import undo

    with reporting_errors(as_json=as_json):
        report = undo(manifest)
    if as_json:
        for s in report.done:
            json_line({"path": s.path, "restored": True})
        for s, why in report.failed:
            json_line({"path": s.path, "restored": False, "error": {"code": "not_restored", "message": why}})
    else:
        for s in report.done:
            say(f"restored {s.path}")
        for s, why in report.failed:
            say(f"not restored: {s.path}: {why}", err=True)
        say(f"{len(report.done)} restored, {len(report.failed)} not restored")
    if report.failed:
        raise typer.Exit(EXIT_FAILED)


def plot_command(
    image: Annotated[Path, typer.Argument(help="The picture whose duplicates to draw.")],
    out: Annotated[Path, typer.Option("--output", "-o", help="The PNG to write.")],
    db: DbOption = None,
    scope: FindScope = "find",
    similar: Annotated[bool, typer.Option("--similar", help="Draw 'similar' matches too.")] = False,
) -> None:
    """Draw a picture and its duplicates (from earlier `find` runs) with their scores into a PNG."""
    from lookalike.report.plot import plot_duplicates
    from lookalike.scan import duplicates_of

    with reporting_errors():
        found = duplicates_of(image, db=db or default_db(), scope=scope, include_similar=similar)
        plot_duplicates(image, found, out)
    say(f"{out}: {image} and {len(found)} duplicates")


#: the two files of a pair a person marks or unmarks
MarkedFile = Annotated[Path, typer.Argument(help="A file read by `lookalike find`.")]
OtherMarkedFile = Annotated[Path, typer.Argument(help="Another one.")]


def review_mark(
    ctx: typer.Context,
    a: MarkedFile,
    b: OtherMarkedFile,
    decision: Annotated[Decision, typer.Argument(help="duplicate or not_duplicate.")],
    scope: FindScope = "find",
    db: SubDbOption = None,
    as_json: JsonOption = False,
) -> None:
    """Record a decision on two files a `find` run read; later runs honour it."""
    from lookalike.scan import mark_pair

    as_json = group_json(ctx, as_json)
    with reporting_errors(as_json=as_json):
        mark_pair(a, b, decision, db=group_db(ctx, db), scope=scope)
    if as_json:
        json_line({"a": str(a), "b": str(b), "scope": scope, "decision": decision.value})
    else:
        say(f"{a} ~ {b}: {decision.value}")


def review_unmark(
    ctx: typer.Context,
    a: MarkedFile,
    b: OtherMarkedFile,
    as_json: JsonOption = False,
    db: SubDbOption = None,
    scope: FindScope = "find",
) -> None:
    """Remove a mark `review mark` recorded on two files: later runs judge them by their pictures again."""
    from lookalike.scan import unmark_pair

    as_json = group_json(ctx, as_json)
    with reporting_errors(as_json=as_json):
        had = unmark_pair(a, b, db=group_db(ctx, db), scope=scope)
    if as_json:
        json_line({"a": str(a), "b": str(b), "scope": scope, "decision": None, "was_marked": had})
    else:
        say(f"{a} ~ {b}: " + ("mark removed" if had else "no mark to remove; the pair is pending"))
