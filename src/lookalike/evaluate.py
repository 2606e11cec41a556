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

With the learned tier (``learned=True`` or a ``model``), the run is what
``lookalike index --learned`` and ``lookalike check --learned`` do: the index
embeds each reference from the pixels its fingerprint was computed from and
stores the vector, and each check fuses the query's embedding into the
cascade's matches (``lookalike.index.semantic``). Every fused match keeps the
cascade's own score and verdict, so one run is scored twice: ``Report`` as the
cascade alone answered, and ``Report.learned`` with the tier, the matches it
promoted, the semantic neighbours it added, and its cost.
"""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from lookalike.config import Thresholds
from lookalike.errors import ConfigError
from lookalike.fingerprints import analyse_files, default_jobs
from lookalike.index import CheckMatch, Index
from lookalike.index.parallel import check_files
from lookalike.learned import Embedder, requested_embedder

__all__ = [
    "LearnedReport",
    "OnProgress",
    "Prediction",
    "Report",
    "evaluate_folder",
    "no_progress",
    "precision_cut",
    "score_predictions",
]

#: told after each file of a long run: (stage, files of the stage done, files in the stage)
OnProgress = Callable[[str, int, int], None]


def no_progress(stage: str, done: int, total: int) -> None:
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
    learned: LearnedReport | None = None

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
            **({"learned": self.learned.to_dict()} if self.learned else {}),
        }


@dataclass(frozen=True, slots=True)
class LearnedReport:
    """The same run scored with the learned tier fused in, and what the tier cost.

    ``cpu_ms_per_image``: CPU time of embedding one reference from its decoded
    pixels (the decode is the fingerprint's: the tier adds none); ``promoted``:
    similar matches made duplicates by agreement; ``semantic``: neighbours only
    the embedding found.
    """

    report: Report
    model: str
    cpu_ms_per_image: float
    bytes_per_image: int
    promoted: int
    semantic: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            **self.report.to_dict(),
            "model": self.model,
            "cpu_ms_per_image": round(self.cpu_ms_per_image, 1),
            "bytes_per_image": self.bytes_per_image,
            "promoted": self.promoted,
            "semantic": self.semantic,
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


#: matches asked of each check with the learned tier: all of them, so that the cascade's own top
#: ``top`` (scored as the run without the tier) and the fused top ``top`` both come from one run
_ALL_MATCHES = 1_000_000


def _predictions(
    db: Path,
    queries: list[Path],
    jobs: int,
    thresholds: Thresholds | None,
    model: str | Path | None,
    failures: list[str],
    on_progress: OnProgress,
) -> Iterator[tuple[str, list[CheckMatch]]]:
    """(query name, its matches best first) of each check; ``model``: with the learned tier
    (``""``: the built-in encoder)."""
    learned = model is not None
    checks = check_files(
        db, queries, scope="references", jobs=jobs, top=_ALL_MATCHES, thresholds=thresholds, learned=learned,
        model=model or None,
    )  # fmt: skip
    for done, c in enumerate(checks, 1):
        on_progress("checking", done, len(queries))
        if c.result is None:
            failures.append(c.error.message if c.error else f"{c.source}: no result")
            continue
        yield Path(c.source).name, list(c.result.matches)


def _cascade_only(query: str, matches: list[CheckMatch], top: int) -> list[Prediction]:
    """The top ``top`` of ``matches`` as the cascade alone scored them (neighbours it did not report left out)."""
    plain: list[tuple[float, bool, CheckMatch]] = []
    for m in matches:
        seen = m.learned
        if seen is None:  # no embedding on either side: the cascade's match as it is
            plain.append((m.score, m.verdict.is_duplicate, m))
        elif seen.cascade_score is not None and seen.cascade_verdict is not None:  # not a neighbour it added
            plain.append((seen.cascade_score, seen.cascade_verdict.is_duplicate, m))
    plain.sort(key=lambda t: (-t[0], t[2].image_id))
    return [Prediction(query, Path(m.file.source).name, s, dup) for s, dup, m in plain[:top]]


def _benchmark_files(root: Path) -> tuple[list[Path], list[Path]]:
    """The files of ``root/references`` and ``root/queries``, sorted; ``ConfigError`` when one is missing or empty."""

    def files(folder: Path) -> list[Path]:
        return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []

    refs, queries = files(root / "references"), files(root / "queries")
    if not refs or not queries:
        raise ConfigError(f"{root}: needs references/ and queries/ folders with files in them")
    return refs, queries


def _index_references(index: Index, refs: list[Path], jobs: int, failures: list[str], on_progress: OnProgress) -> None:
    """Add ``refs`` to the scope ``references`` of ``index``, 64 at a time, as ``lookalike index`` adds them."""
    batch = []
    for done, r in enumerate(analyse_files(refs, jobs=jobs, limits=index.limits, local=True), 1):
        on_progress("indexing", done, len(refs))
        if r.analysis is None:
            failures.append(r.error.message if r.error else f"{r.path}: no result")
            continue
        batch.append((r.analysis, str(r.path.resolve())))
        if len(batch) >= 64:
            index.add_analyses(batch, scope="references")
            batch = []
    index.add_analyses(batch, scope="references")


def _learned_report(
    embedder: Embedder,
    truth: dict[str, dict[str, Any]],
    ambiguous: set[tuple[str, str]],
    checked: list[tuple[str, list[CheckMatch]]],
    top: int,
) -> LearnedReport:
    """The run scored with the learned tier's fused matches, and what the tier cost."""
    fused = [(q, m) for q, ms in checked for m in ms[:top]]
    predictions = (Prediction(q, Path(m.file.source).name, m.score, m.verdict.is_duplicate) for q, m in fused)
    return LearnedReport(
        report=score_predictions(truth, ambiguous, predictions),
        model=embedder.name,
        cpu_ms_per_image=embedder.cpu_seconds * 1000 / max(1, embedder.embedded),
        bytes_per_image=embedder.bytes_per_image,
        promoted=sum(1 for _, m in fused if m.learned and m.learned.promoted),
        semantic=sum(1 for _, m in fused if m.learned and m.learned.semantic),
    )


def evaluate_folder(
    folder: str | Path,
    *,
    db: str | Path | None = None,
    jobs: int = 0,
    top: int = 10,
    thresholds: Thresholds | None = None,
    learned: bool = False,
    model: str | Path | None = None,
    on_progress: OnProgress = no_progress,
) -> Report:
    """Index ``folder/references``, check every file of ``folder/queries`` and score the matches.

    ``db``: where to build the index (a temporary file when None); ``on_progress`` is told after
    each file, in the stages ``indexing`` and ``checking``. ``learned``/``model``: run with the
    learned tier (``model``: a user's ONNX encoder, see ``lookalike.learned.load_embedder``) and
    score the run both without and with it (``Report.learned``). Raises
    ``ConfigError`` when the folder is not in the benchmark layout, or when the learned tier is
    asked for without its extra installed.
    """
    root = Path(folder)
    truth, ambiguous = _load_truth(root)
    refs, queries = _benchmark_files(root)
    embedder = requested_embedder(learned, model)  # before any work, so that a missing extra fails at once
    jobs = jobs or default_jobs()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(db) if db else Path(tmp) / "eval.sqlite"
        with Index(path, thresholds=thresholds, embedder=embedder) as index:
            _index_references(index, refs, jobs, failures, on_progress)
        tier = None if embedder is None else (model or "")
        checked = list(_predictions(path, queries, jobs, thresholds, tier, failures, on_progress))
    report = score_predictions(truth, ambiguous, (p for q, ms in checked for p in _cascade_only(q, ms, top)))
    extra = None if embedder is None else _learned_report(embedder, truth, ambiguous, checked, top)
    return replace(report, failed=len(failures), learned=extra)
