"""The ``lookalike`` command: entry point and the image-level commands.

Start-up stays close to Typer's own: no module imported here pulls in NumPy, numba, OpenCV,
Pillow or httpx; each command imports what it needs when it runs (``benchmarks/cli_startup.py``
measures ``lookalike --help`` against ``python -c "import typer, rich"``). The command modules
do without ``from __future__ import annotations``: Typer reads every command's signature on every
start, and evaluating string annotations took a third of ``--help``'s time.
"""

import os
import re
import sys
from collections.abc import Iterator
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from lookalike.cli import calibration, collection, find, scale, serve
from lookalike.cli.output import (
    EXIT_FAILED,
    EXIT_INPUT,
    ExitCodeOption,
    JsonOption,
    exit_status,
    json_line,
    print_file_error,
    printable,
    reporting_errors,
    say,
)
from lookalike.cli.settings import SettingsOption, thresholds_from
from lookalike.errors import UNEXPECTED_CODE, FileError, error_body
from lookalike.walk import each_file_once, iter_image_files

if TYPE_CHECKING:
    from lookalike.match import Comparison

app = typer.Typer(
    name="lookalike",
    help="Have I already got this image? Exact and near-duplicate image detection.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    # plain help and usage errors, as git and curl print them: Typer's Rich rendering imports
    # Markdown, Pygments and Rich's traceback machinery, which tripled the time `--help` takes
    rich_markup_mode=None,
    epilog="Exit codes: 0 done; 1 some inputs failed (with --exit-code: a duplicate was found); 2 the command "
    "could not run (with --exit-code: any error); 70 internal error; 130 interrupted.",
    context_settings={"help_option_names": ["--help", "-h"]},
)


def _print_version(value: bool) -> None:
    if value:
        from lookalike import __version__

        typer.echo(f"lookalike {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_print_version, is_eager=True, help="Print the version and exit."),
    ] = False,
) -> None:
    """Have I already got this image? Exact and near-duplicate image detection."""


@app.command("compare")
def compare_command(
    a: Annotated[str, typer.Argument(help="The original: a file path or an http(s) URL.")],
    b: Annotated[str, typer.Argument(help="The candidate copy: a file path or an http(s) URL.")],
    as_json: JsonOption = False,
    exit_code: ExitCodeOption = False,
    settings: SettingsOption = None,
) -> None:
    """Compare two images: verdict, score in [0, 1] and the evidence.

    B is scored as a copy of A exactly as `lookalike check B` scores it against an index holding
    A: one pair has one score whichever command computes it."""
    from lookalike.cli.progress import FINGERPRINT_KERNELS, announce_compiling
    from lookalike.match import compare

    announce_compiling(FINGERPRINT_KERNELS)
    with reporting_errors(as_json=as_json, exit_code=exit_code):
        result = compare(a, b, thresholds=thresholds_from(settings))
    if as_json:
        json_line(result.to_dict())
    else:
        for line in _readable(result):
            say(line)
    raise typer.Exit(exit_status(exit_code=exit_code, duplicate=result.verdict.is_duplicate, failed=False))


def _readable(c: "Comparison") -> list[str]:
    lines = [f"{c.verdict.value}  (score {c.score:.3f})", c.explanation]
    if c.hashes:
        lines.append("hashes: " + ", ".join(f"{h.signal.value} {h.distance_bits}/{h.bits} bits" for h in c.hashes))
    if c.pixels is not None:
        p = c.pixels
        lines.append(
            f"pixels: SSIM {p.ssim:.3f}, NRMSE {p.nrmse:.3f}, MSE {p.mse:.1f}, "
            f"histogram distance {p.histogram_distance:.3f}, blurred correlation {p.template_correlation:.3f}"
        )
    return lines


class HashFormat(StrEnum):
    """What ``lookalike hash`` prints."""

    LOOKALIKE = "lookalike"  #: every signal (``--json``: the whole fingerprint)
    IMAGEHASH = "imagehash"  #: the 64-bit pHash in imagehash's hex, one "hash  path" line per file
    PDQ = "pdq"  #: reference PDQ (Meta's pdqhash): "hash,quality,path", as ThreatExchange's hasher


