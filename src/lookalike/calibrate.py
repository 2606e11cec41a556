"""Thresholds measured on the user's own pictures: ``lookalike calibrate``.

A score only means something next to the pictures it was measured on. So
calibration makes a labelled benchmark out of the user's images and reads the
thresholds off it:

1. The images are split in two, by a hash of their names: the first half is
   indexed (the references), the second half is never indexed.
2. Every image gets ``edits_per_image`` edited copies, drawn at random from
   ``EDITS`` (re-encodes, resizes, crops, captions, borders, flips, turns,
   colour changes, a picture shown inside a larger page, and mixtures).
   Copies of references are the positives; copies of the other half have no
   reference, so whatever they match is wrong, as is any reference a positive
   matches other than its own.
3. Every copy is checked against the index, and all (copy, match, score)
   predictions are ranked by score, as in ``lookalike eval``. A collection
   has duplicates of its own (the same picture in two sizes, a light and a
   dark version): every original is checked too, and a copy's match with a
   reference that its original already matches as a duplicate is left out,
   as the benchmark leaves out its "ambiguous" pairs.
4. ``near_duplicate`` is the lowest score at which the predictions at or above
   it still have the precision asked for; ``similar`` the lowest at which they
   have ``REVIEW_PRECISION`` (a person reviews those). When no cut reaches the
   precision, the threshold is 1.0 and the report says so.
5. With ``groups`` (real pairs: burst shots, the same scene re-shot, a picture
   shipped at several sizes, one folder of them a scene), ``similar`` is read
   off those instead of off edited copies, which are a poor stand-in for a
   second shot: every member is indexed with the references and checked, a
   match with another member of its group is right and any other is wrong, and
   ``similar`` is the lowest score at which these matches keep
   ``REVIEW_PRECISION`` (never above ``near_duplicate``).

The result is a small JSON settings file; ``check``, ``compare``, ``index``
and ``eval`` take it with ``--settings`` (or ``LOOKALIKE_SETTINGS``).
"""

from __future__ import annotations

import hashlib
import json
import random
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lookalike.config import SETTINGS_FORMAT, DecodeLimits, Thresholds
from lookalike.decode import decode_image, read_source
from lookalike.decode.edits import EDITS, write_edited_copy
from lookalike.errors import ConfigError, InputError
from lookalike.evaluate import OnProgress, Prediction, no_progress, precision_cut
from lookalike.fingerprints import analyse_files, default_jobs
from lookalike.index import CheckMatch, Index
from lookalike.index.parallel import check_files
from lookalike.walk import iter_image_files

__all__ = ["REVIEW_PRECISION", "Calibration", "calibrate_folder", "load_settings", "write_settings"]

#: precision of the ``similar`` threshold: pairs a person will look at
REVIEW_PRECISION = 0.5


@dataclass(frozen=True, slots=True)
class Calibration:
    """What calibration measured: the thresholds and the figures behind them."""

    thresholds: Thresholds
    precision: float
    references: int
    positives: int
    negatives: int
    predictions: int
    recall_at_threshold: float
    reached: bool
    #: real pairs ``similar`` was measured on (0: on edited copies) and the share of them found at it
    pairs: int = 0
    recall_of_pairs: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The settings file's content."""
        return {
            "format": SETTINGS_FORMAT,
            "thresholds": {
                "near_duplicate": self.thresholds.near_duplicate,  # unrounded: rounding up would drop the cut
                "similar": self.thresholds.similar,
            },
            "measured": {
                "precision_asked": self.precision,
                "precision_reached": self.reached,
                "recall_at_near_duplicate": round(self.recall_at_threshold, 4),
                "references": self.references,
                "positive_copies": self.positives,
                "negative_copies": self.negatives,
                "predictions": self.predictions,
                **({"real_pairs": self.pairs, "recall_of_pairs_at_similar": round(self.recall_of_pairs, 4)}
                   if self.pairs else {}),
            },
        }  # fmt: skip


def _in_reference_half(path: Path) -> bool:
    return hashlib.sha256(path.name.encode()).digest()[0] < 128


