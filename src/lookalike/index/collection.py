"""``Index``: the persistent collection that answers "have I already got this image?".

Storage is a ``SQLiteStore``; near look-ups go through an in-memory
``HammingIndex`` of every file's pHash, rebuilt from the database on open and
brought up to date from the store's change log before every look-up, so a
restart loses nothing and processes sharing one database see each other's
additions.

A check runs a cascade, cheapest first:
1. exact: the SHA-256 of the bytes (an indexed SQL look-up);
2. candidates: the eight flip/turn variants of the query's pHash, searched
   within ``RETRIEVAL_RADIUS`` bits, in the query's scope only;
3. scoring: each candidate's hashes against the query turned the same way;
   the best file of each image stands for it (renditions);
4. same pixels: a close, same-size best match is settled by the pixel digest;
5. local verification: when no candidate is a sure duplicate, the best few
   are verified by local features (ORB keypoints and a RANSAC fit), which
   survive crops, borders, captions and screenshots;
6. decisions: what a person decided on a pair is applied.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypedDict

import numpy as np

from lookalike.config import DecodeLimits, FetchLimits, Thresholds
from lookalike.decode import is_url, read_source
from lookalike.errors import LookalikeError, NotFound
from lookalike.fingerprints import Analysis, Dihedral, Fingerprint, analyse, full_pixel_digest, phash_variants_estimated
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.index.descriptors import DescriptorIndex
from lookalike.index.hamming import HammingIndex
from lookalike.index.records import (
    DEFAULT_SCOPE,
    Decision,
    ImageRecord,
    ReviewPair,
    StoredFile,
    StoreStats,
    rendition_name,
)
from lookalike.index.sqlite import CodeRow, NewFile
from lookalike.index.store import Store, is_database_url, open_store
from lookalike.match import Match, Query, Verdict, match_fingerprint, verdict_for, worth_pixel_digest
from lookalike.match.local import QUERY_FEATURES, describe_local, local_score, verify_local
from lookalike.match.retrieval import PHASH_RADIUS, retrieves

__all__ = [
    "DEFAULT_SCOPE",
    "RETRIEVAL_RADIUS",
    "AddResult",
    "CheckMatch",
    "CheckMatchDict",
    "CheckResult",
    "CheckResultDict",
    "Index",
    "turned_distance_bits",
]

#: pHash bits within which stored pictures become candidates, when PDQ agrees too (the rule and
#: its reasons are in ``lookalike.match.retrieval``, shared with the scale-out join).
RETRIEVAL_RADIUS = PHASH_RADIUS

#: the strongest of the query's keypoints that vote for stored files
_VOTING_FEATURES = 500
#: candidates verified by local features: the best by hashes, and the most voted for by descriptors
#: (with at least ``_MIN_VOTES``; unrelated pictures get a few votes by chance)
_VERIFY_HASH_TOP = 2
_VERIFY_VOTED_TOP = 4
_MIN_VOTES = 3
#: nearest pHashes looked at beyond the radius
_KNN = 5
# A look-up from hashes alone (``files_near``) may use an in-memory index this many seconds old
# rather than ask the database for changes every time: a service answering hash checks by the
# thousand spends a third of its database round trips on that question. Checks of pictures and
# this process's own writes are always current.
HASH_LOOKUP_STALENESS = 0.2
# Rows of the files that hash look-ups answered lately, kept in memory (about 2 KB each) and
# dropped when the change log says their file is gone: a hash look-up then asks the database
# nothing but decisions. Bounded, least recently used first out.
_FILE_ROWS_KEPT = 10_000


@dataclass(frozen=True, slots=True)
class AddResult:
    """What ``Index.add`` did: the image id the file is stored under, and whether it was new."""

    image_id: str
    file_pk: int
    added: bool


class CheckMatchDict(TypedDict):
    """JSON form of ``CheckMatch``: one shape for ``lookalike check --json`` and ``/v1/check``."""

    id: str
    rendition: str
    score: float
    verdict: str
    evidence: str
    source: str
    #: the same as ``source``: the key ``check --json`` has always had, which scripts and the public
    #: benchmark's scorer read
    path: str


class CheckResultDict(TypedDict):
    """JSON form of ``CheckResult`` (the command line adds the input's ``path``)."""

    verdict: str
    matches: list[CheckMatchDict]


@dataclass(frozen=True, slots=True)
class CheckMatch:
    """One stored image that matches a query. ``explanation`` is the evidence line (``evidence`` in JSON)."""

    image_id: str
    file: StoredFile
    score: float
    verdict: Verdict
    explanation: str
    by_local_features: bool = False
    """True when local-feature verification, not the hashes, gave the score (a crop, an overlay)."""

    def to_dict(self, *, source: str | None = None) -> CheckMatchDict:
        """JSON-ready form. ``source`` says where the stored file can be read: its path by default
        (the command line's index); the service passes the file's URL instead."""
        where = self.file.source if source is None else source
        return CheckMatchDict(
            id=self.image_id,
            rendition=rendition_name(self.file.rendition),
            score=round(self.score, 4),
            verdict=self.verdict.value,
            evidence=self.explanation,
            source=where,
            path=where,
        )


@dataclass(frozen=True, slots=True)
class CheckResult:
    """The answer for one query: its overall verdict and the ranked matches (best first)."""

    fingerprint: Fingerprint
    matches: tuple[CheckMatch, ...]

    @property
    def verdict(self) -> str:
        """The best match's verdict, or ``unique`` when nothing is even similar."""
        if self.matches and self.matches[0].verdict is not Verdict.DIFFERENT:
            return self.matches[0].verdict.value
        return "unique"

    @property
    def is_duplicate(self) -> bool:
        """True when the best match says "you already have this picture" (``--exit-code`` answers 1)."""
        return bool(self.matches) and self.matches[0].verdict.is_duplicate

    def to_dict(self) -> CheckResultDict:
        """JSON-ready form: the overall verdict and every match, best first."""
        return CheckResultDict(verdict=self.verdict, matches=[m.to_dict() for m in self.matches])


def turned_distance_bits(phash: int, stored: Fingerprint) -> tuple[int, Dihedral]:
    """(fewest pHash bits between ``phash`` and ``stored`` under one of the eight flips and turns of
    the stored picture, which turn): ``phash_variants[k]`` is exactly the pHash of the stored picture
    turned by ``Dihedral(k)``."""
    k = min(range(len(stored.phash_variants)), key=lambda k: ((stored.phash_variants[k] ^ phash).bit_count(), k))
    return (stored.phash_variants[k] ^ phash).bit_count(), Dihedral(k)


class Index:
    """A persistent, scoped collection of image fingerprints (see the module docstring).

    ``create=False`` refuses to make a new database (``NotFound``): for commands
    that only read, where a mistyped path would otherwise answer "unique".
    ``shared_codes``: a folder through which the processes that name it (a service's workers)
    map one copy of the pHash index, not one each; changes after opening stay per process.

    Thread-safe: one lock covers the in-memory structures (the pHash and descriptor indexes, the
    scope of each file, the rows kept) while they are read or brought up to date, and nothing
    else, so decoding, hashing, local features and geometric verification of one thread never make
    another wait (a service's hash check had waited 2.6 s for a check's full-resolution decode).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        limits: DecodeLimits | None = None,
        fetch: FetchLimits | None = None,
        thresholds: Thresholds | None = None,
        create: bool = True,
        shared_codes: str | os.PathLike[str] | None = None,
    ) -> None:
        if not create and not is_database_url(path) and not Path(path).exists():
            raise NotFound(f"{path}: no index there (lookalike index … --db {path} makes one)")
        self.store: Store = open_store(path)  # an SQLite file path, or a postgresql:// URL
        self.limits = limits or DecodeLimits()
        self.fetch = fetch
        self.thresholds = thresholds or Thresholds()
        self._phash = HammingIndex(64)
        self._local = DescriptorIndex()
        self._scope_of = np.full(1024, -1, dtype=np.int32)
        self._seq = self.store.last_change()
        self._refreshed = time.monotonic()
        self._file_rows: OrderedDict[int, StoredFile] = OrderedDict()
        self._memory = threading.RLock()
        for rows in self.store.codes():
            self._insert_codes(rows)
        self._local.flush()
        if shared_codes is not None:  # processes naming one folder map one copy of the pHash index
            self._phash.share(shared_codes)

    def close(self) -> None:
        """Close the database."""
        self.store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- keeping the in-memory index in step with the database ---------------------------------

    def _insert_codes(self, rows: Sequence[CodeRow]) -> None:
        if not rows:
            return
        pks = np.fromiter((r.pk for r in rows), dtype=np.int64, count=len(rows))
        top = int(pks.max())
        if top >= len(self._scope_of):
            grown = np.full(max(top + 1, 2 * len(self._scope_of)), -1, dtype=np.int32)
            grown[: len(self._scope_of)] = self._scope_of
            self._scope_of = grown
        self._scope_of[pks] = np.fromiter((r.scope_pk for r in rows), dtype=np.int32, count=len(rows))
        self._phash.add(pks, np.fromiter((r.phash for r in rows), dtype=np.uint64, count=len(rows)))
        for r in rows:
            if r.local_codes:
                self._local.add(r.pk, np.frombuffer(r.local_codes, dtype=np.uint8).reshape(-1, 32))

    def refresh(self, *, max_staleness: float = 0.0) -> None:
        """Apply what other processes (or this one) changed in the database since the last look;
        with ``max_staleness``, only when the last look is older than that many seconds."""
        now = time.monotonic()
        if max_staleness > 0 and now - self._refreshed < max_staleness:
            return
        with self._memory:
            self._refreshed = now
            seq, added, removed = self.store.changes_since(self._seq)
            if removed:
                gone = np.asarray(removed, dtype=np.int64)
                self._phash.remove(gone)
                self._local.remove(gone)
                self._scope_of[gone[gone < len(self._scope_of)]] = -1
                for pk in removed:
                    self._file_rows.pop(pk, None)
            self._insert_codes(added)
            self._seq = seq

    # ---- adding and removing -------------------------------------------------------------------

    def add(
        self,
        image: str | os.PathLike[str] | bytes,
        *,
        id: str | None = None,
        scope: str = DEFAULT_SCOPE,
        rendition: str = "",
        source: str | None = None,
    ) -> AddResult:
        """Fingerprint and store an image (a path, URL or bytes) under ``id`` (assigned when None).

        Adding bytes already in the scope returns the existing image id. Pairs
        judged ``similar`` to stored images go to the review list. An image
        given as bytes or by URL cannot be read again later, so its pixel
        digest is computed now (a full-resolution decode); a file's waits
        until a check needs it.
        Raises ``InputError`` subclasses for unreadable images.
        """
        src = read_source(image, max_bytes=self.limits.max_bytes, fetch=self.fetch)
        local_file = not isinstance(image, bytes) and not is_url(src.name)
        name = source if source is not None else (str(Path(src.name).resolve()) if local_file else src.name)
        analysis = analyse(src.data, name=name, limits=self.limits)
        if not local_file:
            digest = full_pixel_digest(src.data, limits=self.limits)
            analysis = replace(analysis, fingerprint=analysis.fingerprint.with_pixel_digest(digest))
        return self.add_analyses([(analysis, name)], scope=scope, image_id=id, rendition=rendition)[0]

    def add_analyses(
        self,
        items: Sequence[tuple[Analysis, str]],
        *,
        scope: str = DEFAULT_SCOPE,
        image_id: str | None = None,
        rendition: str = "",
    ) -> list[AddResult]:
        """Store analysed images (with their sources, and local features for verifying crops and
        overlays later) in one transaction."""
        prepared = [(Query.of(a), src, a.local or local_features(a.image.pixels)) for a, src in items]
        return self._add(prepared, scope, image_id, rendition)

    def add_fingerprints(
        self,
        items: Sequence[tuple[Fingerprint, str]],
        *,
        scope: str = DEFAULT_SCOPE,
        image_id: str | None = None,
        rendition: str = "",
    ) -> list[AddResult]:
        """Store already computed fingerprints (with their sources) in one transaction.

        Without the pictures' grids, flipped or turned look-alikes are judged
        by pHash alone for the review list (see ``match_fingerprint``)."""
        return self._add([(Query(fp), src, None) for fp, src in items], scope, image_id, rendition)

    def _add(
        self, items: Sequence[tuple[Query, str, LocalFeatures | None]], scope: str, image_id: str | None, rendition: str
    ) -> list[AddResult]:
        stored = self.store.add_files(
            NewFile(
                fingerprint=q.fingerprint,
                scope=scope,
                source=src,
                image_id=image_id,
                rendition=rendition,
                local=None if local is None else local.to_bytes(),
            )
            for q, src, local in items
        )
        self.refresh()
        for (query, _, local), (file, new) in zip(items, stored):
            if new:
                self._record_review(query, local, file)
        return [AddResult(image_id=f.image_id, file_pk=f.pk, added=new) for f, new in stored]

    def _record_review(self, query: Query, local: LocalFeatures | None, file: StoredFile) -> None:
        matches = self._matches(query, file.scope, exclude_image=file.image_pk)
        if local is not None:
            matches = self._verify_locally(local, query, matches, file.scope, exclude_image=file.image_pk)
        for m in matches:
            if m.verdict is Verdict.SIMILAR:
                self.store.add_review(
                    file.scope, m.file.image_pk, file.image_pk, score=m.score, verdict=m.verdict.value,
                    evidence=m.explanation,
                )  # fmt: skip

    def remove(self, image_id: str, *, scope: str = DEFAULT_SCOPE) -> None:
        """Delete an image and all its files. Raises ``NotFound``."""
        self.store.remove_image(scope, image_id)
        self.refresh()

    def get(self, image_id: str, *, scope: str = DEFAULT_SCOPE) -> ImageRecord:
        """An image with its files. Raises ``NotFound``."""
        return self.store.image(scope, image_id)

    # ---- looking up ----------------------------------------------------------------------------

    def check(self, image: str | os.PathLike[str] | bytes, *, scope: str = DEFAULT_SCOPE, top: int = 10) -> CheckResult:
        """Is this picture (a path, URL or bytes) already in ``scope``? Stores nothing.

        Raises ``InputError`` subclasses for unreadable images.
        """
        src = read_source(image, max_bytes=self.limits.max_bytes, fetch=self.fetch)
        return self.check_analysis(analyse(src.data, name=src.name, limits=self.limits), scope=scope, top=top)

    def check_analysis(self, analysis: Analysis, *, scope: str = DEFAULT_SCOPE, top: int = 10) -> CheckResult:
        """``check`` for an image analysed already."""
        self.refresh()
        query = Query.of(analysis)
        matches = self.check_query(
            query, lambda: analysis.local or local_features(analysis.image.pixels, max_features=QUERY_FEATURES),
            scope=scope,
        )  # fmt: skip
        return CheckResult(fingerprint=query.fingerprint, matches=tuple(matches[:top]))

    def check_query(
        self,
        query: Query,
        features: LocalFeatures | Callable[[], LocalFeatures],
        *,
        scope: str = DEFAULT_SCOPE,
        exclude_image: int | None = None,
    ) -> list[CheckMatch]:
        """The whole cascade for a fingerprinted query, every match best first: hashes, pixel
        digest, local features (``features``, or a function computing them only when the hashes
        settle nothing), then a person's decisions. ``exclude_image`` leaves one stored image out
        of every stage: a stored file checked against the rest of its scope would otherwise match
        itself and cut the cascade short. Call ``refresh`` first to see other processes' writes."""
        matches = self._matches(query, scope, exclude_image=exclude_image)
        matches = self._settle_same_pixels(query, matches)
        matches = self._verify_locally(features, query, matches, scope, exclude_image=exclude_image)
        return self.apply_decisions(matches)

    def _verify_locally(
        self,
        features_of: LocalFeatures | Callable[[], LocalFeatures],
        query: Query,
        matches: list[CheckMatch],
        scope: str,
        *,
        exclude_image: int | None = None,
    ) -> list[CheckMatch]:
        """Stages 5 and 6 of the cascade: when no candidate is a sure duplicate by its hashes, the
        query's local descriptors vote for stored files (reaching crops and screenshots that the
        hashes cannot), and the best candidates by hashes and by votes are verified geometrically,
        which settles crops, borders, captions and screenshots."""
        scope_pk = self.store.scope_pk(scope)
        if scope_pk is None or (matches and matches[0].verdict.is_duplicate):
            return matches
        features = features_of if isinstance(features_of, LocalFeatures) else features_of()
        with self._memory:
            voted = [
                pk for pk, votes in self._local.vote(features.descriptors[:_VOTING_FEATURES], top=2 * _VERIFY_VOTED_TOP)
                if votes >= _MIN_VOTES and pk < len(self._scope_of) and self._scope_of[pk] == scope_pk
            ][:_VERIFY_VOTED_TOP]  # fmt: skip
        by_file = {m.file.pk: m for m in matches}
        new = [pk for pk in voted if pk not in by_file]
        for f in self.store.files(new):
            if f.image_pk == exclude_image:
                continue
            by_hash = match_fingerprint(query, f.fingerprint, self.thresholds)
            by_file[f.pk] = CheckMatch(f.image_id, f, by_hash.score, by_hash.verdict, by_hash.explanation)
        todo = [pk for pk in dict.fromkeys([*(m.file.pk for m in matches[:_VERIFY_HASH_TOP]), *voted]) if pk in by_file]
        stored = self.store.local_features(todo)
        for pk in todo:
            data = stored.get(pk)
            if data is None:
                continue
            m = by_file[pk]
            evidence = verify_local(features, LocalFeatures.from_bytes(data))
            score = local_score(evidence)
            if score > m.score:
                verdict = verdict_for(score, self.thresholds)
                why = ("same picture, " if verdict.is_duplicate else "shares a region: ") + describe_local(evidence)
                by_file[pk] = CheckMatch(m.image_id, m.file, score, verdict, why, by_local_features=True)
        best: dict[int, CheckMatch] = {}  # one match (the best file) per image
        for m in by_file.values():
            if m.file.image_pk not in best or m.score > best[m.file.image_pk].score:
                best[m.file.image_pk] = m
        return sorted(best.values(), key=lambda m: (-m.score, m.image_id))

    def similar(self, image_id: str, *, scope: str = DEFAULT_SCOPE, top: int = 10) -> list[CheckMatch]:
        """Stored images that match image ``image_id`` (any of its files), best first. Raises ``NotFound``."""
        record = self.store.image(scope, image_id)
        self.refresh()
        best: dict[int, CheckMatch] = {}
        stored = self.store.local_features([f.pk for f in record.files])
        for f in record.files:
            query = Query(f.fingerprint)
            matches = self._matches(query, scope, exclude_image=record.pk)
            if f.pk in stored:
                local = LocalFeatures.from_bytes(stored[f.pk])
                matches = self._verify_locally(local, query, matches, scope, exclude_image=record.pk)
            for m in matches:
                if m.file.image_pk not in best or m.score > best[m.file.image_pk].score:
                    best[m.file.image_pk] = m
        return sorted(best.values(), key=lambda m: (-m.score, m.image_id))[:top]

    def files_near(self, phash: int, *, scope: str = DEFAULT_SCOPE, radius: int = RETRIEVAL_RADIUS) -> list[StoredFile]:
        """Stored files of ``scope`` whose pHash, under one of the eight flips and turns of the stored
        picture, is within ``radius`` bits of ``phash``, nearest first: a look-up from a hash alone
        (a client that hashed a file before uploading it, maybe a mirrored or turned copy). Sees
        other processes' additions and removals within ``HASH_LOOKUP_STALENESS`` seconds, its own
        at once.

        The in-memory index holds each file's pHash as it is; a turned copy's pHash is looked up
        there through its turned estimates (``phash_variants_estimated``), and each file found is
        kept only when one of its exact stored variants is within ``radius`` (``turned_distance_bits``).
        An estimate is a few bits off (see there), so a turned copy is found when its distance plus
        that error is within ``radius``: with the default radius of 16 bits that covers every
        near-duplicate (12 bits or fewer) whose estimate is at most 4 bits off, and every copy at
        4 bits or fewer whose estimate is at most 12 bits off; pictures as they are, exactly."""
        self.refresh(max_staleness=HASH_LOOKUP_STALENESS)
        scope_pk = self.store.scope_pk(scope)
        if scope_pk is None:
            return []
        with self._memory:
            found = [self._phash.radius(code, radius)[0] for code in set(phash_variants_estimated(phash))]
            pks = np.unique(np.concatenate(found))
            pks = pks[self._scope_of[pks] == scope_pk]
            files = self._kept_files([int(p) for p in pks])
        near = [(turned_distance_bits(phash, f.fingerprint)[0], f) for f in files]
        return [f for d, f in sorted(near, key=lambda df: (df[0], df[1].pk)) if d <= radius]

    def _kept_files(self, pks: list[int]) -> list[StoredFile]:
        """``store.files``, answered from the rows kept in memory where it can (call it holding the
        memory lock)."""
        rows = self._file_rows
        missing = [p for p in pks if p not in rows]
        for f in self.store.files(missing):
            rows[f.pk] = f
        found = []
        for p in pks:
            kept = rows.get(p)
            if kept is not None:
                rows.move_to_end(p)
                found.append(kept)
        while len(rows) > _FILE_ROWS_KEPT:
            rows.popitem(last=False)
        return found

    def _candidates(self, query: Query, scope_pk: int) -> tuple[list[int], set[int]]:
        """(rows within ``RETRIEVAL_RADIUS`` pHash bits under some turn, and the nearest few beyond)."""
        with self._memory:
            found = [self._phash.radius(code, RETRIEVAL_RADIUS)[0] for code in set(query.fingerprint.phash_variants)]
            # the nearest few beyond the radius too: hashes alone cannot vouch for them, but local
            # verification (stage 5) can, for copies whose frame changed
            nearest = self._phash.knn(query.fingerprint.phash, _KNN)[0] if len(self._phash) else np.zeros(0, np.int64)
            found.append(nearest)
            pks = np.unique(np.concatenate(found))
            pks = pks[self._scope_of[pks] == scope_pk]
        return [int(p) for p in pks], {int(p) for p in nearest}

    def _matches(self, query: Query, scope: str, *, exclude_image: int | None = None) -> list[CheckMatch]:
        """Every candidate of ``scope`` scored, one (the best file) per image, best first."""
        scope_pk = self.store.scope_pk(scope)
        if scope_pk is None:
            return []
        files = {f.pk: f for f in self.store.files_by_sha(scope, query.fingerprint.sha256)}
        pks, nearest = self._candidates(query, scope_pk)
        for f in self.store.files(pks):
            # within the radius by pHash: a candidate only when PDQ agrees too (``match.retrieval``)
            if f.pk in nearest or retrieves(query, f.fingerprint):
                files.setdefault(f.pk, f)
        best: dict[int, tuple[Match, StoredFile]] = {}
        for f in files.values():
            if f.image_pk == exclude_image or f.scope != scope:
                continue
            m = match_fingerprint(query, f.fingerprint, self.thresholds)
            if f.image_pk not in best or m.score > best[f.image_pk][0].score:
                best[f.image_pk] = (m, f)
        ranked = sorted(best.values(), key=lambda mf: (-mf[0].score, mf[1].image_id))
        return [CheckMatch(f.image_id, f, m.score, m.verdict, m.explanation) for m, f in ranked]

    def _settle_same_pixels(self, query: Query, matches: list[CheckMatch]) -> list[CheckMatch]:
        """Turn a close, same-size near-duplicate into ``same_pixels`` when the pixel digests agree."""
        if not matches or matches[0].verdict is not Verdict.NEAR_DUPLICATE or not query.data:
            return matches
        q, s = query.fingerprint, matches[0].file.fingerprint
        if not worth_pixel_digest(q, s):
            return matches
        stored_digest = s.pixel_digest or self._stored_digest(matches[0].file)
        if stored_digest is None:
            return matches
        if (q.pixel_digest or full_pixel_digest(query.data, limits=self.limits)) != stored_digest:
            return matches
        first = matches[0]
        same = CheckMatch(
            first.image_id, first.file, 1.0, Verdict.SAME_PIXELS,
            "the same pixels in a different file (lossless re-encode or metadata change)",
        )  # fmt: skip
        return [same, *matches[1:]]

    def _stored_digest(self, file: StoredFile) -> bytes | None:
        """The pixel digest of a stored file, computed from its source when still readable, and kept."""
        path = Path(file.source)
        if not file.source or not path.is_file():
            return None
        try:
            digest = full_pixel_digest(read_source(path, max_bytes=self.limits.max_bytes).data, limits=self.limits)
        except LookalikeError:
            return None
        fp = file.fingerprint.with_pixel_digest(digest)
        if path.stat().st_size == fp.byte_size:
            self.store.set_pixel_digest(file.pk, fp)
        return digest

    def apply_decisions(self, matches: list[CheckMatch]) -> list[CheckMatch]:
        """A person's decisions between the best match and the others override the scores."""
        if len(matches) < 2 or not matches[0].verdict.is_duplicate:
            return matches
        anchor = matches[0].file.image_pk
        decided = self.store.decisions([anchor])
        if not decided:
            return matches
        out = [matches[0]]
        for m in matches[1:]:
            d = decided.get((min(anchor, m.file.image_pk), max(anchor, m.file.image_pk)))
            if d is Decision.NOT_DUPLICATE:
                m = replace(
                    m, score=min(m.score, self.thresholds.similar * 0.99), verdict=Verdict.DIFFERENT,
                    explanation=f"a person marked this as not a duplicate of {matches[0].image_id}",
                )  # fmt: skip
            elif d is Decision.DUPLICATE and not m.verdict.is_duplicate:
                m = replace(
                    m, score=max(m.score, self.thresholds.near_duplicate), verdict=Verdict.NEAR_DUPLICATE,
                    explanation=f"a person marked this as a duplicate of {matches[0].image_id}",
                )  # fmt: skip
            out.append(m)
        return sorted(out, key=lambda m: (-m.score, m.image_id))

    # ---- review --------------------------------------------------------------------------------

    def review(
        self, *, scope: str | None = DEFAULT_SCOPE, decision: Decision | None = Decision.PENDING
    ) -> list[ReviewPair]:
        """Potential-duplicate pairs (pending by default), best score first."""
        return self.store.reviews(scope, decision)

    def decide(self, pair_pk: int, decision: Decision, *, scope: str | None = None) -> ReviewPair:
        """Record a person's decision on a review pair. Raises ``NotFound``."""
        return self.store.decide(pair_pk, decision, scope)

    def stats(self) -> StoreStats:
        """Counts of what is stored."""
        return self.store.stats()

    def memory_bytes(self) -> int:
        """Bytes held by the in-memory index structures."""
        with self._memory:
            return int(self._phash.nbytes() + self._local.nbytes() + self._scope_of.nbytes)
