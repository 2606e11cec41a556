"""What the learned tier costs and what it brings.

    .venv/bin/python benchmarks/learned_cost.py [--images DIR] [--limit 200] [--sizes 10000,100000]
                                               [--eval-json FILE]

1. CPU ms per image, on one core (the script runs itself again under ``taskset -c CPU``, so
   that every thread of NumPy, onnxruntime and FAISS shares that core): reading + decoding +
   embedding a file, and embedding alone from decoded pixels; and the bytes stored per image (float16 embedding).
2. Search: the exact NumPy scan against FAISS HNSW over N synthetic unit vectors of the
   embedding's width, one query at a time (as ``check`` asks): build seconds, ms per query, and
   HNSW's recall@10 against the exact answer. Gaussian vectors are HNSW's hard case (no clusters),
   so its recall here is a floor. ``lookalike.learned.search.ANN_THRESHOLD`` comes from this table.
3. Eval uplift per edit, read from ``lookalike eval BENCH --learned --json`` output (``--eval-json``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from lookalike.decode import decode_image
from lookalike.learned import EmbeddingIndex, load_embedder


def _pinned() -> int:
    """The one CPU this process runs on, after running itself again under taskset when needed."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) > 1 and shutil.which("taskset"):
        os.execvp("taskset", ["taskset", "-c", str(allowed[-1]), sys.executable, *sys.argv])
    return allowed[-1]


def embedding_cost(folder: Path, limit: int) -> None:
    files = sorted(p for p in folder.iterdir() if p.is_file())[:limit]
    embedder = load_embedder(threads=1)
    embedder.embed_file(files[0])  # warm: session, allocator
    c0, w0 = time.process_time(), time.perf_counter()
    pixels = [decode_image(p.read_bytes(), min_side=embedder.preprocess.size).pixels for p in files]
    c1, w1 = time.process_time(), time.perf_counter()
    for px in pixels:
        embedder.embed_pixels([px])
    c2, w2 = time.process_time(), time.perf_counter()
    n = len(files)
    print(f"model {embedder.name}: {n} files of {folder}")
    print(f"  decode (reduced to >= {embedder.preprocess.size} px): {(c1 - c0) * 1e3 / n:6.1f} CPU ms/image "
          f"({(w1 - w0) * 1e3 / n:.1f} wall)")  # fmt: skip
    print(
        f"  embed one image at a time:        {(c2 - c1) * 1e3 / n:6.1f} CPU ms/image ({(w2 - w1) * 1e3 / n:.1f} wall)"
    )
    print(f"  stored per image: {embedder.bytes_per_image} bytes ({embedder.dims} float16)")


def search_cost(sizes: list[int], dims: int, queries: int = 200, rank: int = 64) -> None:
    rng = np.random.default_rng(0)
    basis = rng.normal(size=(rank, dims)).astype(np.float32)
    print(f"search over {dims}-d unit vectors of intrinsic rank {rank} plus noise, {queries} single queries (k=10),")
    print("CPU time on the pinned core:")
    print(f"  {'n':>8} {'exact ms/q':>11} {'hnsw build s':>13} {'hnsw ms/q':>10} {'hnsw recall@10':>15}")
    for n in sizes:
        # real embeddings are not isotropic: a low-rank cloud plus noise is nearer to them than
        # Gaussian vectors in all 1,280 dimensions (HNSW's worst case)
        stored = rng.normal(size=(n, rank)).astype(np.float32) @ basis
        stored += 0.3 * np.sqrt(rank / dims) * rng.normal(size=(n, dims)).astype(np.float32)
        stored /= np.linalg.norm(stored, axis=1, keepdims=True)
        pick = rng.integers(0, n, size=queries)
        q = stored[pick] + 0.5 * rng.normal(size=(queries, dims)).astype(np.float32) / np.sqrt(dims)
        q = (q / np.linalg.norm(q, axis=1, keepdims=True)).astype(np.float16)
        vectors = stored.astype(np.float16)
        del stored
        exact = EmbeddingIndex(vectors, exact=True)
        t = time.process_time()
        truth = [exact.search(row, 10).ids[0] for row in q]
        exact_ms = (time.process_time() - t) * 1e3 / queries
        t = time.process_time()
        ann = EmbeddingIndex(vectors, exact=False)
        build_s = time.process_time() - t
        t = time.process_time()
        found = [ann.search(row, 10).ids[0] for row in q]
        ann_ms = (time.process_time() - t) * 1e3 / queries
        recall = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(found, truth, strict=True)])
        print(f"  {n:>8} {exact_ms:>11.2f} {build_s:>13.1f} {ann_ms:>10.3f} {recall:>15.3f}")


def uplift(path: Path) -> None:
    report = json.loads(path.read_text())
    learned = report.get("learned")
    if learned is None:
        print(f"{path}: no 'learned' section (run eval with --learned)")
        return
    print(f"eval ({path}): without -> with the learned tier ({learned['model']})")
    for key in ("uAP", "recall@P90", "recall@P99", "verdict_precision", "verdict_recall"):
        print(f"  {key:>20}: {report[key]:.4f} -> {learned[key]:.4f} ({learned[key] - report[key]:+.4f})")
    print("  recall per edit at the precision-0.90 cut:")
    for edit, before in report["recall_by_edit@P90"].items():
        after = learned["recall_by_edit@P90"][edit]
        print(f"  {edit:>20}: {before:.4f} -> {after:.4f} ({after - before:+.4f})")
    print(
        f"  promoted {learned['promoted']}, semantic neighbours {learned['semantic']}, "
        f"{learned['cpu_ms_per_image']} CPU ms/image in eval (all threads), {learned['bytes_per_image']} bytes/image"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=Path, default=Path("/tmp/bench80/references"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--eval-json", type=Path)
    args = parser.parse_args()
    print(f"pinned to CPU {_pinned()} by taskset; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if args.images.is_dir():
        embedding_cost(args.images, args.limit)
    if args.sizes:
        search_cost([int(s) for s in args.sizes.split(",")], 1280)
    if args.eval_json:
        uplift(args.eval_json)


if __name__ == "__main__":
    main()
