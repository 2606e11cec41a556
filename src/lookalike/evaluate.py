"""Measuring lookalike on labelled images: the index-and-check protocol of the public benchmark.

A benchmark folder holds ``references/`` (the collection), ``queries/`` (edited
copies and unrelated pictures) and ``truth.json``::

    {"queries": {QUERY_NAME: {"ref": REFERENCE_NAME or null, "transform": EDIT}},
     "ambiguous": [[REFERENCE_NAME, REFERENCE_NAME], ...]}

Every reference is indexed, every query checked, and every (query, match)
prediction ranked by score together. The measures follow the DISC 2021 copy
detection challenge (Douze et al., "The 2021 Image Similarity Dataset and
Challenge"): micro average precision (uAP) over all predictions, recall at a
precision, and — at the cut where precision is still 0.90 — the share of each
edit's copies found. Predictions that link a query to a reference listed as
ambiguous with its true reference are left out, and so are repeated pairs.
The tool's own verdicts are scored too: a match counts as a duplicate verdict
when it is identical, same_pixels or near_duplicate.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.config import Thresholds
from lookalike.errors import ConfigError
from lookalike.fingerprints import analyse_files, default_jobs
from lookalike.index import Index
from lookalike.index.parallel import check_files

__all__ = ["OnProgress", "Prediction", "Report", "evaluate_folder", "precision_cut", "score_predictions"]

#: told after each file of a long run: (stage, files of the stage done, files in the stage)
OnProgress = Callable[[str, int, int], None]


def _quiet(stage: str, done: int, total: int) -> None:
    """Progress nobody watches."""


@dataclass(frozen=True, slots=True)
class Prediction:
    """One match reported for one query."""

    query: str
    ref: str
    score: float
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Report:
    """The measures of one run (see the module docstring)."""

    uap: float
    recall_at_p90: float
    recall_at_p99: float
    positives: int
    predictions: int
    verdict_precision: float
    verdict_recall: float
    recall_by_edit: dict[str, float] = field(default_factory=dict)
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, rounded to four places."""
        return {
            "uAP": round(self.uap, 4),
            "recall@P90": round(self.recall_at_p90, 4),
            "recall@P99": round(self.recall_at_p99, 4),
            "positives": self.positives,
            "predictions": self.predictions,
            "verdict_precision": round(self.verdict_precision, 4),
            "verdict_recall": round(self.verdict_recall, 4),
            "recall_by_edit@P90": {k: round(v, 4) for k, v in self.recall_by_edit.items()},
            "failed": self.failed,
        }


def _load_truth(folder: Path) -> tuple[dict[str, dict[str, Any]], set[tuple[str, str]]]:
    try:
        truth = json.loads((folder / "truth.json").read_text())
        queries: dict[str, dict[str, Any]] = truth["queries"]
        ambiguous = {(str(a), str(b)) for a, b in truth.get("ambiguous", [])}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{folder}: no readable truth.json in the benchmark layout ({exc})") from exc
    return queries, ambiguous | {(b, a) for a, b in ambiguous}


def score_predictions(
    truth: dict[str, dict[str, Any]], ambiguous: set[tuple[str, str]], predictions: Iterable[Prediction]
) -> Report:
    """Score predictions against the truth (see the module docstring)."""
    seen: set[tuple[str, str]] = set()
    ranked: list[tuple[float, bool, str, bool]] = []
    for p in predictions:
        if (p.query, p.ref) in seen or p.query not in truth:
            continue
        seen.add((p.query, p.ref))
        true_ref = truth[p.query]["ref"]
        if true_ref is not None and (true_ref, p.ref) in ambiguous:
            continue
        ranked.append((p.score, p.ref == true_ref, p.query, p.duplicate))
    positives = sum(1 for v in truth.values() if v["ref"] is not None)
    ranked.sort(key=lambda t: -t[0])
    # precision and recall at every distinct score (ties are cut together)
    points: list[tuple[float, float, float]] = []
    hits = 0
    uap = last_recall = 0.0
    for i, (score, ok, _, _) in enumerate(ranked):
        hits += ok
        if i + 1 < len(ranked) and ranked[i + 1][0] == score:
            continue
        precision, recall = hits / (i + 1), hits / max(1, positives)
        uap += (recall - last_recall) * precision
        last_recall = recall
        points.append((precision, recall, score))

    def recall_at(min_precision: float) -> tuple[float, float]:
        best, cut = 0.0, float("inf")
        for precision, recall, score in points:
            if precision >= min_precision and recall >= best:
                best, cut = recall, score
        return best, cut

    r90, cut90 = recall_at(0.90)
    r99, _ = recall_at(0.99)
    per_edit = Counter(str(v["transform"]) for v in truth.values() if v["ref"] is not None)
    found = Counter(str(truth[q]["transform"]) for s, ok, q, _ in ranked if ok and s >= cut90)
    flagged = [ok for _, ok, _, dup in ranked if dup]
    return Report(
        uap=uap,
        recall_at_p90=r90,
        recall_at_p99=r99,
        positives=positives,
        predictions=len(ranked),
        verdict_precision=sum(flagged) / max(1, len(flagged)),
        verdict_recall=sum(flagged) / max(1, positives),
        recall_by_edit={t: found[t] / n for t, n in sorted(per_edit.items())},
    )


