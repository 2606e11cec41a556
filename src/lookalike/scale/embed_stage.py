"""``find --cluster --similar``: the learned tier's stage of ``Pipeline``, with the answer of one
machine's ``find --similar`` (``scan.similar``: the same neighbours, rule, scores and order).

1. Embeddings, on the workers. With the tier on, each fingerprint task also embeds every file it
   decodes, from the pixels it fingerprints (``EmbedSink``, handed them by
   ``stages.fingerprint_rows``, as ``find``'s reading workers do), into
   ``embeddings/part-D.parquet`` beside its part (``EMBEDDINGS``: each content's SHA-256 and its
   float16 vector). A part fingerprinted without the tier (a run resumed with ``--similar``) gets
   an ``embed_task`` of its own, which reads and decodes its files again. A file is named by the
   model and its part's digest, so a resumed or grown run reuses every part it kept.
2. The vectors, once (``vectors_task``): every index row's vector, found by its content in its
   first path's part, at row ``pk - 1`` of ``similar/vectors-D/vectors.npy`` (float16;
   ``present.npy`` marks the rows that have one); from ``ANN_THRESHOLD`` vectors on, also the HNSW
   graph ``EmbeddingIndex`` builds over them (``hnsw.faiss``), the index one machine searches.
3. Neighbours, a task a partition (``near_task``): its rows' ``NEIGHBOURS`` nearest by cosine
   among the stored vectors (memory-mapped, read ``learned.search``'s block at a time; or the
   graph, read once per worker process), those at a cosine of at least the fusion's ``lift_from``
   kept (``similar/near-NNNNN-D.parquet``: two index rows and their cosine).
4. On the client (``write_similar``): those pairs less the ones the cascade judged (the matching
   stage's pairs, any verdict) or whose rows share a group, each once at its best cosine, best
   first, ties by index rows, as ``similar.parquet`` (``SIMILAR``), read back by ``read_similar``.

The client holds no vector: only the neighbour pairs (16 bytes each, at most ``NEIGHBOURS`` a
row, most of them dropped below ``lift_from`` by the tasks). Cost: the encoder on every file
(~19 ms a picture with onnxruntime, one core; ``benchmarks/learned_cost.py``) and 2,560 bytes a
row on the shared disk; each search task reads every stored vector once (exact) or each worker
holds the graph (about 5.2 KB a row, float32 vectors and links) from ``ANN_THRESHOLD`` rows on.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits, Thresholds
from lookalike.decode import decode_image
from lookalike.errors import InputError
from lookalike.fingerprints import WORKING_SIDE
from lookalike.index.semantic import NEIGHBOURS
from lookalike.learned import ANN_THRESHOLD, EmbeddingIndex
from lookalike.learned.fusion import Fusion
from lookalike.learned.search import nearest_exact
from lookalike.scale.keepers import RunPairs
from lookalike.scale.partitions import digest, drop_others
from lookalike.scale.rows import RunRows
from lookalike.scale.runner import Runner, call
from lookalike.scale.stages import write_atomically
from lookalike.scale.storage import read_bytes
from lookalike.scan.options import Progress, steps
from lookalike.scan.results import SimilarPair
from lookalike.scan.similar import embedder_for, similar_pair

__all__ = ["EMBEDDINGS", "SIMILAR", "EmbedSink", "EmbedTarget", "Tier", "read_similar", "similar_stage"]

#: bump when what the stage's files hold changes
EMBED_VERSION = 1
#: ``embeddings/part-D.parquet``: each content a fingerprint part decoded, and its embedding
EMBEDDINGS = pa.schema([("sha256", pa.binary(32)), ("vector", pa.binary())])
#: ``similar/near-NNNNN-D.parquet``: a row of the partition (``a``), a neighbour and their cosine
_NEAR = pa.schema([("a", pa.int32()), ("b", pa.int32()), ("cosine", pa.float32())])
#: ``similar.parquet``: the semantic neighbours as ``find --similar`` lists them, best first
SIMILAR = pa.schema(
    [("a", pa.string()), ("b", pa.string()), ("cosine", pa.float64()), ("score", pa.float64()),
     ("evidence", pa.string())]
)  # fmt: skip
_WRITE_ROWS = 8_192


@dataclass(frozen=True, slots=True)
class Tier:
    """The learned tier of a run: the ``model`` asked for (None: the built-in encoder), its
    ``name`` (model and weights' hash: what the embedding files are named by) and width."""

    model: str | None
    name: str
    dims: int

    @classmethod
    def load(cls, model: str | None) -> Tier:
        """The tier of ``model``, its encoder loaded here once. Raises ``ConfigError`` naming
        ``lookalike[learned]`` without the extra, before any work."""
        embedder = embedder_for(model)
        return cls(model, embedder.name, embedder.dims)


@dataclass(frozen=True, slots=True)
class EmbedTarget:
    """Where a fingerprint task writes its files' embeddings, and with which ``model``."""

    model: str | None
    path: str


class EmbedSink:
    """Embeds each content it is handed once (``add``), with the worker's encoder (loaded once per
    process), and writes them to the target's file (``write``, atomically)."""

    def __init__(self, target: EmbedTarget) -> None:
        self._target = target
        self._vectors: dict[bytes, bytes] = {}

    def add(self, sha256: bytes, pixels: npt.NDArray[np.uint8]) -> None:
        """Embed ``pixels`` (a file's working-size decode) unless its content already was."""
        if sha256 not in self._vectors:
            self._vectors[sha256] = embedder_for(self._target.model).embed_pixels([pixels])[0].tobytes()

    def __contains__(self, sha256: bytes) -> bool:
        return sha256 in self._vectors

    def write(self) -> int:
        """Write the embeddings to the target file; returns how many."""
        table = pa.table({"sha256": list(self._vectors), "vector": list(self._vectors.values())}, schema=EMBEDDINGS)
        write_atomically(table, self._target.path)
        return int(table.num_rows)


def embeddings_path(run_dir: str, name: str, part_digest: str) -> str:
    """The embeddings file of the fingerprint part ``part_digest`` with the encoder ``name``."""
    return os.path.join(run_dir, "embeddings", f"part-{digest(EMBED_VERSION, name, part_digest)}.parquet")


# ---- tasks: module-level functions, shipped to workers by reference --------------------------


def embed_task(part_path: str, target: EmbedTarget, limits: DecodeLimits, storage_options: Mapping[str, Any]) -> int:
    """Embed the files of a fingerprint part written without the tier, each read and decoded again
    at working size, as the fingerprint task decodes it; a file that cannot be read, or no longer
    holds what was fingerprinted, is left out (no vector: no neighbour). Returns vectors written."""
    sink = EmbedSink(target)
    t = pq.read_table(part_path, columns=["url", "sha256"])
    for url, sha in zip(t.column("url").to_pylist(), t.column("sha256").to_pylist()):
        if sha is None or sha in sink:
            continue
        try:
            data = read_bytes(url, max_bytes=limits.max_bytes, storage_options=storage_options)
            if hashlib.sha256(data).digest() != sha:
                continue
            pixels = decode_image(data, limits=limits, min_side=WORKING_SIDE).pixels
        except InputError:
            continue
        sink.add(sha, pixels)
    return sink.write()


def vectors_task(plan_path: str, part_paths: list[str], embed_paths: list[str], out_dir: str, dims: int) -> int:
    """Write every index row's vector (``plan_path``: each row's ``pk``, the ``part`` of its first
    path and its ``row`` there, by pk) to ``out_dir`` (see the module docstring, step 2); returns
    the rows that have one."""
    plan = pq.read_table(plan_path)
    pk, part, row = (plan.column(n).to_numpy() for n in ("pk", "part", "row"))
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f"vectors.{os.getpid()}.tmp")
    vectors = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float16, shape=(len(pk), dims))
    present = np.zeros(len(pk), np.bool_)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(len(part_paths) + 1))
    for i, (fp, ep) in enumerate(zip(part_paths, embed_paths, strict=True)):
        at = order[bounds[i] : bounds[i + 1]]
        if not len(at):
            continue
        sha = pq.read_table(fp, columns=["sha256"]).column("sha256").combine_chunks().take(pa.array(row[at]))
        stored = pq.read_table(ep)
        where = pc.fill_null(pc.index_in(sha, value_set=stored.column("sha256")), -1).to_numpy()
        found = where >= 0
        if found.any():
            blobs = stored.column("vector").combine_chunks().take(pa.array(where[found])).to_pylist()
            vectors[pk[at][found] - 1] = np.frombuffer(b"".join(blobs), np.float16).reshape(-1, dims)
            present[pk[at][found] - 1] = True
    vectors.flush()
    del vectors
    os.replace(tmp, os.path.join(out_dir, "vectors.npy"))
    if present.sum() >= ANN_THRESHOLD:  # the index one machine would search (``EmbeddingIndex``)
        stored_rows = np.load(os.path.join(out_dir, "vectors.npy"), mmap_mode="r")[present]
        EmbeddingIndex(np.asarray(stored_rows, np.float32), exact=False).write(tmp)
        os.replace(tmp, os.path.join(out_dir, "hnsw.faiss"))
    with open(tmp, "wb") as f:  # last: a folder with present.npy is complete
        np.save(f, present)
    os.replace(tmp, os.path.join(out_dir, "present.npy"))
    return int(present.sum())


