"""``lookalike calibrate``: thresholds measured on the user's own images."""

from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli.output import json_line, reporting_errors, say
from lookalike.errors import ConfigError
from lookalike.walk import each_file_once, iter_image_files

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    """Add ``calibrate`` to ``app``."""
    app.command("calibrate")(calibrate_command)


def calibrate_command(
    images: Annotated[list[Path], typer.Argument(help="Folders or files of your own images (at least 8).")],
    precision: Annotated[
        float, typer.Option("--precision", min=0.5, max=0.9999, help="Precision the near_duplicate verdict must have.")
    ] = 0.99,
    output: Annotated[Path, typer.Option("--output", "-o", help="Settings file to write.")] = Path(
        "lookalike-settings.json"
    ),
    edits: Annotated[int, typer.Option("--edits", min=1, max=13, help="Edited copies made of each image.")] = 4,
    limit: Annotated[int, typer.Option("--limit", min=8, help="Use at most this many images.")] = 1000,
    jobs: Annotated[int, typer.Option("--jobs", "-j", min=0, help="Processes; 0 = all cores.")] = 0,
    groups: Annotated[
        Path | None,
        typer.Option(
            "--groups",
            help="A folder of real pairs: one subfolder per scene with its burst shots or re-shoots "
            "(2 or more each, at least 2 scenes). The similar threshold is measured on them.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the settings as JSON too.")] = False,
) -> None:
    """Make edited copies of your images, measure, and write thresholds for the precision asked.

    Half of the images (by a hash of their names) are indexed; copies of them must be found, and
    copies of the other half must match nothing. `check`, `compare`, `index` and `eval` read the
    file with --settings or $LOOKALIKE_SETTINGS. With --groups, similar is measured on real pairs
    (burst shots, re-shoots) instead of on the edited copies."""
    from lookalike.calibrate import calibrate_folder, groups_in, write_settings  # loads the index
    from lookalike.cli.progress import INDEX_KERNELS, announce_compiling, stage_bars

    announce_compiling(INDEX_KERNELS)
    with reporting_errors(as_json=as_json):
        files = sorted(each_file_once(iter_image_files(images)))[:limit]
        if len(files) < 8:
            raise ConfigError(f"calibration needs at least 8 images, found {len(files)}")
        pairs = groups_in(groups) if groups is not None else []
        with stage_bars(enabled=True) as tell:
            result = calibrate_folder(
                files, groups=pairs, precision=precision, edits_per_image=edits, jobs=jobs, on_progress=tell
            )
        write_settings(result, output)
    t, d = result.thresholds, result.to_dict()
    if as_json:
        json_line(d)
    say(
        f"near_duplicate >= {t.near_duplicate:.4f}, similar >= {t.similar:.4f} "
        f"(measured on {result.references} indexed images, {result.positives} copies of them and "
        f"{result.negatives} copies of others; recall {result.recall_at_threshold:.3f} at that threshold)"
    )
    if result.pairs:
        say(f"similar measured on {result.pairs} real pairs: {result.recall_of_pairs:.3f} of them found at it")
    if not result.reached:
        say(f"no threshold reached precision {precision}: near_duplicate is left at 1.0", err=True)
    say(f"wrote {output}")