def precision_cut(
    predictions: Iterable[Prediction], truth: Mapping[str, str | None], positives: int, precision: float
) -> tuple[float, float, bool]:
    """The lowest score whose predictions at or above it have at least ``precision``, with the
    recall there and whether any cut reached the precision (when none did: 1.0, 0.0, False).

    ``truth`` maps each query to its right reference (None: it has none); repeated (query,
    reference) pairs count once; tied scores are cut together.
    """
    seen: set[tuple[str, str]] = set()
    ranked: list[tuple[float, bool]] = []
    for p in predictions:
        if (p.query, p.ref) not in seen:
            seen.add((p.query, p.ref))
            ranked.append((p.score, truth.get(p.query) == p.ref))
    ranked.sort(key=lambda t: -t[0])
    cut, recall, reached, hits = 1.0, 0.0, False, 0
    for i, (score, ok) in enumerate(ranked):
        hits += ok
        if i + 1 < len(ranked) and ranked[i + 1][0] == score:
            continue
        if hits / (i + 1) >= precision and hits / max(1, positives) >= recall:
            cut, recall, reached = score, hits / max(1, positives), True
    return cut, recall, reached


def _predictions(
    db: Path,
    queries: list[Path],
    jobs: int,
    top: int,
    thresholds: Thresholds | None,
    failures: list[str],
    on_progress: OnProgress,
) -> Iterator[Prediction]:
    checks = check_files(db, queries, scope="references", jobs=jobs, top=top, thresholds=thresholds)
    for done, c in enumerate(checks, 1):
        on_progress("checking", done, len(queries))
        if c.result is None:
            failures.append(f"{c.source}: {c.error}")
            continue
        for m in c.result.matches:
            yield Prediction(Path(c.source).name, Path(m.file.source).name, m.score, m.verdict.is_duplicate)


def evaluate_folder(
    folder: str | Path,
    *,
    db: str | Path | None = None,
    jobs: int = 0,
    top: int = 10,
    thresholds: Thresholds | None = None,
    on_progress: OnProgress = _quiet,
) -> Report:
    """Index ``folder/references``, check every file of ``folder/queries`` and score the matches.

    ``db``: where to build the index (a temporary file when None); ``on_progress`` is told after
    each file, in the stages ``indexing`` and ``checking``. Raises
    ``ConfigError`` when the folder is not in the benchmark layout.
    """
    root = Path(folder)
    truth, ambiguous = _load_truth(root)
    refs = sorted(p for p in (root / "references").iterdir() if p.is_file()) if (root / "references").is_dir() else []
    queries = sorted(p for p in (root / "queries").iterdir() if p.is_file()) if (root / "queries").is_dir() else []
    if not refs or not queries:
        raise ConfigError(f"{root}: needs references/ and queries/ folders with files in them")
    jobs = jobs or default_jobs()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(db) if db else Path(tmp) / "eval.sqlite"
        with Index(path, thresholds=thresholds) as index:
            batch = []
            for done, r in enumerate(analyse_files(refs, jobs=jobs, limits=index.limits, local=True), 1):
                on_progress("indexing", done, len(refs))
                if r.analysis is None:
                    failures.append(f"{r.path}: {r.error}")
                    continue
                batch.append((r.analysis, str(r.path.resolve())))
                if len(batch) >= 64:
                    index.add_analyses(batch, scope="references")
                    batch = []
            index.add_analyses(batch, scope="references")
        predictions = _predictions(path, queries, jobs, top, thresholds, failures, on_progress)
        report = score_predictions(truth, ambiguous, predictions)
    return Report(**{**{f: getattr(report, f) for f in report.__dataclass_fields__}, "failed": len(failures)})
