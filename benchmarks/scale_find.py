#!/usr/bin/env python3
"""The product's scale-out ``find`` from the fingerprint stage on, on N synthetic pictures.

    python benchmarks/scale_find.py --synthetic 100000 --cluster local:2

1. Writes the fingerprint Parquet (``lookalike.scale.schema.FINGERPRINTS``) of N synthetic
   pictures: random codes (pHash, dHash, aHash, wHash, PDQ, thumbnail) under each of the eight
   flips and turns kept consistent with one another (the signals of a picture turned by j and then
   by k are those of the picture turned by their product), and 400 ORB keypoints each (14 KB, the
   size ``fingerprints.local`` gives a photo). A tenth of the rows are planted copies of another
   row: recompressed (every code moved by a few bits), mirrored, turned a quarter (the codes of the
   original under that turn, moved by a few bits, width and height swapped) and cropped to 80 %
   (new global codes: a crop's hashes are a stranger's; the keypoints inside the crop, moved into
   its frame, their descriptors moved by 8 bits, after 64 keypoints of its own).
2. Runs ``lookalike.scale.Pipeline.match``, the stages ``find --cluster`` runs after fingerprinting
   (the same ``Pipeline`` object), on a Dask cluster, sampling the resident memory of this process
   (the client) and of each worker process every 0.2 s, and the CPU time of all of them.
3. For N <= 1 M, checks a sample of rows (``--sample``) the one-machine way: every row in one
   ``lookalike.index.Index`` and each sampled row checked by ``Index.check_query``, the cascade
   ``find`` runs, and compares their pairs with the run's.

The last line is one JSON object: n, planted, planted_found, peak_worker_bytes, peak_client_bytes,
wall_seconds, matching_core_seconds, and pairs_equal_to_one_machine (with pairs_compared_rows).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import struct
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits, Thresholds
from lookalike.fingerprints import Dihedral, Fingerprint, fingerprint_from_bytes, fingerprint_to_bytes
from lookalike.fingerprints.dct import transform_pixels
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index import Index
from lookalike.index.store.records import NewFile
from lookalike.match import Query, Verdict
from lookalike.scale import Pipeline
from lookalike.scale.memory import client_memory
from lookalike.scale.schema import FINGERPRINTS, turned_fingerprints
from lookalike.scale.stages import FINGERPRINT_GROUP_ROWS, exact_groups

PAGE = os.sysconf("SC_PAGE_SIZE")
TURN = struct.Struct(">8Q3Q32sB256s6f")
KEYPOINTS = 400
KINDS = ("recompressed", "mirrored", "turned", "cropped")
TURN_OF = {"recompressed": 0, "mirrored": int(Dihedral.FLIP_LR), "turned": int(Dihedral.ROT90)}


def products() -> np.ndarray:
    """``mul[a, b]``: the flip or turn that is b followed by a."""
    x = np.arange(6).reshape(2, 3)
    of = {
        transform_pixels(x, Dihedral(k)).tobytes() + bytes(transform_pixels(x, Dihedral(k)).shape): k for k in range(8)
    }
    mul = np.zeros((8, 8), np.int64)
    for a in range(8):
        for b in range(8):
            y = np.ascontiguousarray(
                transform_pixels(np.ascontiguousarray(transform_pixels(x, Dihedral(b))), Dihedral(a))
            )
            mul[a, b] = of[y.tobytes() + bytes(y.shape)]
    return mul


class Pictures:
    """The synthetic pictures' codes under each flip or turn m (base arrays, ``[i, m]``)."""

    def __init__(self, rng: np.random.Generator, n: int) -> None:
        self.rng = rng
        self.h64 = rng.integers(0, 2**64, size=(n, 8, 4), dtype=np.uint64)  # pHash, dHash, aHash, wHash
        self.pdq = rng.integers(0, 256, size=(n, 8, 32), dtype=np.uint8)
        self.thumb = rng.integers(0, 256, size=(n, 8, 256), dtype=np.uint8)
        self.colour = rng.uniform(0, 1, size=(n, 6)).astype(np.float32)
        self.size = np.tile(np.array([[256, 192]]), (n, 1))

    def copy_of(self, c: int, o: int, k: int, mul: np.ndarray) -> None:
        """Row ``c`` becomes row ``o`` under flip or turn ``k``, every code moved by a few bits."""
        rng = self.rng
        order = mul[np.arange(8), k]  # turned by m, the copy is the original turned by mul[m, k]
        self.h64[c] = self.h64[o, order] ^ _bits(rng, (8, 4), 3)
        self.pdq[c] = self.pdq[o, order] ^ _bytes_bits(rng, (8, 32), 12)
        self.thumb[c] = np.clip(self.thumb[o, order].astype(np.int64) + rng.integers(-3, 4, (8, 256)), 0, 255)
        self.colour[c] = self.colour[o]
        self.size[c] = self.size[o][::-1] if k >= 4 else self.size[o]

    def fingerprint(self, i: int, mul: np.ndarray, sha: bytes) -> tuple[bytes, bytes]:
        """The encoded fingerprint and the packed turns of row ``i``."""
        h, p, t, c = self.h64[i], self.pdq[i], self.thumb[i], self.colour[i]
        fp = Fingerprint(
            phash_variants=tuple(int(v) for v in h[:, 0]), dhash=int(h[0, 1]), ahash=int(h[0, 2]), whash=int(h[0, 3]),
            pdq=p[0].tobytes(), pdq_quality=100, thumbnail=t[0].tobytes(), colour=tuple(float(v) for v in c),
            sha256=sha, width=int(self.size[i, 0]), height=int(self.size[i, 1]), byte_size=40_000, mime="image/jpeg",
        )  # fmt: skip
        turns = b"".join(
            TURN.pack(*(int(h[mul[v, k], 0]) for v in range(8)), int(h[k, 1]), int(h[k, 2]), int(h[k, 3]),
                      p[k].tobytes(), 100, t[k].tobytes(), *(float(v) for v in c))
            for k in range(1, 8)
        )  # fmt: skip
        return fingerprint_to_bytes(fp), turns