@app.command("hash")
def hash_command(
    paths: Annotated[
        list[str], typer.Argument(help="Image files and folders (searched recursively); s3://… with --cluster.")
    ],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Processes to use; 0 = all cores.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per image.")] = False,
    hash_format: Annotated[
        HashFormat,
        typer.Option(
            "--format",
            help="lookalike: every signal; imagehash: the pHash as imagehash writes it; "
            "pdq: reference PDQ (needs lookalike[pdq]) as ThreatExchange writes it.",
        ),
    ] = HashFormat.LOOKALIKE,
    cluster: scale.ClusterOption = None,
    out: scale.OutOption = None,
    resume: scale.ResumeOption = False,
    partition_size: scale.PartitionOption = find.DEFAULT_PARTITION_SIZE,
    storage_options: scale.StorageOption = None,
) -> None:
    """Fingerprint images: one line per image; unreadable files are reported and the rest go on.
    With --cluster, into Parquet files under --out instead (one per partition)."""
    from lookalike.cli.progress import FINGERPRINT_KERNELS, announce_compiling, progress_bar
    from lookalike.fingerprints import default_jobs

    on_cluster = scale.ClusterRun.of(paths, cluster, out, resume, partition_size, storage_options)
    if on_cluster is not None:
        scale.hash_on_cluster(paths, on_cluster, as_json=as_json)
        return
    if hash_format is not HashFormat.PDQ:
        announce_compiling(FINGERPRINT_KERNELS)
    files = list(each_file_once(iter_image_files(paths)))
    failed = 0
    with (
        reporting_errors(as_json=as_json),
        progress_bar(total=len(files), enabled=not as_json and len(files) >= 20, label="hashing") as advance,
    ):
        for path, line, error in _hashes(files, hash_format, jobs or default_jobs()):
            advance()
            if error is not None:
                failed += 1
                print_file_error(path, error, as_json=as_json)
            elif as_json:
                json_line({"path": str(path), **line})
            else:
                say(_hash_line(path, line, hash_format))
    if failed:
        say(f"lookalike: {failed} of {len(files)} files could not be fingerprinted", err=True)
        raise typer.Exit(EXIT_FAILED)


def _hashes(
    files: list[Path], fmt: HashFormat, jobs: int
) -> Iterator[tuple[Path, dict[str, object], FileError | None]]:
    """(path, JSON-ready hashes, None) or (path, {}, the error) per file, in order."""
    from lookalike.errors import InputError

    if fmt is HashFormat.PDQ:
        from lookalike.fingerprints.reference import reference_pdq

        for path in files:
            try:
                ref = reference_pdq(path)
            except InputError as err:
                yield path, {}, FileError.of(path, err)
                continue
            yield path, {"format": "pdq", "hash": ref.hex, "quality": ref.quality}, None
        return
    from lookalike.fingerprints import fingerprint_files

    for r in fingerprint_files(files, jobs=jobs):
        if r.fingerprint is None:
            yield r.path, {}, r.error or FileError(str(r.path), UNEXPECTED_CODE, f"{r.path}: no result")
        elif fmt is HashFormat.IMAGEHASH:
            yield r.path, {"format": "imagehash.phash", "hash": f"{r.fingerprint.phash:016x}"}, None
        else:
            yield r.path, dict(r.fingerprint.to_dict()), None


def _hash_line(path: Path, d: dict[str, object], fmt: HashFormat) -> str:
    if fmt is HashFormat.PDQ:
        return f"{d['hash']},{d['quality']},{path}"
    if fmt is HashFormat.IMAGEHASH:
        return f"{d['hash']}  {path}"
    return f"{path}  {d['width']}x{d['height']}  phash {d['phash']}  pdq {str(d['pdq'])[:16]}…"


find.register(app, collection.register(app))
serve.register(app)
calibration.register(app)


def run() -> None:
    """Console-script entry point: never a traceback for a user's mistake."""
    if sys.platform == "win32":  # file locks (fcntl) and fork-safe worker pools are POSIX-only
        sys.stderr.write("lookalike: Windows is not supported; run it under WSL (Linux) or on macOS/Linux\n")
        sys.exit(EXIT_INPUT)
    try:
        status = app(args=options_after_command(sys.argv[1:]), standalone_mode=False)
    except _click_exceptions.ClickException as err:  # a usage error: bad option value, missing argument
        _usage_error(err)
    except typer.Abort:
        sys.stderr.write("lookalike: aborted\n")
        sys.exit(1)
    except KeyboardInterrupt:
        sys.stderr.write("lookalike: interrupted\n")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    except Exception as exc:  # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("LOOKALIKE_TRACEBACK"):
            raise
        sys.stderr.write(
            printable(
                f"lookalike: internal error: {type(exc).__name__}: {exc} (set LOOKALIKE_TRACEBACK=1 to see where)"
            )
            + "\n"
        )
        sys.exit(70)
    sys.exit(status if isinstance(status, int) else 0)


