"""``Index``: the persistent collection that answers "have I already got this image?".

Storage is a store (``index.store.interface``: an SQLite file or a PostgreSQL database), private
to the ``Index``: callers use its methods. Near look-ups go through in-memory indexes
(``index.search.memory``) rebuilt from the database on open and brought up to date from the
store's change log before every look-up, so a restart loses nothing and processes
sharing one database see each other's additions. A check runs the cascade of
``index.cascade``; adding under a duplicate policy (``add_checked``) checks, decides
(``index.policy``), stores and records review pairs from one analysis. With an ``embedder`` (the
learned tier, ``index.semantic``), files are embedded from the pixels already decoded, their
vectors stored with them, and every check fuses the embedding into the cascade's matches.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits, FetchLimits, Thresholds, is_database_url
from lookalike.decode import is_url, read_source
from lookalike.errors import NotFound
from lookalike.fingerprints import Analysis, Fingerprint, analyse, full_pixel_digest, phash_variants_estimated
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.index.cascade import Cascade
from lookalike.index.hashes import HASH_LOOKUP_STALENESS, LOOKUP_RADIUS, hash_matches
from lookalike.index.policy import judge
from lookalike.index.results import AddOutcome, AddResult, CheckMatch, CheckResult, Outcome, turned_distance_bits
from lookalike.index.search.memory import Mirror
from lookalike.index.semantic import LearnedTier
from lookalike.index.store.interface import Store, open_store
from lookalike.index.store.records import (
    DEFAULT_SCOPE,
    Decision,
    ImageRecord,
    NewFile,
    OnDuplicate,
    ReviewPair,
    StoredFile,
    StoreStats,
)
from lookalike.learned import Embedder
from lookalike.match import Query, Verdict
from lookalike.match.local import query_features

_Vector = npt.NDArray[np.float16]
_Item = tuple[Query, str, LocalFeatures | None, _Vector | None]  # what ``_add`` stores of one file
_Local = LocalFeatures | None

__all__ = ["Index"]


class Index:
    """A persistent, scoped collection of image fingerprints (see the module docstring).

    ``create=False`` refuses to make a new database (``NotFound``): for commands
    that only read, where a mistyped path would otherwise answer "unique".
    ``shared_codes``: a folder through which the processes that name it (a service's workers)
    map one copy of the pHash index, not one each; changes after opening stay per process.
    ``embedder``: the learned tier (see the module docstring; files stored without it have no
    vector and are checked by the cascade alone).

    Thread-safe: one lock covers the in-memory structures while they are read or brought up to
    date, and nothing else, so decoding, hashing, local features and geometric verification of one
    thread never make another wait (a service's hash check had waited 2.6 s for a check's
    full-resolution decode).
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
        embedder: Embedder | None = None,
    ) -> None:
        if not create and not is_database_url(path) and not Path(path).exists():
            raise NotFound(f"{path}: no index there (lookalike index … --db {path} makes one)")
        self._store: Store = open_store(path)  # an SQLite file path, or a postgresql:// URL
        self.limits = limits or DecodeLimits()
        self.fetch = fetch
        self.thresholds = thresholds or Thresholds()
        self._mirror = Mirror(self._store, shared_codes=shared_codes)
        self._cascade = Cascade(self._store, self._store, self._mirror, self.thresholds, self.limits)
        self._learned = None if embedder is None else LearnedTier(embedder, self._store, self.thresholds, self._mirror)

    def close(self) -> None:
        """Close the database."""
        self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def refresh(self, *, max_staleness: float = 0.0) -> None:
        """Apply what other processes (or this one) changed in the database since the last look;
        with ``max_staleness``, only when the last look is older than that many seconds."""
        self._mirror.refresh(max_staleness=max_staleness)

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
        prepared = [(Query.of(a), src, a.local or local_features(a.image.pixels), self._embed(a)) for a, src in items]
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
        return self._add([(Query(fp), src, None, None) for fp, src in items], scope, image_id, rendition)

    def _add(self, items: Sequence[_Item], scope: str, image_id: str | None, rendition: str) -> list[AddResult]:
        stored = self._store.add_files(
            NewFile(
                fingerprint=q.fingerprint, scope=scope, source=src, image_id=image_id, rendition=rendition,
                local=None if local is None else local.to_bytes(), embedding=self._stored_vector(vector),
            )
            for q, src, local, vector in items
        )  # fmt: skip
        self.refresh()
        for (query, _, local, vector), (file, new) in zip(items, stored):
            if new:
                matches = self._cascade.matches(query, file.scope, exclude_image=file.image_pk)
                if local is not None:
                    matches = self._cascade.verify_locally(
                        local, query, matches, file.scope, exclude_image=file.image_pk
                    )
                fuse = self._fusion(vector, file.scope, file.image_pk)
                matches = matches if fuse is None else fuse(matches)
                self._review(file, [m for m in matches if m.verdict is Verdict.SIMILAR])
        return [AddResult(image_id=f.image_id, file_pk=f.pk, added=new) for f, new in stored]

    def _review(self, file: StoredFile, matches: Sequence[CheckMatch]) -> int:
        """Put the pairs of ``file``'s image and each match's on the review list; how many."""
        for m in matches:
            self._store.add_review(
                file.scope, m.file.image_pk, file.image_pk, score=m.score, verdict=m.verdict.value,
                evidence=m.explanation,
            )  # fmt: skip
        return len(matches)

    def add_checked(
        self,
        analysis: Analysis,
        source: str,
        *,
        scope: str = DEFAULT_SCOPE,
        on_duplicate: OnDuplicate = OnDuplicate.REJECT,
        image_id: str | None = None,
        rendition: str = "",
        top: int = 10,
        before_storing: Callable[[], None] | None = None,
        embedding: _Vector | None = None,
        query_local: LocalFeatures | None = None,
    ) -> AddOutcome:
        """Check ``analysis`` against ``scope``, decide under ``on_duplicate`` (``index.policy``),
        store it (under ``source``, as a file of ``image_id``'s image when given, or in the place of
        the file it replaces) and put the pairs the policy names on the review list, all from one
        check; what was done. ``before_storing`` runs once the picture is to be stored, before its
        rows are written (the service writes the file there). Two processes adding copies of one
        picture at once may both store it: hold ``scope_lock`` around this call to prevent it.
        ``embedding``, ``query_local``: its learned vector and ``query_features`` if computed already."""
        vector = self._embed(analysis, embedding)
        matches = self._check_all(analysis, scope, vector, query_local)  # the check ``check_analysis`` runs
        check = CheckResult(fingerprint=analysis.fingerprint, matches=tuple(matches[:top]))
        files: tuple[StoredFile, ...] = ()
        if image_id is not None:
            try:
                files = self._store.image(scope, image_id).files
            except NotFound:
                pass
        renditions = [f.rendition for f in files]
        judgement = judge(matches, on_duplicate, image_id=image_id, renditions=renditions, rendition=rendition)
        if judgement.outcome is Outcome.PRESENT and judgement.because is not None:
            self._keep_vector(judgement.because.file.pk, vector)
            return AddOutcome(Outcome.PRESENT, judgement.because.image_id, check, because=judgement.because)
        if judgement.outcome is Outcome.REJECTED:
            return AddOutcome(Outcome.REJECTED, None, check, because=judgement.because)
        if judgement.outcome is Outcome.RENDITION_TAKEN:
            return AddOutcome(Outcome.RENDITION_TAKEN, image_id, check)
        if before_storing is not None:
            before_storing()
        # a featureless picture's are empty, not None, and its pixels may be left in a worker
        local = (analysis.local if analysis.local is not None else local_features(analysis.image.pixels)).to_bytes()
        item = NewFile(analysis.fingerprint, scope, source, image_id, rendition, local, self._stored_vector(vector))
        if judgement.outcome is Outcome.REPLACED:
            old = judgement.because.file if judgement.because else next(f for f in files if f.rendition == rendition)
            file = self._store.replace_file(old.pk, item)
            self.refresh()
            done = self._review(file, judgement.review)
            return AddOutcome(Outcome.REPLACED, file.image_id, check, done, judgement.because, replaced=old)
        ((file, new),) = self._store.add_files([item])
        self.refresh()
        if not new:  # the same bytes arrived between the check and the write
            return AddOutcome(Outcome.PRESENT, file.image_id, check)
        return AddOutcome(Outcome.ADDED, file.image_id, check, self._review(file, judgement.review))

    def remove(self, image_id: str, *, scope: str = DEFAULT_SCOPE) -> None:
        """Delete an image and all its files. Raises ``NotFound``."""
        self._store.remove_image(scope, image_id)
        self.refresh()

    # ---- looking up ----------------------------------------------------------------------------

    def check(self, image: str | os.PathLike[str] | bytes, *, scope: str = DEFAULT_SCOPE, top: int = 10) -> CheckResult:
        """Is this picture (a path, URL or bytes) already in ``scope``? Stores nothing.

        Raises ``InputError`` subclasses for unreadable images.
        """
        src = read_source(image, max_bytes=self.limits.max_bytes, fetch=self.fetch)
        return self.check_analysis(analyse(src.data, name=src.name, limits=self.limits), scope=scope, top=top)

    def check_analysis(
        self, analysis: Analysis, *, scope: str = DEFAULT_SCOPE, top: int = 10, embedding: _Vector | None = None
    ) -> CheckResult:
        """``check`` for an image analysed already (``embedding``: its learned vector, when computed already)."""
        matches = self._check_all(analysis, scope, self._embed(analysis, embedding))
        return CheckResult(fingerprint=analysis.fingerprint, matches=tuple(matches[:top]))

    def _check_all(self, analysis: Analysis, scope: str, v: _Vector | None, given: _Local = None) -> list[CheckMatch]:
        """Every match of an analysed picture, best first, after catching up with other processes.
        Checked with a query's features (its own, its mirror image's and those of the pictures
        within it), not the set kept for storing: ``check`` and ``add_checked`` answer alike."""
        self.refresh()
        features = given if given is not None else lambda: query_features(analysis.image.pixels)
        return self.check_query(Query.of(analysis), features, scope=scope, embedding=v)

    def _embed(self, analysis: Analysis, given: _Vector | None = None) -> _Vector | None:
        """The learned tier's embedding of an analysed picture (its decoded pixels), if it is on."""
        tier = self._learned
        return None if tier is None else given if given is not None else tier.embed(analysis.image.pixels)

    def _stored_vector(self, vector: _Vector | None) -> tuple[str, bytes] | None:
        return None if self._learned is None or vector is None else self._learned.stored(vector)

    def _keep_vector(self, file_pk: int, vector: _Vector | None) -> None:
        """A stored file met again with the tier on and stored without it (``index --learned`` over
        an index built without the tier) keeps the vector just computed: a back-fill as it goes."""
        stored = self._stored_vector(vector)
        if stored is not None and not self._store.embeddings(stored[0], [file_pk]):
            self._store.put_embeddings(stored[0], [(file_pk, stored[1])])

    def _fusion(
        self, vector: _Vector | None, scope: str, exclude_image: int | None
    ) -> Callable[[list[CheckMatch]], list[CheckMatch]] | None:
        """The learned tier's fusion for a query's ``vector`` in ``scope`` (``index.semantic``)."""
        if self._learned is None or vector is None or (scope_pk := self._store.scope_pk(scope)) is None:
            return None
        return self._learned.fusion(vector, self._mirror, self._store, scope_pk, exclude_image)

    def check_query(
        self,
        query: Query,
        features: LocalFeatures | Callable[[], LocalFeatures],
        *,
        scope: str = DEFAULT_SCOPE,
        exclude_image: int | None = None,
        embedding: _Vector | None = None,
    ) -> list[CheckMatch]:
        """The whole cascade for a fingerprinted query, every match best first: hashes, pixel
        digest, local features (``features``, or a function computing them only when the hashes
        settle nothing), then a person's decisions. ``exclude_image`` leaves one stored image out
        of every stage: a stored file checked against the rest of its scope would otherwise match
        itself and cut the cascade short. ``embedding``: the query's, fused in with the learned tier.
        Call ``refresh`` first to see other processes' writes."""
        fuse = self._fusion(embedding, scope, exclude_image)
        return self._cascade.check(query, features, scope, exclude_image=exclude_image, fuse=fuse)

    def similar(self, image_id: str, *, scope: str = DEFAULT_SCOPE, top: int = 10) -> list[CheckMatch]:
        """Stored images that match image ``image_id`` (any of its files), best first, after a person's
        decisions on each pair (as a check applies them: ``Cascade.rule_against``); then, with the
        learned tier, its semantic neighbours apart, best first (``LearnedTier.with_neighbours``).
        Raises ``NotFound``."""
        record = self._store.image(scope, image_id)
        self.refresh()
        found = self._cascade.look_alikes(record)
        if self._learned is None or (scope_pk := self._store.scope_pk(scope)) is None:
            return found[:top]
        return self._learned.with_neighbours(found, record, self._mirror, self._store, scope_pk, top=top)

    def files_near(self, phash: int, *, scope: str = DEFAULT_SCOPE, radius: int = LOOKUP_RADIUS) -> list[StoredFile]:
        """Stored files of ``scope`` whose pHash under a flip or turn of the stored picture is within
        ``radius`` bits of ``phash``, nearest first: a look-up from a hash alone (a client hashed a
        file before uploading it). Sees other processes' changes within ``HASH_LOOKUP_STALENESS``
        seconds, its own at once. Turned copies are found through ``phash_variants_estimated`` (a
        few bits off) and kept when an exact stored variant is within ``radius``: at 16 bits, every
        near duplicate (12 bits or fewer) whose estimate is at most 4 bits off."""
        self.refresh(max_staleness=HASH_LOOKUP_STALENESS)
        scope_pk = self._store.scope_pk(scope)
        if scope_pk is None:
            return []
        mirror = self._mirror
        with mirror.lock:
            files = mirror.kept_files(mirror.near(phash_variants_estimated(phash), radius, scope_pk), self._store.files)
        near = [(turned_distance_bits(phash, f.fingerprint)[0], f) for f in files]
        return [f for d, f in sorted(near, key=lambda df: (df[0], df[1].pk)) if d <= radius]

    def check_hashes(
        self, *, sha256: bytes | None = None, phash: int | None = None, scope: str = DEFAULT_SCOPE
    ) -> list[CheckMatch]:
        """Stored images that match a file known by its hashes alone (a client hashed it before
        uploading), best first: the files with these bytes (``sha256``), the pictures ``files_near``
        finds for ``phash`` scored by pHash alone (``index.hashes``), then a person's decisions about
        the best match, as a check of the picture applies them."""
        same = [] if sha256 is None else self.files_by_sha(sha256, scope=scope)
        near = [] if phash is None else self.files_near(phash, scope=scope)
        return self.apply_decisions(hash_matches(same, near, phash or 0, self.thresholds))

    def apply_decisions(self, matches: list[CheckMatch]) -> list[CheckMatch]:
        """A person's decisions between the best match and the others override the scores
        (``lookalike.match.decision``)."""
        return self._cascade.apply_decisions(matches)

    # ---- stored images and files ---------------------------------------------------------------

    def get(self, image_id: str, *, scope: str = DEFAULT_SCOPE) -> ImageRecord:
        """An image with its files. Raises ``NotFound``."""
        return self._store.image(scope, image_id)

    def images(self, *, scope: str = DEFAULT_SCOPE, after: str = "", limit: int = 100) -> list[ImageRecord]:
        """Images of ``scope`` with their files, ordered by id, starting after ``after`` (for paging)."""
        return self._store.images(scope, after=after, limit=limit)

    def files(self, pks: Sequence[int]) -> list[StoredFile]:
        """The stored files with these rows (missing rows are skipped), in the order asked."""
        return self._store.files(pks)

    def files_by_sha(self, sha256: bytes, *, scope: str = DEFAULT_SCOPE) -> list[StoredFile]:
        """Stored files of ``scope`` with exactly these bytes."""
        return self._store.files_by_sha(scope, sha256)

    def add_files(self, items: Iterable[NewFile]) -> list[tuple[StoredFile, bool]]:
        """Store files as they are, in one transaction, checking nothing and reviewing nothing (for
        callers that match in bulk themselves): each stored file, and whether it is new."""
        return self._store.add_files(items)

    def local_features(self, pks: Sequence[int]) -> dict[int, bytes]:
        """The stored local features of these files (those that have them)."""
        return self._store.local_features(pks)

    def embeddings(self, model: str, pks: Sequence[int]) -> dict[int, bytes]:
        """The stored float16 vectors by ``model`` of these files (those that have one)."""
        return self._store.embeddings(model, pks)

    def put_embeddings(self, model: str, rows: Sequence[tuple[int, bytes]]) -> None:
        """Keep (file row, float16 vector bytes) embeddings by ``model`` of stored files."""
        self._store.put_embeddings(model, rows)

    def set_pixel_digest(self, file_pk: int, fp: Fingerprint) -> None:
        """Keep a pixel digest computed after the file was stored (``fp`` holds it)."""
        self._store.set_pixel_digest(file_pk, fp)

    def scope_lock(self, scope: str) -> AbstractContextManager[None]:
        """Held by one thread of one process at a time per scope: hold it around a check-then-store
        sequence (``add_checked``) that must not race another process's."""
        return self._store.scope_lock(scope)

    def last_change(self) -> int:
        """The newest change's sequence number (asks the database: a health check)."""
        return self._store.last_change()

    def api_key_scope(self, key_hash: bytes) -> str | None:
        """The scope (tenant) of the live API key with this hash, or None."""
        return self._store.api_key_scope(key_hash)

    # ---- review --------------------------------------------------------------------------------

    def review(
        self, *, scope: str | None = DEFAULT_SCOPE, decision: Decision | None = Decision.PENDING
    ) -> list[ReviewPair]:
        """Potential-duplicate pairs (pending by default), best score first."""
        return self._store.reviews(scope, decision)

    def add_review(self, scope: str, a_pk: int, b_pk: int, *, score: float, verdict: str, evidence: str) -> None:
        """Put images ``a_pk`` and ``b_pk`` on the review list (once; a pair recorded keeps its decision)."""
        self._store.add_review(scope, a_pk, b_pk, score=score, verdict=verdict, evidence=evidence)

    def decide(self, pair_pk: int, decision: Decision, *, scope: str | None = None) -> ReviewPair:
        """Record a person's decision on a review pair. Raises ``NotFound``."""
        return self._store.decide(pair_pk, decision, scope)

    def decide_images(self, scope: str, a_pk: int, b_pk: int, decision: Decision) -> None:
        """Record a person's decision on two images, adding the pair if it was not under review."""
        self._store.decide_images(scope, a_pk, b_pk, decision)

    def decisions(self, image_pks: Iterable[int]) -> dict[tuple[int, int], Decision]:
        """Decided pairs touching any of these images, keyed (smaller pk, larger pk)."""
        return self._store.decisions(image_pks)

    def stats(self) -> StoreStats:
        """Counts of what is stored."""
        return self._store.stats()

    def memory_bytes(self) -> int:
        """Bytes held by the in-memory index structures."""
        return self._mirror.nbytes() + (0 if self._learned is None else self._learned.mirror.nbytes())