def _bits(rng: np.random.Generator, shape: tuple[int, ...], most: int) -> np.ndarray:
    """uint64 masks of up to ``most`` random bits each."""
    out = np.zeros(shape, np.uint64)
    for _ in range(most):
        out ^= np.uint64(1) << rng.integers(0, 64, shape, dtype=np.uint64)
    return out


def _bytes_bits(rng: np.random.Generator, shape: tuple[int, int], most: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    for _ in range(most):
        idx = rng.integers(0, shape[1], shape[0])
        out[np.arange(shape[0]), idx] ^= (np.uint8(1) << rng.integers(0, 8, shape[0], dtype=np.uint8)).astype(np.uint8)
    return out


def local_of(rng: np.random.Generator) -> LocalFeatures:
    """Random keypoints of a photo-like picture (4:3)."""
    return LocalFeatures(
        points=rng.uniform(0, 1, (KEYPOINTS, 2)).astype(np.float32),
        descriptors=rng.integers(0, 256, (KEYPOINTS, 32), dtype=np.uint8), aspect=4 / 3,
    )  # fmt: skip


def crop_of(rng: np.random.Generator, f: LocalFeatures) -> LocalFeatures:
    """The keypoints of ``f`` inside its central 80 %, in the crop's frame, descriptors moved by 8
    bits, after 64 keypoints of the crop's own, filled up to ``KEYPOINTS`` with more of its own."""
    inside = np.all((f.points > 0.1) & (f.points < 0.9), axis=1)
    kept = f.descriptors[inside] ^ _bytes_bits(rng, (int(inside.sum()), 32), 8)
    own = local_of(rng)
    extra = KEYPOINTS - 64 - len(kept)
    return LocalFeatures(
        points=np.concatenate([own.points[:64], (f.points[inside] - 0.1) / 0.8, own.points[64 : 64 + extra]]),
        descriptors=np.concatenate([own.descriptors[:64], kept, own.descriptors[64 : 64 + extra]]), aspect=f.aspect,
    )  # fmt: skip


def write_parts(folder: Path, n: int, part_rows: int, seed: int) -> dict[str, str]:
    """The fingerprint Parquet of ``n`` pictures in ``folder``; returns {copy url: source url}."""
    rng = np.random.default_rng(seed)
    mul = products()
    pics = Pictures(rng, n)
    copies = n // 10
    originals = n - copies
    url = [f"memory://synthetic/{i:08d}.jpg" for i in range(n)]
    source = rng.choice(originals, copies, replace=False)  # one copy a source: a planted pair each
    kinds = [KINDS[c % len(KINDS)] for c in range(copies)]
    for c, (o, kind) in enumerate(zip(source, kinds)):
        if kind != "cropped":
            pics.copy_of(originals + c, int(o), TURN_OF[kind], mul)
    crop_of_row = {originals + c: int(o) for c, (o, kind) in enumerate(zip(source, kinds)) if kind == "cropped"}
    folder.mkdir(parents=True, exist_ok=True)
    for start in range(0, n, part_rows):
        cols: dict[str, list[Any]] = {name: [] for name in FINGERPRINTS.names}
        for i in range(start, min(n, start + part_rows)):
            fpb, turns = pics.fingerprint(i, mul, rng.bytes(32))
            own = _local_seeded(seed, i)
            local = crop_of(rng, _local_seeded(seed, crop_of_row[i])) if i in crop_of_row else own
            row = {
                "url": url[i], "size": 40_000, "sha256": fingerprint_from_bytes(fpb).sha256, "fingerprint": fpb,
                "turns": turns, "local": local.to_bytes(), "lossless": False, "taken_at": None, "jpeg_quality": 90.0,
                "padding": 0.0, "content_aspect": 4 / 3, "colours": None, "grid_step": None,
                "mtime_ns": 1_700_000_000_000_000_000 + i,
                "error_code": None, "error": None,
            }  # fmt: skip
            for name in FINGERPRINTS.names:
                cols[name].append(row[name])
        # row groups as the fingerprint stage writes them, so that a check reads its candidates' few rows
        pq.write_table(
            pa.table(cols, schema=FINGERPRINTS), folder / f"part-{start // part_rows:05d}.parquet",
            row_group_size=FINGERPRINT_GROUP_ROWS,
        )  # fmt: skip
    return {url[originals + c]: url[int(o)] for c, o in enumerate(source)}


def _local_seeded(seed: int, i: int) -> LocalFeatures:
    """Row ``i``'s own keypoints, the same whenever asked (a crop reads its source's again)."""
    return local_of(np.random.default_rng([seed, i]))


# ---- measuring -------------------------------------------------------------------------------


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as fh:
                    kids = [int(c) for c in fh.read().split()]
                    out.extend(kids)
                    todo.extend(kids)
        except OSError:
            pass
    return out


def _rss(pid: int) -> tuple[int, int]:
    """Resident bytes of ``pid``, and of those the ones not backed by a file (statm's resident
    less shared): the vote table's pages a worker maps are the page cache's, shared by the machine's
    workers, and counted in the first figure only."""
    try:
        with open(f"/proc/{pid}/statm") as fh:
            fields = fh.read().split()
            return int(fields[1]) * PAGE, (int(fields[1]) - int(fields[2])) * PAGE
    except OSError:
        return 0, 0


class Sampler:
    """Peak resident bytes of this process and of its largest descendant, every 0.2 s; and this
    process's peak resident and anonymous bytes in each ``stage`` (set by ``StageClock``)."""

    def __init__(self) -> None:
        self.client = self.worker = self.worker_own = 0
        self.stage = "setup"
        self.client_by_stage: dict[str, list[int]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = os.getpid()
        while not self._done.is_set():
            rss, own = _rss(me)
            self.client = max(self.client, rss)
            peak = self.client_by_stage.setdefault(self.stage, [0, 0])
            peak[0], peak[1] = max(peak[0], rss), max(peak[1], own)
            for p in _descendants(me):
                rss, own = _rss(p)
                self.worker, self.worker_own = max(self.worker, rss), max(self.worker_own, own)
            time.sleep(0.2)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()


def _cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class StageClock:
    """A ``progress`` for ``Pipeline.match`` that adds up the CPU (this process's and the workers')
    and the wall time spent in each stage it is told about: ``{stage: [core s, wall s]}``, and the
    CPU outside every stage (the answer written after grouping, the run's set-up) as ``other``. A
    stage inside another (spectra in grouping) is counted in both, and once in ``other``'s sum."""

    def __init__(self, client: Any, sampler: Sampler) -> None:
        self.client = client
        self.sampler = sampler
        self.spent: dict[str, list[float]] = {}
        self.nested: set[str] = set()

    def _now(self) -> tuple[float, float]:
        return _cpu_seconds() + sum(self.client.run(_cpu_seconds).values()), time.perf_counter()

    @contextlib.contextmanager
    def __call__(self, total: int, label: str) -> Iterator[Callable[[], None]]:
        cpu0, wall0 = self._now()
        outside, self.sampler.stage = self.sampler.stage, label
        inside = not (outside == "setup" or outside.startswith("after "))
        if inside:
            self.nested.add(label)
        try:
            yield lambda: None
        finally:
            # a stage inside another (spectra in grouping) gives the outer one back
            self.sampler.stage = outside if inside else f"after {label}"
            cpu1, wall1 = self._now()
            got = self.spent.setdefault(label, [0.0, 0.0])
            got[0] += cpu1 - cpu0
            got[1] += wall1 - wall0

    def report(self, core: float) -> dict[str, list[float]]:
        out = {k: [round(c, 1), round(w, 1)] for k, (c, w) in self.spent.items()}
        outer = sum(c for k, (c, _) in self.spent.items() if k not in self.nested)
        out["other"] = [round(core - outer, 1), 0.0]
        return out


def one_machine_pairs(parts: list[Path], rows: list[int], db: Path) -> dict[tuple[int, int], tuple[str, float]]:
    """The pairs of the sampled index rows ``rows`` as one machine finds them: every row in one
    ``Index`` (rows with the same bytes one row), each sampled row checked by its cascade."""
    table = pa.concat_tables(
        pq.read_table(p, columns=["url", "sha256", "fingerprint", "turns", "local"]) for p in parts
    )
    order = exact_groups(table.column("url").to_pylist(), table.column("sha256").to_pylist())
    first = {urls[0] for urls in order.values()}
    keep = [i for i, u in enumerate(table.column("url").to_pylist()) if u in first]
    table = table.take(pa.array(keep, pa.int64()))
    out: dict[tuple[int, int], tuple[str, float]] = {}
    with Index(db, limits=DecodeLimits(), thresholds=Thresholds()) as index:
        items = (
            NewFile(fingerprint=fingerprint_from_bytes(fp), scope="default", source=u, local=loc)
            for u, fp, loc in zip(*(table.column(n).to_pylist() for n in ("url", "fingerprint", "local")))
        )
        index.add_files(list(items))
        index.refresh()
        for pk in rows:
            f = index.files([pk])[0]
            turns = table.column("turns")[pk - 1].as_py()
            query = Query.with_turns(f.fingerprint, turned_fingerprints(f.fingerprint, turns))
            loc = index.local_features([pk]).get(pk)
            local = LocalFeatures.from_bytes(loc) if loc else None
            if local is None:
                continue
            for m in index.check_query(query, local, scope="default", exclude_image=f.image_pk)[:200]:
                if m.verdict is not Verdict.DIFFERENT:
                    out[pk, m.file.pk] = (m.verdict.value, round(m.score, 9))
    return out


def main() -> None:
    if "ARROW_DEFAULT_MEMORY_POOL" not in os.environ:
        # as ``lookalike find --cluster`` runs (``cli.scale._arrow_on_glibc``): Arrow reads it once,
        # when first imported, and this script imported it already
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
        os.execv(sys.executable, [sys.executable, *sys.argv])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--synthetic", type=int, required=True, metavar="N")
    ap.add_argument("--cluster", default="local:2")
    ap.add_argument("--work", type=Path, default=Path("/tmp/scale_find"))
    ap.add_argument("--part-rows", type=int, default=4096, help="rows a fingerprint file")
    ap.add_argument("--partition-size", type=int, default=4096, help="the pipeline's partition size")
    ap.add_argument("--sample", type=int, default=300, help="rows checked the one-machine way (0: none)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    n = args.synthetic
    src = args.work / f"fingerprints-{n}-{args.seed}"
    planted_path = src / "planted.json"
    if not planted_path.exists():
        shutil.rmtree(src, ignore_errors=True)
        planted = write_parts(src, n, args.part_rows, args.seed)
        planted_path.write_text(json.dumps(planted))
    planted = json.loads(planted_path.read_text())
    parts = sorted(src.glob("part-*.parquet"))
    run_dir = args.work / f"run-{n}"
    shutil.rmtree(run_dir, ignore_errors=True)

    from dask.distributed import Client, LocalCluster

    workers = int(args.cluster.split(":")[1]) if args.cluster.startswith("local:") else 0
    cluster = (
        LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        if workers
        else None
    )
    client = Client(cluster if cluster is not None else args.cluster)
    client_memory()  # as ``lookalike find --cluster`` does: this process is the run's client
    with Sampler() as sampler:
        worker_cpu0 = sum(client.run(_cpu_seconds).values())
        cpu0, started = _cpu_seconds(), time.perf_counter()
        clock = StageClock(client, sampler)
        run = Pipeline(partition_size=args.partition_size).match(parts, out=run_dir, cluster=client, progress=clock)
        wall = time.perf_counter() - started
        core = _cpu_seconds() - cpu0 + sum(client.run(_cpu_seconds).values()) - worker_cpu0
    client.close()
    if cluster is not None:
        cluster.close()
    steps: dict[str, float] = {}
    for f in (run_dir / "pairs").glob("*.parquet"):
        meta = pq.read_schema(f).metadata or {}
        for k, v in json.loads(meta.get(b"cpu_seconds", b"{}")).items():
            steps[k] = round(steps.get(k, 0.0) + v, 1)
    group_of = {m.path: i for i, g in enumerate(run.result.groups) for m in g.members}
    found = sum(1 for c, s in planted.items() if c in group_of and group_of.get(s) == group_of[c])
    report: dict[str, Any] = {
        "n": n, "planted": len(planted), "planted_found": found, "peak_worker_bytes": sampler.worker,
        "peak_client_bytes": sampler.client, "wall_seconds": round(wall, 1), "matching_core_seconds": round(core, 1),
        "match_task_cpu_seconds": steps, "peak_worker_anon_bytes": sampler.worker_own,
        "stage_core_seconds": clock.report(core),
        "client_peak_by_stage": {k: [round(v / 2**20, 1) for v in p] for k, p in sampler.client_by_stage.items()},
        "vote_table_bytes": sum(f.stat().st_size for f in run_dir.glob("**/votes/*")),
    }  # fmt: skip
    missed = sorted({c: s for c, s in planted.items() if group_of.get(c, -1) != group_of.get(s, -2)}.items())
    if missed:
        print("missed (copy, source):", missed[:10], file=sys.stderr)
    if n <= 1_000_000 and args.sample:
        rng = np.random.default_rng(args.seed + 1)
        total = sum(pq.read_metadata(p).num_rows for p in parts)
        rows = sorted({int(r) for r in rng.integers(1, total + 1, args.sample)} | set(range(total - 20, total + 1)))
        db = args.work / f"one-{n}.db"
        for p in (db, Path(f"{db}-wal"), Path(f"{db}-shm")):
            p.unlink(missing_ok=True)
        one = one_machine_pairs(parts, rows, db)
        pairs = pq.read_table(run_dir / "pairs").to_pylist()
        ours = {
            (p["file_pk"], p["peer_pk"]): (p["verdict"], round(p["score"], 9))
            for p in pairs
            if p["file_pk"] in set(rows)
        }
        report["pairs_equal_to_one_machine"] = ours == one
        report["pairs_compared_rows"] = len(rows)
        report["pairs_compared"] = len(one)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