def options_after_command(args: list[str]) -> list[str]:
    """``args`` with the options written before the command moved after it, as git and curl
    users write them: ``lookalike --db D review list`` is read as ``lookalike review list --db D``.
    Only options the command itself takes move (with their value unless they are flags); the
    program's own options (``--version``, ``--help``) and anything unclear stay where they are,
    for Click to act on or report."""
    if not args or not args[0].startswith("-") or all(a.startswith("-") for a in args):
        return args  # a command first, or no command at all (``--help``): nothing to move, no Click tree to build
    group = typer.main.get_command(app)
    if args[0].split("=", 1)[0] in {o for p in group.params for o in (*p.opts, *p.secondary_opts)}:
        return args
    command, names = _command_words(group, args)
    if not names:
        return args
    moved = _options_before(args, names, {o: p for p in command.params for o in (*p.opts, *p.secondary_opts)})
    if moved is None:
        return args
    return [args[k] for k in names] + moved + args[names[-1] + 1 :]


def _command_words(group: Any, args: list[str]) -> tuple[Any, list[int]]:
    """The command ``args`` name and where its words are: the names of subcommands among the
    words, in order, down to a command."""
    command: Any = group
    names: list[int] = []
    for k, token in enumerate(args):
        subcommands = getattr(command, "commands", None)
        if subcommands is None:
            break
        if not token.startswith("-") and token in subcommands:
            command = subcommands[token]
            names.append(k)
    return command, names


def _options_before(args: list[str], names: list[int], accepted: dict[str, Any]) -> list[str] | None:
    """The options written before the command's last word (each with its value unless a flag),
    or None when any of them is not the command's or is unclear (a value option followed by a
    command name)."""
    moved: list[str] = []
    k, end = 0, names[-1]
    while k < end:
        if k in names:
            k += 1
            continue
        param = accepted.get(args[k].split("=", 1)[0]) if args[k].startswith("-") else None
        if param is None:
            return None
        width = 1 if "=" in args[k] or getattr(param, "is_flag", False) or getattr(param, "count", False) else 2
        if k + width - 1 in names:
            return None  # a value option followed by a command name: leave it to Click
        moved += args[k : k + width]
        k += width
    return moved


# Typer carries its own Click (the declared typer>=0.29 does); its usage errors are that Click's
from typer._click import exceptions as _click_exceptions  # noqa: E402

#: pydantic's wording (Typer validates option values with pydantic) and what a person reads instead
_PLAIN = (
    (re.compile(r"\bValue error, "), ""),
    (re.compile(r"Input should be greater than or equal to (\S+)"), r"must be at least \1"),
    (re.compile(r"Input should be less than or equal to (\S+)"), r"must be at most \1"),
    (re.compile(r"Input should be greater than (\S+)"), r"must be more than \1"),
    (re.compile(r"Input should be less than (\S+)"), r"must be less than \1"),
    (re.compile(r"Input should be a valid integer.*"), "must be a whole number"),
    (re.compile(r"Input should be a valid number.*"), "must be a number"),
)


def plain_message(text: str) -> str:
    """A usage error as a person reads it: pydantic's "Value error, …" and "Input should be …"
    phrasing replaced by plain words."""
    for pattern, replacement in _PLAIN:
        text = pattern.sub(replacement, text)
    return text


def _usage_error(err: _click_exceptions.ClickException) -> NoReturn:
    """Print a usage error (Click's layout, plain words; with --json, the one JSON error shape) and exit 2."""
    if isinstance(err, getattr(_click_exceptions, "NoArgsIsHelpError", ())):
        err.show()
        sys.exit(err.exit_code)
    message = plain_message(err.format_message())
    if "--json" in sys.argv[1:]:
        json_line(error_body("usage", message))
    else:
        ctx = getattr(err, "ctx", None)
        if ctx is not None:
            sys.stderr.write(ctx.get_usage() + "\n")
            sys.stderr.write(f"Try '{ctx.command_path} --help' for help.\n\n")
        sys.stderr.write(f"Error: {message}\n")
    sys.exit(err.exit_code)