def _write_copies(
    images: Sequence[Path], out: Path, per_image: int, seed: int, limits: DecodeLimits, tell: OnProgress
) -> dict[str, str]:
    """Edited copies of each image into ``out``: {copy name: source image path}."""
    made: dict[str, str] = {}
    for n, path in enumerate(images):
        tell("editing", n + 1, len(images))
        try:
            decoded = decode_image(read_source(path, max_bytes=limits.max_bytes).data, limits=limits, min_side=512)
        except InputError:
            continue
        rng = random.Random(f"{seed}:{path.name}")
        for k, name in enumerate(rng.sample(sorted(EDITS), min(per_image, len(EDITS)))):
            target = write_edited_copy(decoded.pixels, name, rng, out / f"{n:06d}_{k}_{name}")
            made[target.name] = str(path.resolve())
    return made


def _index_half(db: Path, refs: Sequence[Path], jobs: int, limits: DecodeLimits, on_progress: OnProgress) -> set[str]:
    """Index ``refs`` into the scope ``calibrate`` of ``db``; returns the resolved paths indexed."""
    indexed: set[str] = set()
    with Index(db, limits=limits) as index:
        batch = []
        for done, r in enumerate(analyse_files(refs, jobs=jobs, limits=limits, local=True), 1):
            on_progress("indexing", done, len(refs))
            if r.analysis is not None:
                batch.append((r.analysis, str(r.path.resolve())))
                indexed.add(str(r.path.resolve()))
        for start in range(0, len(batch), 64):
            index.add_analyses(batch[start : start + 64], scope="calibrate")
    return indexed


class _Checker:
    """Checks files against the calibration index, counting them for progress across both rounds."""

    def __init__(self, db: Path, jobs: int, limits: DecodeLimits, total: int, on_progress: OnProgress) -> None:
        self.db, self.jobs, self.limits, self.total, self.on_progress = db, jobs, limits, total, on_progress
        self.checked = 0

    def __call__(self, files: Sequence[Path]) -> Iterator[tuple[str, list[CheckMatch]]]:
        """(the file's path as given, its matches) for every file that could be checked."""
        for c in check_files(self.db, files, scope="calibrate", jobs=self.jobs, limits=self.limits):
            self.checked += 1
            self.on_progress("checking", self.checked, self.total)
            if c.result is not None:
                yield c.source, list(c.result.matches)


def _pair_predictions(
    checked: Iterator[tuple[str, list[CheckMatch]]], groups: Sequence[Sequence[Path]]
) -> tuple[list[Prediction], dict[str, str | None]]:
    """Each member's matches (but itself) as predictions, and their truth: a pair of members of one
    of ``groups`` is right, any other match wrong. Each (member, match) is its own query, so that a
    member may be right about several others (``precision_cut`` knows one right answer a query)."""
    group_of = {str(p.resolve()): k for k, g in enumerate(groups) for p in g}
    predictions: list[Prediction] = []
    truth: dict[str, str | None] = {}
    for source, matches in checked:
        member = str(Path(source).resolve())
        for m in matches:
            if m.file.source == member:
                continue
            pair = f"{member}\n{m.file.source}"
            truth[pair] = m.file.source if group_of.get(m.file.source, -1) == group_of[member] else None
            predictions.append(Prediction(pair, m.file.source, m.score, m.verdict.is_duplicate))
    return predictions, truth


def _distinct(group: Sequence[Path]) -> list[Path]:
    """The files of ``group`` with bytes of their own (one of each set of byte-identical files:
    the index stores them as one image, so that they are no pair to find)."""
    first: dict[bytes, Path] = {}
    for path in group:
        try:
            first.setdefault(hashlib.sha256(path.read_bytes()).digest(), path)
        except OSError:
            continue  # unreadable: no pair either
    return list(first.values())


def _real_groups(groups: Sequence[Sequence[Path]]) -> list[list[Path]]:
    """The groups with two or more files of bytes of their own (``_distinct``)."""
    return [g for g in map(_distinct, groups) if len(g) >= 2]


def groups_in(folder: Path) -> list[list[Path]]:
    """The groups of real pairs in ``folder``: the image files of each subfolder with two or more
    (``calibrate --groups``). Raises ``ConfigError`` when fewer than two such subfolders."""
    groups = [sorted(iter_image_files([sub])) for sub in sorted(folder.iterdir()) if sub.is_dir()]
    groups = [g for g in groups if len(g) >= 2]
    if len(groups) < 2:
        raise ConfigError(
            f"{folder}: real pairs need subfolders with two or more shots of one scene each, and at least 2 of them; "
            f"found {len(groups)}"
        )
    return groups


