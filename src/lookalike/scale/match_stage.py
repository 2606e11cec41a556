"""The matching stage of ``Pipeline``: each fingerprint partition's rows' candidates found and
checked by the tasks of ``matching``, one pairs file a partition.

Each task's file is named by the digest of its inputs (the stored codes' digest, the partition's
fingerprint digest, the scope, thresholds and limits), so a resumed run reuses every finished one;
on a grown source each task reuses or extends its rows' earlier checks (``reuse``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from lookalike.config import DecodeLimits, Thresholds
from lookalike.fingerprints import FINGERPRINT_VERSION
from lookalike.scale.matching import STORED_VERSION, codes_task, match_task, rows_path, stored_task
from lookalike.scale.partitions import digest, drop_others
from lookalike.scale.reuse import earlier_checks
from lookalike.scale.rows import RunRows
from lookalike.scale.runner import Runner, call
from lookalike.scale.stages import write_atomically
from lookalike.scan.options import Progress, steps

__all__ = ["Matched", "match_stage"]

#: candidates a row's check keeps at most (``find``'s own)
_TOP = 200


@dataclass(frozen=True, slots=True)
class Matched:
    """What the matching stage gave: the pairs files in partition order, those computed now, the
    stored codes' digest, and whether the stored codes were reused."""

    pairs: list[str]
    computed: list[str]
    stored_digest: str
    stored_reused: bool


def match_stage(
    runner: Runner, parts: list[tuple[str, str]], rows: RunRows, run_dir: str, progress: Progress | None,
    *, scope: str | None, thresholds: Thresholds, limits: DecodeLimits, storage_options: Mapping[str, Any],
) -> Matched:  # fmt: skip
    """Find and check every index row's candidates, partition by partition, by the tasks of
    ``scale.matching``: (pair files in order, those computed now, the stored codes' digest,
    whether those were reused)."""
    folder = os.path.join(run_dir, "matching")
    plan: dict[str, list[Any]] = {"codes": [], "part": []}
    todo: list[tuple[str, tuple[Any, ...]]] = []
    # a row belongs to the partition of its first path in path order, whichever partition
    # that is: a grown source's partitions interleave (its new files are cut apart), and the
    # path a row is read and checked under must not depend on how the files were cut
    for i, ((path, d), (row_at, pk_of)) in enumerate(zip(parts, rows.owned(len(parts)))):
        owned = hashlib.sha256(np.stack([row_at, pk_of]).astype("<i4").tobytes()).hexdigest()
        cd = digest(FINGERPRINT_VERSION, STORED_VERSION, d, owned)
        codes_path = os.path.join(folder, f"codes-{i:05d}-{cd}.parquet")
        plan["codes"].append(codes_path)
        plan["part"].append(path)
        if not os.path.exists(codes_path):
            todo.append((f"codes-{i:05d}-{cd}", (codes_task, path, row_at, pk_of, codes_path)))
    stored_digest = digest(STORED_VERSION, plan["codes"])
    stored_dir = os.path.join(folder, f"stored-{stored_digest}")
    plan_path = os.path.join(folder, f"plan-{stored_digest}.parquet")
    stored_reused = os.path.exists(os.path.join(stored_dir, "pdq.npy"))
    pairs_dir, checks_dir = os.path.join(run_dir, "pairs"), os.path.join(run_dir, "checks")
    earlier = earlier_checks(checks_dir)
    pairs, checks, match_todo = [], [], []
    for i, (_, d) in enumerate(parts):
        vd = digest(stored_digest, d, scope, _TOP, thresholds, limits)
        pairs_path = os.path.join(pairs_dir, f"part-{i:05d}-{vd}.parquet")
        # named by the fingerprint partition, so that a grown run finds its rows' earlier checks
        checks.append(os.path.join(checks_dir, f"checks-{d}-{vd}.parquet"))
        pairs.append(pairs_path)
        if not os.path.exists(pairs_path):
            args = (
                match_task, i, plan_path, stored_dir, pairs_path, scope, _TOP, limits,
                thresholds, dict(storage_options), checks[-1], earlier.get(d),
            )  # fmt: skip
            match_todo.append((f"match-{i:05d}-{vd}", args))
    drop_others(folder, {*plan["codes"], *map(rows_path, plan["codes"]), stored_dir, plan_path})
    with steps(progress, len(todo) + (not stored_reused) + len(match_todo), "matching") as advance:
        for _ in runner.map(call, todo):
            advance()
        if not stored_reused:
            for _ in runner.map(call, [(f"stored-{stored_digest}", (stored_task, plan["codes"], stored_dir))]):
                advance()
        write_atomically(pa.table(plan), plan_path)
        for _ in runner.map(call, match_todo):
            advance()
    drop_others(pairs_dir, set(pairs))
    drop_others(checks_dir, set(checks))  # after: the earlier checks were read by the tasks
    return Matched(pairs, [task[1][4] for task in match_todo], stored_digest, stored_reused)
