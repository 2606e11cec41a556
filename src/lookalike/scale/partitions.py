"""How a run's partitions are made and its files kept.

Files are named by the digest of their inputs (``digest``), so a finished file is reused exactly
when its inputs are unchanged, and the files of inputs that changed are removed (``drop_others``).

The fingerprint stage's partitions are keyed by the files they hold, not by their place in the
sorted listing (``plan_fingerprints``): a partition an earlier run finished is kept for as long as
every one of its files is still listed unchanged, and only the files no kept partition holds are
cut into new partitions (in sorted order, ``size`` a partition). A source that grew by a tenth
therefore fingerprints that tenth and nothing else, where partitions cut from the whole sorted list
would all shift past the first new name. The plan of the last run, each file's partition, is
``RUN_DIR/partitions.parquet`` (``PLAN``); it is a plain file written by a rename, like every file
of the run, so no file of the run folder needs locking across machines.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.scale.memory import give_back

__all__ = ["PLAN", "FingerprintPart", "cut", "digest", "drop_others", "plan_fingerprints"]

#: ``RUN_DIR/partitions.parquet``: which fingerprint partition (its digest) holds each listed file
PLAN = pa.schema([("url", pa.string()), ("part", pa.string())])


def digest(*parts: object) -> str:
    """The first 12 hex digits of the SHA-256 of ``parts`` in a canonical JSON form (sets sorted,
    dataclasses as dicts), the same in every process: ``repr`` of a frozenset is not."""

    def canonical(o: object) -> object:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        if isinstance(o, set | frozenset):
            return sorted(o, key=repr)
        if isinstance(o, bytes):
            return o.hex()
        raise TypeError(f"cannot digest {type(o).__name__}")

    text = json.dumps(parts, default=canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def drop_others(folder: str, keep: set[str]) -> None:
    """Remove the files and folders of ``folder`` that this run does not use (its inputs changed)."""
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if path not in keep:
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)


@dataclass(frozen=True, slots=True)
class FingerprintPart:
    """One fingerprint partition: the digest that names it, its rows of the manifest (sorted), its
    file (``RUN_DIR/fingerprints/part-DIGEST.parquet``) and whether that is there (finished)."""

    digest: str
    rows: pa.Table
    path: str
    done: bool


def plan_fingerprints(
    manifest: pa.Table,
    run_dir: str,
    *,
    size: int,
    salt: object,
    write: Callable[[pa.Table, str], None],
    spread: int = 1,
) -> list[FingerprintPart]:
    """The fingerprint partitions of ``manifest`` (``schema.MANIFEST``, sorted by url) in order of
    their first file, the plan of the run before in ``run_dir`` kept where it still holds (see the
    module docstring); the new plan is written to ``RUN_DIR/partitions.parquet`` through ``write``
    (an atomic writer)."""
    plan_path = os.path.join(run_dir, "partitions.parquet")
    previous = pq.read_table(plan_path, schema=PLAN) if os.path.exists(plan_path) else None
    folder = os.path.join(run_dir, "fingerprints")
    finished = lambda d: os.path.exists(_file(folder, d))  # noqa: E731
    planned = cut(manifest, previous, size=size, salt=salt, finished=finished, spread=spread)
    urls = pa.chunked_array([c for _, rows in planned for c in rows.column("url").chunks], pa.string())
    names = pa.DictionaryArray.from_arrays(
        pa.array(np.repeat(np.arange(len(planned), dtype=np.int32), [rows.num_rows for _, rows in planned])),
        pa.array([d for d, _ in planned], pa.string()),
    )  # each file's partition, made in Arrow (no list of every file)
    write(pa.table({"url": urls, "part": names.cast(pa.string())}, schema=PLAN), plan_path)
    give_back()
    return [FingerprintPart(d, rows, _file(folder, d), os.path.exists(_file(folder, d))) for d, rows in planned]


def _file(folder: str, part: str) -> str:
    return os.path.join(folder, f"part-{part}.parquet")


def cut(
    manifest: pa.Table,
    previous: pa.Table | None,
    *,
    size: int,
    salt: object,
    finished: Callable[[str], bool],
    spread: int = 1,
) -> list[tuple[str, pa.Table]]:
    """The partitions of ``manifest`` as (digest, rows), in order of their first file.

    A partition of the ``previous`` plan (``PLAN``, or None) is kept when ``finished(its digest)``
    and the manifest rows of its files, every one still listed, digest with ``salt`` to the same
    name; the other files are cut into partitions of ``size`` in sorted order, each named by the
    digest of ``salt`` and its rows, smaller when they are too few to give each of ``spread``
    workers one (a grown source's new tenth would be one task on one worker). A run killed midway
    is therefore planned again the same way: the partitions it finished are kept and the rest are
    cut where they were cut before (but for the last few, when they are fewer than the workers)."""
    kept: list[tuple[str, pa.Table]] = []
    taken = pa.array([], pa.string())
    if previous is not None and previous.num_rows:
        # in Arrow and NumPy: a Python set and lists of every url cost ~1 KB a file on the client
        found = pc.index_in(previous.column("url"), value_set=manifest.column("url"))
        at = pc.fill_null(found, -1).to_numpy()  # -1: no longer listed
        names = pc.dictionary_encode(previous.column("part")).combine_chunks()
        part_of = names.indices.to_numpy()
        by_part = np.argsort(part_of, kind="stable")
        bounds = np.searchsorted(part_of[by_part], np.arange(len(names.dictionary) + 1))
        for i, part in enumerate(names.dictionary.to_pylist()):
            positions = at[by_part[bounds[i] : bounds[i + 1]]]
            if not finished(part) or (positions < 0).any():
                continue
            rows = manifest.take(pa.array(np.sort(positions)))
            if digest(salt, rows.to_pylist()) == part:
                kept.append((part, rows))
        taken = pa.concat_arrays([rows.column("url").combine_chunks() for _, rows in kept] or [taken])
    rest = manifest.filter(pc.invert(pc.is_in(manifest.column("url"), value_set=taken)))
    step = max(1, min(size, -(-rest.num_rows // max(1, spread))))
    fresh = [rest.slice(start, step) for start in range(0, rest.num_rows, step)]
    parts = kept + [(digest(salt, chunk.to_pylist()), chunk) for chunk in fresh]
    return sorted(parts, key=lambda p: str(p[1].column("url")[0].as_py()))