def calibrate_folder(
    images: Sequence[Path],
    *,
    groups: Sequence[Sequence[Path]] = (),
    precision: float = 0.99,
    edits_per_image: int = 4,
    jobs: int = 0,
    seed: int = 0,
    limits: DecodeLimits | None = None,
    on_progress: OnProgress = no_progress,
) -> Calibration:
    """Measure thresholds on edited copies of ``images``, and ``similar`` on the real pairs of
    ``groups`` when given (see the module docstring). ``on_progress`` is told after each file, in
    the stages ``editing``, ``indexing`` and ``checking``.

    Raises ``ConfigError`` for a precision outside (0, 1) or fewer than 8 readable images.
    """
    if not 0.0 < precision < 1.0:
        raise ConfigError(f"precision must be between 0 and 1, got {precision}")
    limits = limits or DecodeLimits()
    jobs = jobs or default_jobs()
    refs = [p for p in images if _in_reference_half(p)]
    if len(refs) < 4 or len(images) - len(refs) < 4:
        others = len(images) - len(refs)
        raise ConfigError(
            f"calibration splits the images into two halves by a hash of their names (one half is indexed, "
            f"copies of the other must match nothing) and each half needs at least 4: of these {len(images)}, "
            f"{len(refs)} fell in the indexed half and {others} in the other; add more images"
        )
    with tempfile.TemporaryDirectory(prefix="lookalike-calibrate-") as tmp:
        root = Path(tmp)
        (root / "copies").mkdir()
        source_of = _write_copies(images, root / "copies", edits_per_image, seed, limits, on_progress)
        db = root / "calibrate.sqlite"
        groups = _real_groups(groups)
        members = [p for g in groups for p in g]
        indexed = _index_half(db, [*refs, *members], jobs, limits, on_progress)
        truth = {name: (src if src in indexed else None) for name, src in source_of.items()}
        copies = sorted(root / "copies" / name for name in truth)
        check = _Checker(db, jobs, limits, len(images) + len(copies) + len(members), on_progress)
        already = {  # (original, reference) duplicates before any edit: a copy may match them too
            (str(Path(source).resolve()), m.file.source)
            for source, matches in check(images)
            for m in matches
            if m.verdict.is_duplicate
        }
        predictions = [
            Prediction(Path(source).name, m.file.source, m.score, m.verdict.is_duplicate)
            for source, matches in check(copies)
            for m in matches
            if (source_of[Path(source).name], m.file.source) not in already or m.file.source == truth[Path(source).name]
        ]
        pairs = _pair_predictions(check(members), groups)
    positives = sum(1 for v in truth.values() if v is not None)
    near, recall, reached = precision_cut(predictions, truth, positives, precision)
    review = min(REVIEW_PRECISION, precision)
    similar, _, _ = precision_cut(predictions, truth, positives, review)
    real_pairs = sum(len(g) * (len(g) - 1) for g in groups)  # ordered: each member is checked
    similar, pair_recall, _ = precision_cut(*pairs, real_pairs, review) if real_pairs else (similar, 0, 0)
    return Calibration(
        pairs=real_pairs,
        recall_of_pairs=pair_recall,
        thresholds=Thresholds(near_duplicate=near, similar=min(similar, near)),
        precision=precision,
        references=len(indexed),
        positives=positives,
        negatives=len(truth) - positives,
        predictions=len(predictions),
        recall_at_threshold=recall,
        reached=reached,
    )


#: keys of a settings file that calibration does not measure, kept when it rewrites the file
_KEPT_KEYS = ("learned", "learned_model")


def write_settings(calibration: Calibration, path: str | Path) -> None:
    """Write the settings file, keeping the learned tier's keys of the file it replaces (a user who
    turned the tier on and recalibrates keeps it on)."""
    kept: dict[str, Any] = {}
    try:
        old = json.loads(Path(path).read_text(encoding="utf-8"))
        kept = {k: old[k] for k in _KEPT_KEYS if isinstance(old, dict) and k in old}
    except (OSError, ValueError):
        pass  # no file yet, or not one of ours: nothing to keep
    Path(path).write_text(json.dumps({**calibration.to_dict(), **kept}, indent=2) + "\n")


def load_settings(path: str | Path) -> Thresholds:
    """The thresholds of a settings file written by ``write_settings`` (parsed by
    ``Thresholds.from_settings_text``, as every front end parses it). Raises ``ConfigError``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read settings ({type(exc).__name__}: {exc})") from exc
    return Thresholds.from_settings_text(text, name=str(path))