#: the graph a worker process read last (one run's at a time): (path, index)
_graph: list[tuple[str, EmbeddingIndex]] = []


def near_task(vectors_dir: str, pks: npt.NDArray[np.int32], k: int, lift_from: float, out: str) -> int:
    """The ``k`` nearest stored vectors of each row ``pks`` with a vector, itself and those below
    ``lift_from`` left out, into ``out`` (``_NEAR``); returns the pairs written."""
    vectors = np.load(os.path.join(vectors_dir, "vectors.npy"), mmap_mode="r")
    present = np.load(os.path.join(vectors_dir, "present.npy"))
    q = pks[present[pks - 1]].astype(np.int64)
    queries = np.asarray(vectors[q - 1], np.float32)
    graph = os.path.join(vectors_dir, "hnsw.faiss")
    if os.path.exists(graph):
        if not _graph or _graph[0][0] != graph:
            _graph.clear()
            _graph.append((graph, EmbeddingIndex.read(graph)))
        found = _graph[0][1].search(queries, k)
        stored_rows = np.flatnonzero(present)  # the graph's ids, in order
        ids = np.where(found.ids >= 0, stored_rows[np.maximum(found.ids, 0)] + 1, 0)
    else:
        found = nearest_exact(queries, vectors, k, allowed=present)
        ids = found.ids + 1
    a, b, c = np.repeat(q, found.ids.shape[1]), ids.ravel(), found.similarity.ravel()
    keep = (b > 0) & (b != a) & (c.astype(np.float64) >= lift_from) & present[np.maximum(b, 1) - 1]
    table = pa.table({"a": a[keep].astype(np.int32), "b": b[keep].astype(np.int32), "cosine": c[keep]}, schema=_NEAR)
    write_atomically(table, out)
    return int(table.num_rows)


