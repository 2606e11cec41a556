"""One picture's duplicates, from what ``find`` stored: what ``lookalike plot`` draws."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lookalike.config import DecodeLimits
from lookalike.decode import read_source
from lookalike.errors import ConfigError, NotFound
from lookalike.fingerprints import analyse
from lookalike.index import Decision, Index
from lookalike.index.store.records import ReviewPair
from lookalike.match import Verdict
from lookalike.scan.cache import FindCache
from lookalike.scan.options import FIND_SCOPE
from lookalike.scan.results import Evidence, EvidenceKind

__all__ = ["Duplicate", "duplicates_of", "mark_pair", "remember_decision", "unmark_pair"]


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A file found to match the picture asked about."""

    path: str
    score: float
    verdict: Verdict
    evidence: str


def duplicates_of(
    image: str | os.PathLike[str],
    *,
    db: str | os.PathLike[str],
    scope: str = FIND_SCOPE,
    include_similar: bool = False,
    limits: DecodeLimits | None = None,
) -> list[Duplicate]:
    """Files matching ``image``, best first: the pairs ``find`` recorded for it when it was part
    of a run, else a check of the picture against the scope. Only files that still exist.

    Raises ``NotFound`` for a missing database, ``InputError`` for an unreadable picture."""
    path = os.path.abspath(image)
    with Index(db, limits=limits, create=False) as index, FindCache(db) as cache:
        pk = cache.path_rows([path]).get(path)
        found = _recorded(cache, pk, path) if pk is not None else _checked(index, cache, path, scope)
    wanted = {v for v in Verdict if v.is_duplicate or (include_similar and v is Verdict.SIMILAR)}
    kept = [d for d in found.values() if d.verdict in wanted and os.path.isfile(d.path)]
    return sorted(kept, key=lambda d: (-d.score, d.path))


def _recorded(cache: FindCache, pk: int, path: str) -> dict[str, Duplicate]:
    """The files ``find`` paired with row ``pk`` (``path``'s), and the other paths of its bytes."""
    found: dict[str, Duplicate] = {}
    pairs = cache.pairs_of(pk)
    others = cache.paths_of_rows([p.b_pk if p.a_pk == pk else p.a_pk for p in pairs] + [pk])
    for p in pairs:
        for other in others.get(p.b_pk if p.a_pk == pk else p.a_pk, []):
            found[other] = Duplicate(other, p.score, p.verdict, p.evidence)
    for other in others.get(pk, []):
        if other != path:
            found[other] = Duplicate(other, 1.0, Verdict.IDENTICAL, Evidence(EvidenceKind.SAME_FILE).text)
    return found


def _checked(index: Index, cache: FindCache, path: str, scope: str) -> dict[str, Duplicate]:
    """The files a check of the picture at ``path`` against ``scope`` matches (a file ``find`` never read)."""
    found: dict[str, Duplicate] = {}
    src = read_source(Path(path), max_bytes=index.limits.max_bytes)
    check = index.check_analysis(analyse(src.data, name=path, limits=index.limits), scope=scope, top=50)
    for m in check.matches:
        if m.verdict is Verdict.DIFFERENT:
            continue
        for other in cache.paths_of_rows([m.file.pk]).get(m.file.pk) or [m.file.source]:
            if other != path:
                found[other] = Duplicate(other, m.score, m.verdict, m.explanation)
    return found


def mark_pair(
    a: str | os.PathLike[str],
    b: str | os.PathLike[str],
    decision: Decision,
    *,
    db: str | os.PathLike[str],
    scope: str = FIND_SCOPE,
) -> None:
    """Record a person's decision on two files a ``find`` run read: later runs honour it
    (``not_duplicate`` unlinks them, ``duplicate`` links them).

    Raises ``NotFound`` when the database or either file's record is missing."""
    pa, pb = os.path.abspath(a), os.path.abspath(b)
    with Index(db, create=False) as index, FindCache(db) as cache:
        rows = cache.path_rows([pa, pb])
        for p in (pa, pb):
            if p not in rows:
                raise NotFound(f"{p}: not read by `lookalike find` with the database {db}")
        facts = cache.rows(rows.values())
        fa, fb = facts[rows[pa]], facts[rows[pb]]
        if fa.image_pk == fb.image_pk or fa.sha256 == fb.sha256:
            raise ConfigError(f"{pa} and {pb} hold the same bytes: they cannot be told apart")
        index.decide_images(scope, fa.image_pk, fb.image_pk, decision)
        # kept by the bytes too, so that it outlives the index rows (--rescan, renames)
        cache.put_mark(scope, fa.sha256, fb.sha256, None if decision is Decision.PENDING else decision.value)


def unmark_pair(
    a: str | os.PathLike[str], b: str | os.PathLike[str], *, db: str | os.PathLike[str], scope: str = FIND_SCOPE
) -> bool:
    """Remove a person's mark on two files a ``find`` run read (the only way a mark goes): later
    runs judge the pair by its pictures again. Returns whether there was a mark.

    Raises ``NotFound`` when the database or either file's record is missing."""
    pa, pb = os.path.abspath(a), os.path.abspath(b)
    with FindCache(db) as cache:
        rows = cache.path_rows([pa, pb])
        facts = cache.rows(rows.values())
        shas = {facts[rows[p]].sha256 for p in (pa, pb) if p in rows and rows[p] in facts}
        had = len(shas) == 2 and tuple(sorted(shas)) in cache.marks(scope)
    mark_pair(a, b, Decision.PENDING, db=db, scope=scope)
    return had


def remember_decision(db: str | os.PathLike[str], pair: ReviewPair) -> bool:
    """Keep a decision made on the review list (``review decide``) as a mark by the two files'
    bytes too, when ``find`` read them into ``db``: so that it outlives ``--rescan`` and renames
    as ``review mark`` does. Returns whether it was kept so."""
    if not FindCache.present(db):
        return False
    with FindCache(db) as cache:
        shas = cache.image_shas(pair.scope, [pair.a_pk, pair.b_pk])
        if len(shas) != 2 or shas[pair.a_pk] == shas[pair.b_pk]:
            return False
        mark = None if pair.decision is Decision.PENDING else pair.decision.value
        cache.put_mark(pair.scope, shas[pair.a_pk], shas[pair.b_pk], mark)
    return True
