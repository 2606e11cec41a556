"""The candidate join at scale, on Dask and on one machine.

    python benchmarks/scale_join.py --n 1000000 --cluster local:2

Synthetic pictures: random 8 x 8 DCT coefficients per picture, whose pHash under each of the eight
flips and turns comes from the coefficients as in ``lookalike.fingerprints.dct`` (sign changes and
a transpose); a random 256-bit PDQ per picture and turn. One picture in a hundred gets a planted
near copy: the original under a random flip or turn (7 in 8 are turned) with noise on its
coefficients (a few pHash bits) and up to 40 of its turned PDQ bits flipped.

Both engines run ``lookalike.scale.join`` (rule: ``lookalike.match.retrieval``), with the probes
of each table cut into parts by key: on the cluster, one task per (table, part), the tables
scattered to every worker once and a few parts on the workers at a time; on one machine, the
same kernel in threads over the same cores. PDQ is applied to the pHash pairs the tasks return
(``admit``), in both. Prints planted pairs found, whether the two pair sets are equal, the peak
memory of a worker, the wall-time ratio, and random candidates per image (pairs that are not
planted, counted at both ends) under the rule and under pHash alone; the last line is one JSON
object.

Planted copies are drawn within the rule (a copy the noise took beyond ``PHASH_RADIUS`` is drawn
again with less), so "every planted pair found" measures the join, not the rule.

The join costs about 2e-3 n**2 code comparisons at 8 pHash bits (8 turns, 22/21/21-bit keys).
Above ``--full-max`` pictures the two engines are not run, and the random-candidate rate is
measured by sampling instead: 256 random pictures under every turn against all n by brute force,
the PDQs of the pairs that pass on pHash drawn from a generator keyed by (picture, turn). The JSON
then has null for what was not run.
"""

from __future__ import annotations

import argparse
import json
import resource
import time

import numpy as np
from scale_cost import NS_PER_COMPARISON, NS_PER_VISIT, join_cpu_s, join_work  # a script beside this one

from lookalike.scale.join import RADII, WIDTHS, admit, build_tables, join_chunk, join_local, probe_parts

_SIGN = np.where(np.arange(8) % 2 == 0, 1.0, -1.0).astype(np.float32)


def _turn(c: np.ndarray, k: int) -> np.ndarray:
    """Coefficients (n, 8, 8) of the pictures under Dihedral(k) (see fingerprints.dct._variant)."""
    rows, cols = _SIGN[None, :, None], _SIGN[None, None, :]
    t = c.transpose(0, 2, 1)
    return [c, c * cols, c * rows, c * rows * cols, t, t * rows, t * cols, t * rows * cols][k]


_INVERSE = [0, 1, 2, 3, 4, 6, 5, 7]  # ROT90 and ROT270 undo each other; the rest undo themselves


def _hashes(c: np.ndarray, turns: int = 8) -> np.ndarray:
    """pHash (n, turns) uint64 of coefficients (n, 8, 8) under the first ``turns`` turns."""
    out = np.empty((len(c), turns), dtype=np.uint64)
    for k in range(turns):
        v = _turn(c, k).reshape(len(c), 64)
        bits = v > np.median(v, axis=1, keepdims=True)
        out[:, k] = np.packbits(bits, axis=1).view(">u8").ravel()
    return out