# ---- the stage ----------------------------------------------------------------------------------


def similar_stage(
    runner: Runner, run_dir: str, parts: list[tuple[str, str]], rows: RunRows, pairs: RunPairs, groups_path: str,
    progress: Progress | None, *, tier: Tier, stored_digest: str, thresholds: Thresholds, limits: DecodeLimits,
    storage_options: Mapping[str, Any],
) -> str:  # fmt: skip
    """Steps 1 (the parts still without embeddings) to 4 of the module docstring, on ``runner``;
    returns the path of ``similar.parquet``."""
    rules = Fusion(near_duplicate=thresholds.near_duplicate, similar=thresholds.similar)
    folder = os.path.join(run_dir, "similar")
    embed_paths = [embeddings_path(run_dir, tier.name, d) for _, d in parts]
    todo: list[tuple[str, tuple[Any, ...]]] = [
        (
            f"embed-{os.path.basename(ep)}",
            (embed_task, path, EmbedTarget(tier.model, ep), limits, dict(storage_options)),
        )
        for (path, _), ep in zip(parts, embed_paths)
        if not os.path.exists(ep)
    ]
    drop_others(os.path.join(run_dir, "embeddings"), set(embed_paths))
    vd = digest(EMBED_VERSION, tier.name, stored_digest, embed_paths)
    vectors_dir, plan_path = os.path.join(folder, f"vectors-{vd}"), os.path.join(folder, f"plan-{vd}.parquet")
    near_todo, near_paths = [], []
    for i, (_, pk_of) in enumerate(rows.owned(len(parts))):
        nd = digest(vd, i, NEIGHBOURS + 1, rules.lift_from)
        near_paths.append(os.path.join(folder, f"near-{i:05d}-{nd}.parquet"))
        if not os.path.exists(near_paths[-1]):
            args = (near_task, vectors_dir, pk_of, NEIGHBOURS + 1, rules.lift_from)
            near_todo.append((f"near-{i:05d}-{nd}", (*args, near_paths[-1])))
    built = os.path.exists(os.path.join(vectors_dir, "present.npy"))
    drop_others(folder, {vectors_dir, plan_path, *near_paths})  # an earlier run's vectors and neighbours
    with steps(progress, len(todo) + (not built) + len(near_todo), "neighbours") as advance:
        for _ in runner.map(call, todo):
            advance()
        if not built:
            first = np.flatnonzero(rows.first)
            first = first[np.argsort(rows.pk[first])]
            write_atomically(
                pa.table({"pk": rows.pk[first], "part": rows.part[first], "row": rows.row[first]}), plan_path
            )
            build = (vectors_task, plan_path, [p for p, _ in parts], embed_paths, vectors_dir, tier.dims)
            for _ in runner.map(call, [(f"vectors-{vd}", build)]):
                advance()
        for _ in runner.map(call, near_todo):
            advance()
    out = os.path.join(run_dir, "similar.parquet")
    write_similar(out, rows, pairs, groups_path, near_paths, rules)
    return out


