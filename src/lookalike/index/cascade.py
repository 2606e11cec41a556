"""The check cascade of ``Index``: a fingerprinted query against one scope of a store, cheapest first.

1. exact: the SHA-256 of the bytes (an indexed SQL look-up);
2. candidates: the eight flip/turn variants of the query's pHash, searched
   within ``RETRIEVAL_RADIUS`` bits, in the query's scope only;
3. scoring: each candidate's hashes against the query turned the same way;
   the best file of each image stands for it (renditions);
4. same pixels: a close, same-size best match is settled by the pixel digest;
5. local verification: when no candidate is a sure duplicate, the best few
   are verified by local features (ORB keypoints and a RANSAC fit), which
   survive crops, borders, captions and screenshots;
6. decisions: what a person decided on a pair overrides the score
   (``lookalike.match.decision``).

The cascade reads the store and never writes it: a stored file's pixel digest
computed for step 4 is kept in memory only.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from itertools import islice
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits, Thresholds
from lookalike.decode import read_source
from lookalike.errors import LookalikeError
from lookalike.fingerprints import full_pixel_digest
from lookalike.fingerprints.kernels import two_nearest
from lookalike.fingerprints.local import LocalFeatures
from lookalike.index.results import CheckMatch
from lookalike.index.search.descriptors import MATCH_BITS
from lookalike.index.search.memory import Mirror
from lookalike.index.store.interface import CandidateReader, ReviewList
from lookalike.index.store.records import LOCAL_CODES, ImageRecord, StoredFile
from lookalike.match import Query, Verdict, match_fingerprint
from lookalike.match.decision import overrule
from lookalike.match.local import QueryFeatures, verify_local, voting_descriptors
from lookalike.match.retrieval import NEAREST_ANY_UP_TO, NEAREST_RADIUS, PHASH_RADIUS, retrieves
from lookalike.match.steps import by_local_features, by_picture_within, same_pixels, same_pixels_evidence

__all__ = ["RETRIEVAL_RADIUS", "Cascade", "best_per_image", "revote_pool", "revoted", "second_count", "voted_in_scope"]

#: pHash bits within which stored pictures become candidates, when PDQ agrees too (the rule and
#: its reasons are in ``lookalike.match.retrieval``, shared with the scale-out join).
RETRIEVAL_RADIUS = PHASH_RADIUS

#: the strongest of the query's keypoints that vote for stored files
_VOTING_FEATURES = 500
#: candidates verified by local features: the best by hashes, and the most voted for by descriptors
#: (with at least ``_MIN_VOTES``; unrelated pictures get a few votes by chance). Measured on the public
#: benchmark's crop_25 and screenshot queries with one-bit slice probes (``descriptors.PROBE_BITS``):
#: 5 voted gave recall 0.9703 and 0.9536, 8 gave 0.9722 and 0.9555 (exact slices and 5: 0.9666, 0.9536).
#: The probes cost a picture check 93 ms of CPU at 10,000 stored pictures (39.7 ms without them;
#: ``benchmarks/service_load.py``), so the index keeps exact slices and verifies 8.
_VERIFY_HASH_TOP = 2
_VERIFY_VOTED_TOP = 8
_MIN_VOTES = 3
#: the exact slices miss many descriptor pairs of a tight crop (58 % at 30 bits apart), so that its
#: original may get too few votes to rank among the first eight. The first ``_REVOTE_POOL`` files
#: of the scope by votes (any) are voted for again by brute force over their stored codes alone
#: (every pair found: ``revoted``), and the first ``_VERIFY_REVOTED_TOP`` of that count not chosen
#: already is verified too (``second_count``), and reported only when that verification finds the
#: shared region (its hashes were no reason to choose it). On the public benchmark's crop_25 queries that the
#: one-bit slice probes recovered, the original was that first one each time; the brute force over
#: 24 x 64 codes costs about 1.3 ms of CPU, and the one more verification about 1.5 ms, where the
#: probes cost 93 ms a check at 10,000 stored pictures. Full benchmark: crop_25 0.9666 -> 0.9722, no
#: edit lower; a picture check's CPU unchanged (39.7 ms, ``benchmarks/service_load.py``).
_REVOTE_POOL = 24
_VERIFY_REVOTED_TOP = 1
#: nearest pHashes looked at beyond the radius
_KNN = 5
#: stored files' pixel digests computed by checks, kept in memory (32 bytes each)
_DIGESTS_KEPT = 10_000


def best_per_image(matches: list[CheckMatch]) -> list[CheckMatch]:
    """One match (the best file) per image, best first."""
    best: dict[int, CheckMatch] = {}
    for m in matches:
        if m.file.image_pk not in best or m.score > best[m.file.image_pk].score:
            best[m.file.image_pk] = m
    return sorted(best.values(), key=lambda m: (-m.score, m.image_id))


def voted_in_scope(votes: Sequence[tuple[int, int]], in_scope: Callable[[int], bool]) -> list[int]:
    """The crop tier's one candidate rule: of every owner's (owner, votes), most votes first
    (``DescriptorVoter.vote_each`` with ``top=None``), those with at least ``_MIN_VOTES`` that are
    ``in_scope``, the first ``_VERIFY_VOTED_TOP``. Every owner's votes first and the scope after,
    so that a scope's candidates never depend on what other scopes hold, nor an owner's votes on
    what else is stored. One machine's cascade and a scale-out run's vote shards
    (``scale.matching``) both choose by it."""
    return [pk for pk, n in votes if n >= _MIN_VOTES and in_scope(pk)][:_VERIFY_VOTED_TOP]


def revoted(sets: Sequence[npt.NDArray[np.uint8]], codes: dict[int, npt.NDArray[np.uint8]]) -> list[tuple[int, int]]:
    """(owner, votes) of the owners in ``codes`` (each its stored descriptors), most votes first,
    ties to the lower owner: each query descriptor of a set votes for the owner of its nearest code
    among them all (ties to the lower owner) when within ``MATCH_BITS``, and each owner keeps its
    best set's votes, as ``DescriptorVoter.vote_each`` counts them, but over every pair of the few."""
    owners = sorted(pk for pk, c in codes.items() if len(c))
    if not owners:
        return []
    stored = np.concatenate([codes[pk] for pk in owners])  # in owner order: the first of equals is the lower owner
    owner_of = np.repeat(np.array(owners, np.int64), [len(codes[pk]) for pk in owners])
    best: dict[int, int] = {}
    for descriptors in sets:
        if not len(descriptors):
            continue
        row, dist, _ = two_nearest(descriptors, stored)
        found, counts = np.unique(owner_of[row[dist <= MATCH_BITS]], return_counts=True)
        for pk, n in zip(found.tolist(), counts.tolist(), strict=True):
            best[pk] = max(n, best.get(pk, 0))
    return sorted(best.items(), key=lambda ov: (-ov[1], ov[0]))