def _near_copies(orig_c: np.ndarray, turns: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Coefficients of near copies of the originals under their turns, with noise (sd 0.15, a few
    pHash bits): a copy the noise took beyond ``PHASH_RADIUS`` of its original gets half the noise,
    and so on, so every planted pair is one the rule admits (what is measured is the join, not
    the rule)."""
    from lookalike.match.retrieval import PHASH_RADIUS

    clean = np.empty_like(orig_c)
    for k in range(8):
        clean[turns == k] = _turn(orig_c[turns == k], k)
    want = np.empty(len(orig_c), dtype=np.uint64)
    for k in range(8):
        want[turns == k] = _hashes(orig_c[turns == k])[:, k]
    copy_c = clean.copy()
    far = np.arange(len(orig_c))
    sd = 0.15
    while len(far):
        copy_c[far] = clean[far] + rng.normal(0, sd, size=clean[far].shape).astype(np.float32)
        d = np.bitwise_count(_hashes(copy_c[far], 1)[:, 0] ^ want[far])
        far = far[d > PHASH_RADIUS]
        sd /= 2
    return copy_c


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pHash variants (n, 8), PDQ variants (n, 8, 4), planted originals, their copies)."""
    rng = np.random.default_rng(seed)
    ph = np.empty((n, 8), dtype=np.uint64)
    chunk = 200_000
    planted = max(1, n // 100)
    picks = rng.choice(n, size=2 * planted, replace=False)
    originals, copies = picks[:planted], picks[planted:]
    turns = rng.integers(0, 8, size=planted)
    coeffs_of_originals = {}
    for start in range(0, n, chunk):
        c = rng.standard_normal((min(chunk, n - start), 8, 8), dtype=np.float32)
        ph[start : start + len(c)] = _hashes(c)
        inside = (originals >= start) & (originals < start + len(c))
        for o in originals[inside]:
            coeffs_of_originals[int(o)] = c[o - start].copy()
    orig_c = np.stack([coeffs_of_originals[int(o)] for o in originals])
    copy_c = _near_copies(orig_c, turns, rng)
    ph[copies] = _hashes(copy_c)
    pdq = rng.integers(0, 2**64, size=(n, 8, 4), dtype=np.uint64)
    for o, c, k in zip(originals, copies, turns):
        for mine, theirs in ((0, int(k)), (_INVERSE[int(k)], 0)):
            noise = np.zeros(256, dtype=bool)
            noise[rng.choice(256, size=rng.integers(0, 41), replace=False)] = True
            pdq[c, mine] = pdq[o, theirs] ^ np.packbits(noise).view(">u8").astype(np.uint64)
    return ph, pdq, originals.astype(np.int64), copies.astype(np.int64)


def _sample_ids(n: int, seed: int, samples: int = 256) -> np.ndarray:
    return np.random.default_rng(seed + 2).choice(n, size=samples, replace=False)


def stored_and_samples(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """What ``sampled_random_rate`` reads of ``synthetic(n, seed)``, made without the rest (an
    eighth of the hashing, no PDQs): every picture's pHash as it is (n,), and the sampled
    pictures' pHash under every turn (samples, 8). The same random draws in the same order."""
    rng = np.random.default_rng(seed)
    stored = np.empty(n, dtype=np.uint64)
    planted = max(1, n // 100)
    picks = rng.choice(n, size=2 * planted, replace=False)
    originals, copies = picks[:planted], picks[planted:]
    turns = rng.integers(0, 8, size=planted)
    wanted = set(originals.tolist()) | set(_sample_ids(n, seed).tolist())
    kept: dict[int, np.ndarray] = {}
    chunk = 200_000
    for start in range(0, n, chunk):
        c = rng.standard_normal((min(chunk, n - start), 8, 8), dtype=np.float32)
        stored[start : start + len(c)] = _hashes(c, 1)[:, 0]
        for i in (k for k in range(start, start + len(c)) if k in wanted):
            kept[i] = c[i - start].copy()
    copy_c = _near_copies(np.stack([kept[int(o)] for o in originals]), turns, rng)
    stored[copies] = _hashes(copy_c, 1)[:, 0]
    at_copy = {int(c): i for i, c in enumerate(copies)}
    sampled = _sample_ids(n, seed)
    coeffs = np.stack([copy_c[at_copy[int(s)]] if int(s) in at_copy else kept[int(s)] for s in sampled])
    return stored, _hashes(coeffs)


def _pdq_of(seed: int, picture: int, turn: int) -> np.ndarray:
    """The random PDQ (4 uint64) of one picture under one turn, the same every time it is asked for."""
    return np.random.Generator(np.random.Philox(key=seed + 1, counter=[picture * 8 + turn, 0, 0, 0])).integers(
        0, 2**64, size=4, dtype=np.uint64
    )


def sampled_random_rate(stored: np.ndarray, variants: np.ndarray, seed: int) -> tuple[float, float]:
    """(candidates per image under the rule, under pHash alone) for unrelated pictures, by brute force
    from the sampled pictures (``_sample_ids``; ``variants`` their pHash under each turn) against
    every other (``stored``: each picture's pHash); both ends counted."""
    from lookalike.match.retrieval import PDQ_RADIUS, PHASH_RADIUS

    samples = len(variants)
    rule = phash_only = 0
    for a, turned in zip(_sample_ids(len(stored), seed, samples), variants):
        passed: set[int] = set()
        hits: set[int] = set()
        for k in range(8):
            near = np.flatnonzero(np.bitwise_count(stored ^ turned[k]) <= PHASH_RADIUS)
            for b in near[near != a].tolist():
                hits.add(b)
                if b not in passed:
                    d = int(np.bitwise_count(_pdq_of(seed, int(a), k) ^ _pdq_of(seed, b, 0)).sum())
                    if d <= PDQ_RADIUS:
                        passed.add(b)
        rule += len(passed)
        phash_only += len(hits)
    return 2 * rule / samples, 2 * phash_only / samples


def on_cluster(client, ph, pdq, parts: int, in_flight: int):  # type: ignore[no-untyped-def]
    """The join as Dask tasks, one a (table, part of the probes by key): (i, j, rejected). The
    tables go to every worker once; at most ``in_flight`` parts are on the workers at a time, so a
    worker holds the tables and a few parts, never all the probes. PDQ is applied (``admit``) to
    the pHash pairs the tasks return, as the one-machine engine does."""
    from dask.distributed import as_completed

    probe_ph = ph.reshape(-1)
    probe_ids = np.repeat(np.arange(len(ph), dtype=np.int64), 8)
    tables = build_tables(np.ascontiguousarray(ph[:, 0]))
    shared = client.scatter(tables, broadcast=True)
    work = ((shared[t.table], rows) for t in tables for rows in probe_parts(probe_ph, t.table, parts))

    def submit(item):  # type: ignore[no-untyped-def]
        table, rows = item
        chunk = client.scatter([probe_ph[rows], probe_ids[rows], rows])
        return client.submit(join_chunk, table, *chunk, pure=False)

    running = as_completed([submit(item) for _, item in zip(range(in_flight), work)])
    rows, stored = [], []
    for future in running:
        x, y = future.result()
        future.release()
        rows.append(x)
        stored.append(y)
        item = next(work, None)
        if item is not None:
            running.add(submit(item))
    return admit(np.concatenate(rows), np.concatenate(stored), pdq.reshape(-1, 4), probe_ids,
                 np.ascontiguousarray(pdq[:, 0]))  # fmt: skip


def _cpu_s() -> float:
    return time.process_time()


def _peak_rss() -> int:
    """This process's peak resident memory since it started (``VmHWM``; ``ru_maxrss`` would not do:
    it carries the starting process's peak across ``exec``, so a worker spawned by a client that
    holds ten million pictures' codes would report the client's)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _warm() -> None:
    ph = np.arange(64, dtype=np.uint64)
    pdq = np.zeros((64, 4), dtype=np.uint64)
    join_local(ph, pdq, ph, pdq, np.arange(64, dtype=np.int64))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--cluster", default="local:2")
    ap.add_argument("--parts", type=int, default=32, help="parts of the probes by key, per table, on the cluster")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--full-max", type=int, default=20_000_000, help="run both engines up to this many pictures")
    args = ap.parse_args()
    from dask.distributed import Client, LocalCluster

    workers = int(args.cluster.split(":")[1]) if args.cluster.startswith("local:") else 0
    t0 = time.perf_counter()
    if args.n > args.full_max:  # only what the sampled rate reads
        stored, variants = stored_and_samples(args.n, args.seed)
        planted = max(1, args.n // 100)
    else:
        ph, pdq, originals, copies = synthetic(args.n, args.seed)
        stored, variants, planted = np.ascontiguousarray(ph[:, 0]), ph[_sample_ids(args.n, args.seed)], len(originals)
    print(f"{args.n:,} synthetic pictures, {planted:,} planted copies ({time.perf_counter() - t0:.1f} s)")
    t0 = time.perf_counter()
    sampled, sampled_phash = sampled_random_rate(stored, variants, args.seed)
    print(
        f"random candidates per image, sampled (256 pictures x 8 turns against all {args.n:,}): {sampled:.3f}"
        f" under the rule, {sampled_phash:.1f} under pHash alone ({time.perf_counter() - t0:.1f} s)"
    )
    if args.n > args.full_max:
        print(f"the two engines are not run above --full-max {args.full_max:,} pictures")
        print(json.dumps({
            "n": args.n, "planted": planted, "planted_found": None, "pairs_equal_to_local": None,
            "peak_worker_bytes": None, "wall_ratio_to_local": None,
            "random_candidates_per_image": float(f"{sampled:.3g}"),
        }))  # fmt: skip
        return
    _warm()
    t0, c0 = time.perf_counter(), time.process_time()
    li, lj, rejected = join_local(
        np.ascontiguousarray(ph[:, 0]), np.ascontiguousarray(pdq[:, 0]), ph.reshape(-1), pdq.reshape(-1, 4),
        np.repeat(np.arange(args.n, dtype=np.int64), 8), jobs=max(1, workers),
    )  # fmt: skip
    local_s, local_cpu = time.perf_counter() - t0, time.process_time() - c0
    comparisons, visits = join_work(args.n, WIDTHS, RADII, by_key=True)
    print(f"one machine ({max(1, workers)} threads): {len(li):,} pairs in {local_s:.1f} s, {local_cpu:.0f} CPU s;"
          f" the cost model ({comparisons:.3g} comparisons x {NS_PER_COMPARISON} ns + {visits:.3g} bucket visits"
          f" x {NS_PER_VISIT} ns, docs/scale-cost.md) predicts {join_cpu_s(args.n):.0f} CPU s")  # fmt: skip
    for m in (10**7, 10**8, 10**9):
        print(f"  the same join of {m:,} pictures: {join_cpu_s(m) / 3600:,.1f} core-hours (modelled)")

    if workers:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address="127.0.0.1:0",
                               host="127.0.0.1")  # fmt: skip
        client = Client(cluster)
    else:
        cluster, client = None, Client(args.cluster)
    try:
        client.run(_warm)
        cpu0 = sum(client.run(_cpu_s).values())
        t0 = time.perf_counter()
        di, dj, _ = on_cluster(client, ph, pdq, args.parts, 2 * max(1, workers))
        dask_s = time.perf_counter() - t0
        dask_cpu = sum(client.run(_cpu_s).values()) - cpu0
        peak = max(client.run(_peak_rss).values())
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    print(f"cluster ({args.cluster}): {len(di):,} pairs in {dask_s:.1f} s, {dask_cpu:.0f} CPU s on the workers;"
          f" peak worker memory {peak / 2**20:,.0f} MiB")  # fmt: skip

    equal = bool(np.array_equal(li, di) and np.array_equal(lj, dj))
    key = set(zip(np.minimum(originals, copies).tolist(), np.maximum(originals, copies).tolist()))
    found = set(zip(di.tolist(), dj.tolist()))
    planted_found = len(key & found)
    random_pairs = len(found - key)
    per_image = 2 * random_pairs / args.n
    phash_only = (2 * random_pairs + rejected) / args.n
    print(f"planted pairs found: {planted_found:,} of {len(key):,}; pair sets equal: {equal}")
    print(f"random candidates per image: {per_image:.3g}, {random_pairs:,} pairs not planted"
          f" (pHash alone, every turn: {phash_only:.2f})")  # fmt: skip
    print(f"wall time on the cluster / one machine: {dask_s / local_s:.2f}")
    print(json.dumps({
        "n": args.n, "planted": len(key), "planted_found": planted_found, "pairs_equal_to_local": equal,
        "peak_worker_bytes": int(peak), "wall_ratio_to_local": round(dask_s / local_s, 3),
        "random_candidates_per_image": float(f"{per_image:.3g}"),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