def write_similar(
    out: str, rows: RunRows, pairs: RunPairs, groups_path: str, near_paths: list[str], rules: Fusion
) -> int:
    """Step 4 of the module docstring: the neighbour pairs of ``near_paths`` less those judged
    (``pairs``) or sharing a group (``groups_path``), to ``out`` (``SIMILAR``); returns how many."""
    near = pa.concat_tables([pq.read_table(p) for p in near_paths]) if near_paths else _NEAR.empty_table()
    a, b = (near.column(n).to_numpy().astype(np.int64) for n in ("a", "b"))
    cosine = near.column("cosine").to_numpy().astype(np.float64)
    del near
    lo, hi, n = np.minimum(a, b), np.maximum(a, b), rows.rows + 1
    group_of = _group_of(rows, groups_path)
    keep = ~np.isin(lo * n + hi, pairs.lo * n + pairs.hi) & ~((group_of[lo] >= 0) & (group_of[lo] == group_of[hi]))
    lo, hi, cosine = lo[keep], hi[keep], cosine[keep]
    order = np.lexsort((-cosine, hi, lo))  # each pair once, at its best cosine
    new = np.ones(len(order), np.bool_)
    new[1:] = (lo[order][1:] != lo[order][:-1]) | (hi[order][1:] != hi[order][:-1])
    best = order[new]
    lo, hi, cosine = lo[best], hi[best], cosine[best]
    order = np.lexsort((hi, lo, -cosine))  # best first, ties by index rows, as ``scan.similar`` lists them
    first_at = np.zeros(n, np.int64)
    first_at[rows.pk[rows.first]] = np.flatnonzero(rows.first)
    tmp = f"{out}.tmp"
    with pq.ParquetWriter(tmp, SIMILAR) as writer:
        writer.write_table(SIMILAR.empty_table())
        for start in range(0, len(order), _WRITE_ROWS):
            at = order[start : start + _WRITE_ROWS]
            a_paths = rows.urls.take(pa.array(first_at[lo[at]])).to_pylist()
            b_paths = rows.urls.take(pa.array(first_at[hi[at]])).to_pylist()
            found = [similar_pair(x, y, float(c), rules) for x, y, c in zip(a_paths, b_paths, cosine[at].tolist())]
            writer.write_table(pa.Table.from_pylist([_row(p) for p in found], schema=SIMILAR))
    os.replace(tmp, out)
    return len(order)


def _row(p: SimilarPair) -> dict[str, Any]:
    return {"a": p.a, "b": p.b, "cosine": p.cosine, "score": p.score, "evidence": p.evidence}


def _group_of(rows: RunRows, groups_path: str) -> npt.NDArray[np.int64]:
    """Per index row (position ``pk``), the group its first path is in (-1: none)."""
    group_of = np.full(rows.rows + 1, -1, np.int64)
    members = pq.read_table(groups_path, columns=["group", "path"])
    at = pc.fill_null(pc.index_in(members.column("path"), value_set=rows.urls), -1).to_numpy()
    known = at >= 0
    at, group = at[known], members.column("group").to_numpy()[known]
    first = rows.first[at]
    group_of[rows.pk[at[first]]] = group[first]
    return group_of


def read_similar(path: str) -> Iterator[SimilarPair]:
    """The semantic neighbours of ``similar.parquet``, one at a time, best first."""
    for batch in pq.ParquetFile(path).iter_batches(batch_size=_WRITE_ROWS):
        for a, b, cosine, score, evidence in zip(*(batch.column(n).to_pylist() for n in SIMILAR.names)):
            yield SimilarPair(a, b, cosine, score, evidence)
