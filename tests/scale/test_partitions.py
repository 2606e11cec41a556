"""Fingerprint partitions keyed by the files they hold: a source that grows keeps every finished
partition, a run killed midway is cut again the same way, and a changed file is read again."""

from __future__ import annotations

import pyarrow as pa

from lookalike.scale.partitions import PLAN, cut
from lookalike.scale.schema import MANIFEST

SALT = ("fingerprint-version", 1)


def manifest(names: list[str], version: str = "1") -> pa.Table:
    names = sorted(names)
    rows = {"url": names, "size": [10] * len(names), "version": [version] * len(names), "mtime_ns": [1] * len(names)}
    return pa.table(rows, schema=MANIFEST)


def plan_of(parts: list[tuple[str, pa.Table]]) -> pa.Table:
    urls = [u for _, rows in parts for u in rows.column("url").to_pylist()]
    return pa.table({"url": urls, "part": [d for d, rows in parts for _ in range(rows.num_rows)]}, schema=PLAN)


def urls(parts: list[tuple[str, pa.Table]]) -> list[list[str]]:
    return [rows.column("url").to_pylist() for _, rows in parts]


def test_a_grown_source_keeps_every_finished_partition_and_cuts_only_the_new_files() -> None:
    old = [f"/p/{i:04d}.jpg" for i in range(0, 200, 2)]
    first = cut(manifest(old), None, size=8, salt=SALT, finished=lambda d: False)
    new = [f"/p/{i:04d}.jpg" for i in range(1, 200, 20)]  # spread over the sorted list
    grown = cut(manifest(old + new), plan_of(first), size=8, salt=SALT, finished=lambda d: True)
    kept = {d for d, _ in first}
    assert kept <= {d for d, _ in grown}
    added = [u for d, rows in grown if d not in kept for u in rows.column("url").to_pylist()]
    assert sorted(added) == sorted(new) and len(grown) == len(first) + 2
    assert sorted(u for us in urls(grown) for u in us) == sorted(old + new)  # each file once


def test_a_run_killed_midway_is_cut_again_as_before() -> None:
    names = [f"/p/{i:04d}.jpg" for i in range(50)]
    first = cut(manifest(names), None, size=8, salt=SALT, finished=lambda d: False)
    finished = {first[1][0], first[4][0], first[6][0]}  # the short last one among them
    again = cut(manifest(names), plan_of(first), size=8, salt=SALT, finished=finished.__contains__)
    assert [d for d, _ in again] == [d for d, _ in first] and urls(again) == urls(first)


def test_a_changed_or_removed_file_is_cut_anew_with_its_partition() -> None:
    names = [f"/p/{i:04d}.jpg" for i in range(16)]
    first = cut(manifest(names), None, size=4, salt=SALT, finished=lambda d: False)
    changed = manifest(names).to_pylist()
    changed[5]["version"] = "2"  # rewritten since
    del changed[12]  # removed
    again = cut(pa.Table.from_pylist(changed, schema=MANIFEST), plan_of(first), size=4, salt=SALT,
                finished=lambda d: True)  # fmt: skip
    assert [d for d, _ in again if d in {d for d, _ in first}] == [first[0][0], first[2][0]]
    assert sorted(u for us in urls(again) for u in us) == sorted(set(names) - {names[12]})
    other = cut(manifest(names), plan_of(first), size=4, salt=("another version",), finished=lambda d: True)
    assert not {d for d, _ in other} & {d for d, _ in first}  # another fingerprint version reads all again


def test_new_files_too_few_for_every_worker_are_cut_smaller() -> None:
    old, new = [f"/d/{i:03d}.jpg" for i in range(0, 40, 2)], [f"/d/{i:03d}.jpg" for i in range(1, 12, 2)]
    first = cut(manifest(old), None, size=8, salt=SALT, finished=lambda d: True, spread=2)
    assert [rows.num_rows for _, rows in first] == [8, 8, 4]  # enough for both workers: size 8
    grown = cut(manifest(old + new), plan_of(first), size=8, salt=SALT, finished=lambda d: True, spread=2)
    added = sorted(rows.num_rows for d, rows in grown if d not in {d for d, _ in first})
    assert added == [3, 3]  # the six new files on both workers, not one partition on one