def revote_pool(votes: Sequence[tuple[int, int]], in_scope: Callable[[int], bool]) -> list[int]:
    """The owners voted for again (``second_count``): the first ``_REVOTE_POOL`` of every owner's
    (owner, votes), most votes first, that are ``in_scope``, however few their votes."""
    return list(islice((pk for pk, _ in votes if in_scope(pk)), _REVOTE_POOL))


def second_count(
    voted: list[int], pool: list[int], sets: Sequence[npt.NDArray[np.uint8]], local: dict[int, bytes]
) -> list[int]:
    """The first ``_VERIFY_REVOTED_TOP`` owners of ``pool`` (by ``revote_pool``) not in ``voted``
    (by ``voted_in_scope``) that the query's descriptor ``sets`` vote for with at least
    ``_MIN_VOTES`` when counted by brute force over their stored features ``local`` (the
    ``LOCAL_CODES`` strongest: what the index holds of them): the crop tier's further candidates,
    on one machine and in a scale-out run alike."""
    codes = {pk: LocalFeatures.from_bytes(local[pk]).descriptors[:LOCAL_CODES] for pk in pool if pk in local}
    more = [pk for pk, n in revoted(sets, codes) if n >= _MIN_VOTES and pk not in voted]
    return more[:_VERIFY_REVOTED_TOP]


