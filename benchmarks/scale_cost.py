"""The cost model of docs/scale-cost.md: core-hours, data moved and memory at 10 M, 100 M and 1 B.

    python benchmarks/scale_cost.py --ns-per-comparison 1.12 --visit-ns 8.9

Every input is a flag, with the value measured on 2026-12-02 as its default (see the document for
the command each came from); the output is the document's table. Nothing here is measured.
"""

from __future__ import annotations

import argparse
from math import comb, exp, log

from lookalike.scale.join import RADII, WIDTHS

#: CPU ns a code comparison and a bucket visit of the r = 8 join, fitted to the one-machine engine's
#: CPU at 1 M and 10 M (``benchmarks/scale_join.py``, 2026-12-02)
NS_PER_COMPARISON, NS_PER_VISIT = 1.12, 8.9
#: CPU seconds of one vote shard (``MEASURED_SHARD_ROWS`` rows, 64 codes each) answering a block of
#: as many rows (500 descriptors each), and of building the shard: measured 2026-12-07 (thread CPU
#: at load 35, the product's ``DescriptorIndex``), see docs/scale-cost.md. The product's shards are
#: 1,024 rows since (``matching.VOTE_SHARD_ROWS``); the model keeps the block it was measured on,
#: every row's descriptors against every stored code either way
MEASURED_SHARD_ROWS = 4096
VOTE_PAIR_S, SHARD_BUILD_S = 9.97, 1.09
#: CPU ms of one row's five nearest pHashes (``HammingIndex.knn``) at 100 k and 1 M stored rows
KNN_MS = {1e5: 1.33, 1e6: 8.83}
#: CPU ms a row of the cascade's checks (2,000-row product run: 2.1 s in its match tasks)
VERIFY_MS = 1.05


def join_work(n: float, widths: tuple[int, ...], radii: tuple[int, ...], *, by_key: bool) -> tuple[float, float]:
    """(code comparisons, bucket visits) of the candidate join of n pictures under 8 turns each,
    by multi-index hashing with these substring widths and radii, codes uniformly spread. With
    ``by_key`` the probes of a table come in parts by key, and a run of probes with one key
    visits each bucket once: visits are the distinct probe keys (expected) times the masks."""
    masks = [sum(comb(w, k) for k in range(r + 1)) for w, r in zip(widths, radii)]
    comparisons = 8 * n * sum(m * n / 2**w for m, w in zip(masks, widths))
    if not by_key:
        return comparisons, 8 * n * sum(masks)
    return comparisons, sum(m * 2**w * (1 - exp(-8 * n / 2**w)) for m, w in zip(masks, widths))


def join_cpu_s(n: float, ns_per_comparison: float = NS_PER_COMPARISON, ns_per_visit: float = NS_PER_VISIT) -> float:
    """Modelled CPU seconds of today's join (``lookalike.scale.join``'s keys, probes in parts by key)
    of n pictures with uniformly spread codes."""
    comparisons, visits = join_work(n, WIDTHS, RADII, by_key=True)
    return (comparisons * ns_per_comparison + visits * ns_per_visit) / 1e9


def vote_cpu_s(n: float, pair_s: float = VOTE_PAIR_S, build_s: float = SHARD_BUILD_S) -> float:
    """CPU seconds of the crop tier's votes over n rows, today's rule: every partition asks every
    shard (each rebuilt, one kept a worker): (n / MEASURED_SHARD_ROWS)^2 (block, shard) pairs."""
    k = max(1.0, n / MEASURED_SHARD_ROWS)
    return k * k * (pair_s + build_s)


def knn_cpu_s(n: float) -> float:
    """CPU seconds of every row's nearest pHashes: n rows at the per-row time measured at 100 k and
    1 M, extended as a power of n."""
    (n0, t0), (n1, t1) = sorted(KNN_MS.items())
    return n * t0 * (n / n0) ** (log(t1 / t0) / log(n1 / n0)) / 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--ns-per-comparison", type=float, default=NS_PER_COMPARISON)
    ap.add_argument("--visit-ns", type=float, default=NS_PER_VISIT, help="CPU ns a bucket visit (and per-probe work)")
    ap.add_argument("--old-ns-per-comparison", type=float, default=3.45, help="the r = 16 join, visits included")
    ap.add_argument("--images-per-core-s", type=float, default=30.0)
    ap.add_argument("--source-bytes", type=float, default=1.5e6, help="bytes of one camera photo")
    ap.add_argument("--parquet-bytes", type=float, default=20_600, help="fingerprint Parquet bytes an image")
    ap.add_argument("--index-bytes", type=float, default=32, help="pHash index bytes a stored code")
    ap.add_argument("--crop-bytes", type=float, default=3_800, help="crop tier bytes an image")
    ap.add_argument("--vote-pair-s", type=float, default=VOTE_PAIR_S, help="CPU s a vote shard answering a partition")
    ap.add_argument("--verify-ms", type=float, default=VERIFY_MS, help="CPU ms an image's checks")
    ap.add_argument("--worker-base-bytes", type=float, default=100e6, help="a serve worker's own memory")
    a = ap.parse_args()
    rows = []
    for n in (1e6, 1e7, 1e8, 1e9):
        fp_h = n / a.images_per_core_s / 3600
        comparisons, _ = join_work(n, (16,) * 4, (4, 3, 3, 3), by_key=False)
        join_h = {"r=16": comparisons * a.old_ns_per_comparison / 3.6e12}
        join_h["r=8"] = join_cpu_s(n, a.ns_per_comparison, a.visit_ns) / 3600
        votes_h = vote_cpu_s(n, a.vote_pair_s) / 3600
        match_h = join_h["r=8"] + votes_h + knn_cpu_s(n) / 3600 + n * a.verify_ms / 3.6e6
        moved = n * (a.source_bytes + a.parquet_bytes)
        join_worker = n * 3 * 12  # the stored side every join worker holds: three tables of codes and ids
        host = n * a.index_bytes
        worker = a.worker_base_bytes + n * (4 + a.crop_bytes)  # scope per row, crop tier (not shared)
        rows.append((n, fp_h, join_h, votes_h, match_h, moved, join_worker, host, worker))
    print("| images | fingerprint core-h | join core-h (r=8, now) | join core-h (r=16, before) "
          "| crop-tier votes core-h | matching core-h (all) "
          "| data read + written | join memory a worker | pHash index a host (shared) "
          "| a serve worker's own memory |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n, fp_h, join_h, votes_h, match_h, moved, join_worker, host, worker in rows:
        cells = [f"{n:.0e}", f"{fp_h:,.0f}", f"{join_h['r=8']:,.1f}", f"{join_h['r=16']:,.0f}",
                 f"{votes_h:,.0f}", f"{match_h:,.0f}",
                 f"{moved / 1e12:,.1f} TB", f"{join_worker / 1e9:,.1f} GB", f"{host / 1e9:,.2f} GB",
                 f"{worker / 1e9:,.1f} GB"]  # fmt: skip
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
