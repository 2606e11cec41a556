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

With the learned tier (``learned=True`` or a ``model``), references and queries
are also embedded (``lookalike.learned``) and the same run is scored a second
time with the embedding fused in as one more piece of evidence
(``lookalike.learned.fusion``): ``Report.learned`` holds that second report, the
matches promoted and the semantic neighbours added, and the tier's cost.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lookalike.config import Thresholds
from lookalike.errors import ConfigError
from lookalike.fingerprints import analyse_files, default_jobs
from lookalike.index import Index
from lookalike.index.parallel import check_files
from lookalike.learned.fusion import Fusion, fuse_matches, semantic_score

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from lookalike.learned import Embedder

__all__ = [
    "LearnedReport",
    "OnProgress",
    "Prediction",
    "Report",
    "evaluate_folder",
    "fused_predictions",
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

    ``cpu_ms_per_image``: process CPU time of decoding and embedding, per image,
    over all the threads that did it; ``promoted``: similar matches made
    duplicates by agreement; ``semantic``: neighbours only the embedding found.
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
            failures.append(c.error.message if c.error else f"{c.source}: no result")
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
    learned: bool = False,
    model: str | Path | None = None,
    on_progress: OnProgress = no_progress,
) -> Report:
    """Index ``folder/references``, check every file of ``folder/queries`` and score the matches.

    ``db``: where to build the index (a temporary file when None); ``on_progress`` is told after
    each file, in the stages ``indexing`` and ``checking`` (and ``embedding`` with the learned
    tier). ``learned``/``model``: also score the run with the learned tier (``model``: a user's
    ONNX encoder, see ``lookalike.learned.load_embedder``), in ``Report.learned``. Raises
    ``ConfigError`` when the folder is not in the benchmark layout, or when the learned tier is
    asked for without its extra installed.
    """
    root = Path(folder)
    truth, ambiguous = _load_truth(root)
    refs = sorted(p for p in (root / "references").iterdir() if p.is_file()) if (root / "references").is_dir() else []
    queries = sorted(p for p in (root / "queries").iterdir() if p.is_file()) if (root / "queries").is_dir() else []
    if not refs or not queries:
        raise ConfigError(f"{root}: needs references/ and queries/ folders with files in them")
    embedder = None
    if learned or model is not None:
        from lookalike.learned import load_embedder  # only now: onnxruntime is an optional extra

        embedder = load_embedder(model)  # before any work, so that a missing extra fails at once
    jobs = jobs or default_jobs()
    failures: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(db) if db else Path(tmp) / "eval.sqlite"
        with Index(path, thresholds=thresholds) as index:
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
        predictions = list(_predictions(path, queries, jobs, top, thresholds, failures, on_progress))
        report = score_predictions(truth, ambiguous, predictions)
    extra = None
    if embedder is not None:
        extra = _learned_report(embedder, refs, queries, predictions, truth, ambiguous, thresholds, jobs, on_progress)
    return replace(report, failed=len(failures), learned=extra)


def _embed_all(
    embedder: Embedder, files: list[Path], jobs: int, stage: str, on_progress: OnProgress
) -> dict[str, npt.NDArray[np.float16]]:
    """Embeddings by file name; files that cannot be decoded are left out (the cascade reports them)."""
    from lookalike.errors import InputError

    def one(path: Path) -> npt.NDArray[np.float16] | None:
        try:
            return embedder.embed_file(path)
        except InputError:
            return None

    out: dict[str, npt.NDArray[np.float16]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for done, (path, vector) in enumerate(zip(files, pool.map(one, files), strict=True), 1):
            on_progress(stage, done, len(files))
            if vector is not None:
                out[path.name] = vector
    return out


def fused_predictions(
    predictions: list[Prediction],
    queries: list[str],
    ref_vectors: Mapping[str, npt.NDArray[np.float16]],
    query_vectors: Mapping[str, npt.NDArray[np.float16]],
    fusion: Fusion,
) -> tuple[list[Prediction], int, int]:
    """The cascade's ``predictions`` with the embeddings fused in (``lookalike.learned.fusion``),
    with the number of matches promoted and of semantic neighbours added."""
    import numpy as np

    from lookalike.learned import EmbeddingIndex

    names = list(ref_vectors)
    row_of = {n: i for i, n in enumerate(names)}
    dims = next(iter(ref_vectors.values())).shape[0] if names else 1
    stored = np.stack([ref_vectors[n] for n in names]) if names else np.zeros((0, dims), np.float16)
    index = EmbeddingIndex(stored)
    by_query: dict[str, list[tuple[str, float, bool]]] = {}
    for p in predictions:
        by_query.setdefault(p.query, []).append((p.ref, p.score, p.duplicate))
    fused: list[Prediction] = []
    promoted = semantic = 0
    for q in queries:
        matches = by_query.get(q, [])
        vector = query_vectors.get(q)
        if vector is None or not names:
            fused.extend(Prediction(q, r, s, d) for r, s, d in matches)
            continue
        found = index.search(vector[None, :], 10)
        nearest = [(names[i], float(c)) for i, c in zip(found.ids[0], found.similarity[0], strict=True) if i >= 0]
        v32 = vector.astype(np.float32)
        cosine = {r: float(stored[row_of[r]].astype(np.float32) @ v32) for r, _, _ in matches if r in row_of}
        for m in fuse_matches(matches, cosine, nearest, fusion):
            promoted += m.promoted
            fused.append(Prediction(q, m.ref, m.score, m.duplicate))
        reported = {r for r, _, _ in matches}
        for ref, c in nearest:
            if ref not in reported and c >= fusion.lift_from:
                semantic += 1
                fused.append(Prediction(q, ref, semantic_score(c, fusion), False))
    return fused, promoted, semantic


def _learned_report(
    embedder: Embedder,
    refs: list[Path],
    queries: list[Path],
    predictions: list[Prediction],
    truth: dict[str, dict[str, Any]],
    ambiguous: set[tuple[str, str]],
    thresholds: Thresholds | None,
    jobs: int,
    on_progress: OnProgress,
) -> LearnedReport:
    """Embed references and queries, then score ``predictions`` again with the embeddings fused in."""
    t = thresholds or Thresholds()
    fusion = Fusion(near_duplicate=t.near_duplicate, similar=t.similar)
    cpu = time.process_time()
    ref_vectors = _embed_all(embedder, refs, jobs, "embedding references", on_progress)
    query_vectors = _embed_all(embedder, queries, jobs, "embedding queries", on_progress)
    cpu_ms = (time.process_time() - cpu) * 1000 / max(1, len(ref_vectors) + len(query_vectors))
    fused, promoted, semantic = fused_predictions(
        predictions, [q.name for q in queries], ref_vectors, query_vectors, fusion
    )
    return LearnedReport(
        report=score_predictions(truth, ambiguous, fused),
        model=embedder.name,
        cpu_ms_per_image=cpu_ms,
        bytes_per_image=embedder.bytes_per_image,
        promoted=promoted,
        semantic=semantic,
    )