class Cascade:
    """Steps 1 to 6 over a store's readers and the in-memory ``Mirror`` of it. Thread-safe."""

    def __init__(
        self, files: CandidateReader, reviews: ReviewList, mirror: Mirror, thresholds: Thresholds, limits: DecodeLimits
    ) -> None:
        self._files = files
        self._reviews = reviews
        self._mirror = mirror
        self.thresholds = thresholds
        self.limits = limits
        self._digests: OrderedDict[int, bytes] = OrderedDict()

    def check(
        self,
        query: Query,
        features: LocalFeatures | Callable[[], LocalFeatures],
        scope: str,
        *,
        exclude_image: int | None = None,
        fuse: Callable[[list[CheckMatch]], list[CheckMatch]] | None = None,
    ) -> list[CheckMatch]:
        """Every step, every match best first (see ``Index.check_query``); ``fuse``: the learned
        tier's evidence joined in (``index.semantic``) before a person's decisions, which it never
        overrides."""
        matches = self.matches(query, scope, exclude_image=exclude_image)
        matches = self._settle_same_pixels(query, matches)
        matches = self.verify_locally(features, query, matches, scope, exclude_image=exclude_image)
        return self.apply_decisions(matches if fuse is None else fuse(matches))

    def _candidates(self, query: Query, scope_pk: int) -> tuple[list[int], set[int]]:
        """(rows within ``RETRIEVAL_RADIUS`` pHash bits under some turn, and the nearest few beyond)."""
        mirror = self._mirror
        with mirror.lock:
            # the nearest few beyond the radius too: hashes alone cannot vouch for them, but local
            # verification (step 5) can, for copies whose frame changed. The scope's own nearest, so
            # that what other scopes (tenants) store never crowds this one's out
            code = query.fingerprint.phash
            nearest = mirror.nearest_in_scope(code, _KNN, scope_pk, NEAREST_RADIUS, NEAREST_ANY_UP_TO)
            pks = mirror.near(query.fingerprint.phash_variants, RETRIEVAL_RADIUS, scope_pk, also=[nearest])
        return pks, {int(p) for p in nearest}

    def matches(self, query: Query, scope: str, *, exclude_image: int | None = None) -> list[CheckMatch]:
        """Steps 1 to 3: every candidate of ``scope`` scored, one (the best file) per image, best first."""
        scope_pk = self._files.scope_pk(scope)
        if scope_pk is None:
            return []
        files = {f.pk: f for f in self._files.files_by_sha(scope, query.fingerprint.sha256)}
        pks, nearest = self._candidates(query, scope_pk)
        for f in self._files.files(pks):
            # within the radius by pHash: a candidate only when PDQ agrees too (``match.retrieval``)
            if f.pk in nearest or retrieves(query, f.fingerprint):
                files.setdefault(f.pk, f)
        scored = []
        for f in files.values():
            if f.image_pk == exclude_image or f.scope != scope:
                continue
            m = match_fingerprint(query, f.fingerprint, self.thresholds)
            scored.append(CheckMatch(f.image_id, f, m.score, m.verdict, m.explanation))
        return best_per_image(scored)

    def _settle_same_pixels(self, query: Query, matches: list[CheckMatch]) -> list[CheckMatch]:
        """Step 4: a close, same-size near-duplicate becomes ``same_pixels`` when the pixel digests agree."""
        if not matches or not query.data:
            return matches
        first = matches[0]
        if not same_pixels(
            first.verdict, query.fingerprint, first.file.fingerprint,
            copy_digest=partial(full_pixel_digest, query.data, limits=self.limits),
            original_digest=partial(self._stored_digest, first.file),
        ):  # fmt: skip
            return matches
        same = CheckMatch(first.image_id, first.file, 1.0, Verdict.SAME_PIXELS, same_pixels_evidence())
        return [same, *matches[1:]]

    def _stored_digest(self, file: StoredFile) -> bytes | None:
        """The pixel digest of a stored file, computed from its source when still readable, and kept
        in memory while the source has the size stored (a check stores nothing; ``find`` keeps
        digests in the store)."""
        kept = self._digests.get(file.pk)
        if kept is not None:
            return kept
        path = Path(file.source)
        if not file.source or not path.is_file():
            return None
        try:
            digest = full_pixel_digest(read_source(path, max_bytes=self.limits.max_bytes).data, limits=self.limits)
        except LookalikeError:
            return None
        if path.stat().st_size == file.fingerprint.byte_size:
            with self._mirror.lock:
                self._digests[file.pk] = digest
                while len(self._digests) > _DIGESTS_KEPT:
                    self._digests.popitem(last=False)
        return digest

    def verify_locally(
        self,
        features_of: LocalFeatures | Callable[[], LocalFeatures],
        query: Query,
        matches: list[CheckMatch],
        scope: str,
        *,
        exclude_image: int | None = None,
    ) -> list[CheckMatch]:
        """Step 5: when no candidate is a sure duplicate by its hashes, the query's local descriptors
        vote for stored files (reaching crops and screenshots that the hashes cannot), and the best
        candidates by hashes and by votes are verified geometrically, which settles crops, borders,
        captions and screenshots."""
        scope_pk = self._files.scope_pk(scope)
        if scope_pk is None or (matches and matches[0].verdict.is_duplicate):
            return matches
        features = features_of if isinstance(features_of, LocalFeatures) else features_of()
        voted, recounted = self._voted(features, scope_pk)
        by_file = {m.file.pk: m for m in matches}
        for f in self._files.files([pk for pk in [*voted, *recounted] if pk not in by_file]):
            if f.image_pk == exclude_image:
                continue
            by_hash = match_fingerprint(query, f.fingerprint, self.thresholds)
            by_file[f.pk] = CheckMatch(f.image_id, f, by_hash.score, by_hash.verdict, by_hash.explanation)
        within = self._pictures_within(features, query, scope, scope_pk, by_file, exclude_image)
        chosen = [*(m.file.pk for m in matches[:_VERIFY_HASH_TOP]), *voted, *recounted]
        todo = [pk for pk in dict.fromkeys(chosen) if pk in by_file]
        stored = self._files.local_features(todo)
        for pk in todo:
            data = stored.get(pk)
            if data is None:
                continue
            m = by_file[pk]
            found = verify_local(features, LocalFeatures.from_bytes(data))
            r = by_local_features(found, m.score, self.thresholds)
            if r is not None:
                by_file[pk] = CheckMatch(m.image_id, m.file, r.score, r.verdict, r.explanation, by_local_features=True)
        # the second count's files are reported only when verified: their hashes were no reason to choose them
        by_hashes = {m.file.pk for m in matches}
        unverified = {
            pk for pk in recounted
            if pk not in by_hashes and pk not in within and pk in by_file and not by_file[pk].by_local_features
        }  # fmt: skip
        return best_per_image([m for pk, m in by_file.items() if pk not in unverified])

    def _pictures_within(
        self, features: LocalFeatures, query: Query, scope: str, scope_pk: int, by_file: dict[int, CheckMatch],
        exclude_image: int | None,
    ) -> set[int]:  # fmt: skip
        """Step 5, first half: the pictures found within the query (a picture inside a page, a
        collage's tiles: ``QueryFeatures.parts``) find their candidates by their own hashes as a
        whole query does (steps 2 and 3), and a candidate is scored by them when that beats its
        score so far (``by_picture_within``), in ``by_file``; returns the files so scored."""
        parts = features.parts if isinstance(features, QueryFeatures) else ()
        found: set[int] = set()
        near: set[int] = set()
        for part in parts:
            pks, nearest = self._candidates(part.query, scope_pk)
            found.update(pks)
            near |= nearest
        settled: set[int] = set()
        for f in self._files.files(sorted(found)):
            if f.image_pk == exclude_image or f.scope != scope:
                continue
            if f.pk not in near and not any(retrieves(part.query, f.fingerprint) for part in parts):
                continue
            m = by_file.get(f.pk)
            if m is None:
                by_hash = match_fingerprint(query, f.fingerprint, self.thresholds)
                m = CheckMatch(f.image_id, f, by_hash.score, by_hash.verdict, by_hash.explanation)
            r = by_picture_within(parts, f.fingerprint, m.score, self.thresholds)
            if r is not None:
                by_file[f.pk] = CheckMatch(m.image_id, m.file, r.score, r.verdict, r.explanation)
                settled.add(f.pk)
        return settled

    def _voted(self, features: LocalFeatures, scope_pk: int) -> tuple[list[int], list[int]]:
        """The stored files of the scope the query's local descriptors vote for most, best first, by
        ``voted_in_scope``, and those ``second_count`` adds: the crop tier's candidates (a
        scale-out run supplies them from its join)."""
        mirror = self._mirror
        views = voting_descriptors(features, _VOTING_FEATURES)  # the query, its mirror image, pictures within it
        with mirror.lock:
            votes = mirror.local.vote_each(views, top=None)
            pool = revote_pool(votes, lambda pk: mirror.is_in_scope(pk, scope_pk))
        # the scope's first eight with enough votes are among its first ``_REVOTE_POOL`` (votes are sorted)
        voted = voted_in_scope(votes, set(pool).__contains__)
        return voted, second_count(voted, pool, views, self._files.local_features(pool))

    def apply_decisions(self, matches: list[CheckMatch]) -> list[CheckMatch]:
        """Step 6: a person's decisions between the best match and the others override the scores."""
        if len(matches) < 2 or not matches[0].verdict.is_duplicate:
            return matches
        best = matches[0]
        return [best, *self.rule_against(best.file.image_pk, best.image_id, matches[1:])]

    def look_alikes(self, record: ImageRecord) -> list[CheckMatch]:
        """The stored images that match the stored image ``record`` (any of its files), best first:
        steps 1 to 3 and 5 with each file's stored fingerprint and local features, then a person's
        decisions on each pair."""
        found: list[CheckMatch] = []
        stored = self._files.local_features([f.pk for f in record.files])
        for f in record.files:
            query = Query(f.fingerprint)
            matches = self.matches(query, record.scope, exclude_image=record.pk)
            if f.pk in stored:
                local = LocalFeatures.from_bytes(stored[f.pk])
                matches = self.verify_locally(local, query, matches, record.scope, exclude_image=record.pk)
            found.extend(matches)
        return self.rule_against(record.pk, record.image_id, best_per_image(found))

    def rule_against(self, anchor_pk: int, anchor_id: str, matches: list[CheckMatch]) -> list[CheckMatch]:
        """``matches`` after a person's decisions between each and the stored image ``anchor_pk``
        (``anchor_id``), best first: the one rule (``match.decision.overrule``) that a check applies
        against its best match and a look-up of a stored image's look-alikes against that image."""
        decided = self._reviews.decisions([anchor_pk])
        if not decided:
            return matches
        out = []
        for m in matches:
            d = decided.get((min(anchor_pk, m.file.image_pk), max(anchor_pk, m.file.image_pk)))
            ruling = overrule(m.score, m.verdict, None if d is None else d.duplicate, self.thresholds)
            if ruling.by_person:
                why = ruling.explanation(anchor_id, m.explanation)
                m = replace(m, score=ruling.score, verdict=ruling.verdict, explanation=why)
            out.append(m)
        return sorted(out, key=lambda m: (-m.score, m.image_id))
