"""The ``lookalike`` command: entry point and the image-level commands."""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from lookalike.cli import calibration, collection, find, scale, serve
from lookalike.cli.output import EXIT_FAILED, json_line, printable, reporting_errors, say
from lookalike.cli.progress import progress_bar
from lookalike.cli.settings import SettingsOption, thresholds_from
from lookalike.fingerprints import default_jobs, fingerprint_files
from lookalike.match import Comparison, compare
from lookalike.walk import each_file_once, iter_image_files

app = typer.Typer(
    name="lookalike",
    help="Have I already got this image? Exact and near-duplicate image detection.",
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.command("compare")
def compare_command(
    a: Annotated[str, typer.Argument(help="First image: a file path or an http(s) URL.")],
    b: Annotated[str, typer.Argument(help="Second image: a file path or an http(s) URL.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    settings: SettingsOption = None,
) -> None:
    """Compare two images: verdict, score in [0, 1], evidence and a one-line explanation."""
    with reporting_errors():
        result = compare(a, b, thresholds=thresholds_from(settings))
    if as_json:
        json_line(result.to_dict())
    else:
        for line in _readable(result):
            say(line)


def _readable(c: Comparison) -> list[str]:
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


@app.command("hash")
def hash_command(
    paths: Annotated[
        list[str], typer.Argument(help="Image files and folders (searched recursively); s3://… with --cluster.")
    ],
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Processes to use; 0 = all cores.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per image.")] = False,
    cluster: scale.ClusterOption = None,
    out: scale.OutOption = None,
    resume: scale.ResumeOption = False,
    partition_size: scale.PartitionOption = find.DEFAULT_PARTITION_SIZE,
    storage_options: scale.StorageOption = None,
) -> None:
    """Fingerprint images: one line per image; unreadable files are reported and the rest go on.
    With --cluster, into Parquet files under --out instead (one per partition)."""
    scale.check_cluster_options(cluster, out, resume, paths)
    if cluster is not None and out is not None:
        scale.hash_on_cluster(
            paths, cluster=cluster, out=out, resume=resume, partition_size=partition_size,
            storage_options=storage_options, as_json=as_json,
        )  # fmt: skip
        return
    files = list(each_file_once(iter_image_files(paths)))
    failed = 0
    with progress_bar(total=len(files), enabled=not as_json and len(files) >= 20, label="hashing") as advance:
        for r in fingerprint_files(files, jobs=jobs or default_jobs()):
            advance()
            if r.fingerprint is None:
                failed += 1
                if as_json:
                    json_line({"path": str(r.path), "error": {"code": r.error_code, "message": r.error}})
                else:
                    say(f"error: {r.error}", err=True)
                continue
            if as_json:
                json_line({"path": str(r.path), **r.fingerprint.to_dict()})
            else:
                fp = r.fingerprint
                say(f"{r.path}  {fp.width}x{fp.height}  phash {fp.phash:016x}  pdq {fp.pdq.hex()[:16]}…")
    if failed:
        say(f"lookalike: {failed} of {len(files)} files could not be fingerprinted", err=True)
        raise typer.Exit(EXIT_FAILED)


find.register(app, collection.register(app))
serve.register(app)
calibration.register(app)


def run() -> None:
    """Console-script entry point: never a traceback for a user's mistake."""
    try:
        app()
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
