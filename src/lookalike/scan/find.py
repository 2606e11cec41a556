"""Folders to duplicate groups: ``find_groups``.

1. Walk the folders (``walk.find_files``): each file once, by device and inode, under the path a
   person would use, however many paths (symlinks, hard links, a folder named twice) reach it; only
   regular files (a FIFO is never opened); a folder that cannot be listed is an error row. A path
   whose device, inode, size, mtime and ctime match the cache is not read (``FindCache``).
2. A changed or new path is read; when its SHA-256 is already known, that is all. Files of this run
   with the same bytes are one node: only the first of them is decoded (``same_bytes``), the others
   join its row. Otherwise a file is decoded and fingerprinted with its local features in worker
   processes (all cores) and added to the index scope (no review-on-add: step 2's checks find the
   same pairs). Then every new row is checked, again in worker processes that each open the index,
   against every other image of the scope by the full cascade (``check_stored``: exact bytes,
   hashes under flips and turns, local-feature verification), from what the index keeps of it and
   its colour grid (kept meanwhile in a temporary file); nothing is decoded twice but for the
   full-size decode that settles ``same_pixels``. A pair of two new rows is checked from both ends
   and keeps the higher score; ``similar`` pairs go to the review list. No N x N matrix is ever
   made; the pairs go to the cache, with the row, and a path is cached once its row is checked, so
   a run cut short checks what it missed next time (``ingest.py``).
3. Pairs between files of this run, minus those a person marked ``not_duplicate`` (plus those
   marked ``duplicate``; marks are kept by the files' SHA-256, so they outlive ``--rescan``), link
   files whose verdict is a duplicate one (identical, same_pixels, near_duplicate; ``similar``
   pairs are listed but link nothing). Hash links (judged by the hashes, pHashes within
   ``HASH_LINK_BITS`` under the best flip or turn) build groups as connected components; a pair
   matched by local features alone only attaches a file that has no hash link to a group, and never
   merges two groups: two different pictures that carry the same caption bar, watermark or page
   frame share local features (``linking.py``). ``strict`` splits each group into cliques.
4. Each group's keeper is its source, the member the others derive from (``source.py``), or the
   first by an explicit policy (``keeper.py``); a person's decisions (``decisions.py``, a log in
   the cache: the newest keep of a group wins) and ``keep_in`` folders come first. Each member's
   evidence is redone against the keeper in ``check``'s words, and a member joined only by local
   features or only through another member is not ``eligible`` for actions unless asked
   (``grouping.py``, ``evidence.py``).

Memory: a few hundred bytes a file (its path, size and row) plus the index's in-memory hash
index (about 40 bytes a file) in this process and in each worker, and the pairs found; the colour
grids of new files wait on disk (98,304 bytes each, in the temporary folder); nothing quadratic.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version

from lookalike.config import Thresholds, is_database_url
from lookalike.errors import ConfigError, FetchError, FileError, NotRegularFile
from lookalike.fingerprints import FINGERPRINT_VERSION
from lookalike.index import Index
from lookalike.scan.actions import held_by_names
from lookalike.scan.cache import FindCache
from lookalike.scan.decisions import record_decisions
from lookalike.scan.grouping import RunEvidence, group_run
from lookalike.scan.ingest import FindRun, Seen, forget_scope, gone_paths, known_bytes, sort_paths, storable
from lookalike.scan.linking import run_links
from lookalike.scan.options import FindOptions, Progress
from lookalike.scan.results import FindResult, FindStats, Group, Pair
from lookalike.scan.similar import embedder_for, semantic_pairs
from lookalike.walk import FoundFile, find_files

__all__ = ["find_groups", "matcher_stamp"]


def matcher_stamp(thresholds: Thresholds) -> str:
    """What the cached pairs depend on: the installed lookalike, the fingerprint version, the thresholds."""
    try:
        installed = version("lookalike")
    except PackageNotFoundError:  # running from a source tree
        installed = "source"
    return (
        f"lookalike {installed}; fingerprint v{FINGERPRINT_VERSION}; {thresholds.near_duplicate}/{thresholds.similar}"
    )


def find_groups(
    paths: Sequence[str | os.PathLike[str]],
    *,
    db: str | os.PathLike[str],
    options: FindOptions | None = None,
    progress: Progress | None = None,
) -> FindResult:
    """Groups of copies among the image files under ``paths`` (see the module docstring).

    ``db`` holds the index scope and the cache (an SQLite file; created if missing). Files that
    cannot be read are listed in ``FindResult.errors`` and the rest go on.
    Raises ``StoreError`` when the database is unusable, ``ConfigError`` for bad options.
    """
    opts = options or FindOptions()
    if is_database_url(db):
        raise ConfigError("find keeps its cache in an SQLite file: give --db a file path, not a database URL")
    started = time.perf_counter()
    keep_in = tuple(os.path.abspath(k) for k in opts.keep_in)
    roots = tuple(os.path.abspath(p) for p in paths) + tuple(k for k in keep_in if k not in paths)
    walked = _walk(roots)
    files = [f.path for f in walked.named]
    errors: list[FileError] = []
    seen: list[Seen] = []
    embedder = embedder_for(opts.model) if opts.similar else None  # a missing extra fails before any work
    similar = None
    with Index(db, limits=opts.limits, thresholds=opts.thresholds) as index, FindCache(db) as cache:
        stamp = matcher_stamp(index.thresholds)
        if opts.rescan or cache.stamp() != stamp:
            forget_scope(index, cache, opts.scope)
            cache.set_stamp(stamp)
        cached = cache.paths(opts.scope)
        stale, hits = sort_paths(files, cached, seen, errors)
        gone = gone_paths(cached, files, roots)
        if gone:
            cache.forget_paths(opts.scope, gone)
        changed = len(stale)
        stale = known_bytes(cache, opts.scope, stale, seen)
        read = len(stale)
        run = FindRun(index, cache, str(db), opts)
        run.read_and_match(stale, progress)
        seen += run.seen
        errors += run.errors
        notices = record_decisions(cache, opts.scope, opts.decisions, roots, files) if opts.decisions else []
        also = {f.path: f.also for f in walked.aliases}
        groups, pairs = _group(index, cache, opts, seen, keep_in, also)
        if embedder is not None:
            similar = semantic_pairs(index, cache, opts.scope, _paths_of(seen), groups, embedder, index.thresholds)
    errors += walked.not_read
    errors.sort(key=lambda e: e.path)
    # held as they are, or their bytes were (one SHA-256 each)
    cached_files = max(0, hits + changed - read)
    stats = _stats(
        groups, pairs, walked, files=len(files), read=read, cached=cached_files, errors=len(errors),
        seconds=time.perf_counter() - started,
    )  # fmt: skip
    return FindResult(
        groups=tuple(groups), pairs=tuple(pairs), errors=tuple(errors), stats=stats, roots=roots,
        aliases=walked.aliases, similar=similar, notices=tuple(notices),
    )  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Walked:
    """The walk of a run's folders: the files find can keep (``named``), those of them reached by
    several paths (``aliases``), and the error rows of what it cannot read or keep."""

    named: list[FoundFile]
    aliases: tuple[FoundFile, ...]
    not_read: list[FileError]


def _walk(roots: tuple[str, ...]) -> _Walked:
    """Each file under ``roots`` once (``walk.find_files``: one path per file, never a file its own
    duplicate), with names that are not UTF-8 and what cannot be read as error rows."""
    found = find_files(dict.fromkeys(roots))
    named = [f for f in found.files if storable(f.path)]
    not_read = [FileError(p, NotRegularFile.code, why) for p, why in found.skipped]
    not_read += [FileError(p, FetchError.code, why) for p, why in found.unreadable]
    not_read += [
        FileError(f.path, FetchError.code, f"{f.path}: the file name is not valid UTF-8 and cannot be kept in the "
                  "cache: not read (rename the file to include it)")
        for f in found.files
        if not storable(f.path)
    ]  # fmt: skip
    return _Walked(named, tuple(f for f in named if f.also), not_read)


def _stats(
    groups: list[Group],
    pairs: list[Pair],
    walked: _Walked,
    *,
    files: int,
    read: int,
    cached: int,
    errors: int,
    seconds: float,
) -> FindStats:
    """A run's counts: the copies not kept count only when no
    other name of theirs holds their bytes (nothing is freed then)."""
    held = {p for p, _ in held_by_names(groups, walked.aliases)}
    freed = [m for g in groups for m in g.removable if m.path not in held]
    return FindStats(
        files=files + len(walked.not_read), read=read, cached=cached, errors=errors, groups=len(groups),
        duplicates=len(freed), reclaimable_bytes=sum(m.byte_size for m in freed), pairs=len(pairs), seconds=seconds,
    )  # fmt: skip


def _paths_of(seen: list[Seen]) -> dict[int, list[str]]:
    """Each index row of this run and its paths, sorted."""
    paths_of: dict[int, list[str]] = defaultdict(list)
    for s in seen:
        paths_of[s.file_pk].append(s.path)
    for ps in paths_of.values():
        ps.sort()
    return paths_of


def _group(
    index: Index,
    cache: FindCache,
    opts: FindOptions,
    seen: list[Seen],
    keep_in: tuple[str, ...],
    also: dict[str, tuple[str, ...]],
) -> tuple[list[Group], list[Pair]]:
    """Pairs among this run's files to groups with keepers, and the linked pairs as paths.
    ``also``: the other paths of files reached through several (a file under a keep-in folder by
    any of its paths is kept)."""
    paths_of = _paths_of(seen)
    size_of = {s.path: s.size for s in seen}
    facts = cache.rows(paths_of)
    pks = [pk for pk in paths_of if pk in facts]
    links = run_links(index, cache, pks, facts, opts.scope)
    run = RunEvidence(index, cache, {x.path: x.mtime_ns for x in seen})
    return group_run(
        run, links, pks, paths_of=paths_of, facts=facts, size_of=size_of, opts=opts, keep_in=keep_in, also=also
    )
