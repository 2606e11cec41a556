"""A group's members against each other: which one the others derive from, and each member's
evidence in ``check``'s words.

``source_order`` ranks a group's paths source first (``source.choose_source``), settling a lossy
and a lossless file the cascade called near duplicates as ``same_pixels`` when their pixels are
the same (``settled_verdict``), from what a ``SourceEvidence`` knows of the members: one
machine's index and cache (``StoredEvidence``) or a scale-out run's Parquet files.
``MemberEvidence`` redoes a member's evidence against its match, the member as the copy and its
match as the original, from the stored fingerprints and local features.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from lookalike.decode import decode_image, read_source
from lookalike.errors import LookalikeError
from lookalike.fingerprints import Dihedral, Fingerprint, full_pixel_digest
from lookalike.fingerprints.local import LocalFeatures
from lookalike.fingerprints.provenance import decoded_alike
from lookalike.index import Index
from lookalike.match import Verdict, worth_pixel_digest
from lookalike.match.explain import explain, is_grayscale
from lookalike.match.local import LOCAL_SIMILAR_INLIERS, describe_local, verify_local
from lookalike.scan.cache import FindCache, RowFacts, StoredPair
from lookalike.scan.results import Evidence, EvidenceKind
from lookalike.scan.source import Link, SourceFacts, choose_source, quality_key, spectrum_profile

__all__ = [
    "MemberEvidence",
    "SourceEvidence",
    "StoredEvidence",
    "member_facts",
    "pair_evidence",
    "settled_verdict",
    "source_order",
]


def pair_evidence(p: StoredPair) -> Evidence:
    """The evidence a pair carries: a person's word, or the cascade's explanation."""
    return Evidence(EvidenceKind.PERSON) if p.by_person else Evidence(EvidenceKind.MATCH, p.evidence)


class SourceEvidence(Protocol):
    """What choosing a group's source needs of its members beyond their links, whichever engine
    found them: ``find``'s index and cache on one machine (``StoredEvidence``), the fingerprint and
    pair files of a scale-out run (``lookalike.scale``). One decision (``source_order``), two providers."""

    def facts(self, pk: int, path: str) -> SourceFacts:
        """The source-choice facts of index row ``pk`` reached as ``path`` (``member_facts``)."""
        ...

    def spectrum(self, pk: int) -> npt.NDArray[np.float64] | None:
        """The row's ``spectrum_profile`` at its own resolution, or None when it cannot be read."""
        ...

    def same_pixels(self, a_pk: int, b_pk: int) -> bool:
        """Whether two rows of one size that the cascade called near duplicates hold the same
        pixels at full resolution (asked only of a lossless and a lossy one: ``settled_verdict``)."""
        ...

    def decoded(self, a_pk: int, b_pk: int) -> bool:
        """Whether two such rows whose pixels are not the same differ by a level at most: the
        lossless one holds the lossy one's decode by another decoder (``decoded_alike``)."""
        ...


def member_facts(path: str, f: RowFacts, fp: Fingerprint | None, mtime_ns: int) -> SourceFacts:
    """What the source choice looks at in one member: its row's facts, its fingerprint's
    (colour, alpha, bytes) and its path's modification time."""
    return SourceFacts(
        path, f.width, f.height, fp.byte_size if fp else 0, f.mime, f.lossless,
        fp is not None and is_grayscale(fp), f.jpeg_quality, f.padding or 0.0,
        f.content_aspect or f.width / max(1, f.height), mtime_ns, fp is not None and fp.has_alpha,
        f.colours, f.grid_step or 0,
    )  # fmt: skip


def source_order(
    nodes: list[int],
    paths_of: dict[int, list[str]],
    linking: dict[tuple[int, int], StoredPair],
    evidence: SourceEvidence,
) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """The group's paths, source first (``source.choose_source``), and what each derives from.

    Identical bytes are one node: the files of one index row (the same bytes) differ only in path
    and times, and none derives from another, so the source is chosen among one path per row (its
    best by ``quality_key``) and each row's paths follow it in that order. Linking every path of a
    row to every other would make 4.5 M links of 3,000 copies."""
    of: dict[str, SourceFacts] = {}
    pk_of: dict[str, int] = {}
    twins: dict[int, list[str]] = {}
    for pk in nodes:
        facts = {path: evidence.facts(pk, path) for path in paths_of[pk]}
        twins[pk] = sorted(facts, key=lambda path: quality_key(facts[path], 0, False))
        first = twins[pk][0]
        pk_of[first], of[first] = pk, facts[first]
    links: list[Link] = []
    inside = set(nodes)
    for (a, b), p in linking.items():
        if a in inside and b in inside:
            fa, fb = of[twins[a][0]], of[twins[b][0]]
            verdict = settled_verdict(p, fa.lossless, fb.lossless, partial(evidence.same_pixels, a, b))
            decoded = (
                verdict is Verdict.NEAR_DUPLICATE and fa.lossless != fb.lossless
                and (fa.width, fa.height) == (fb.width, fb.height) and evidence.decoded(a, b)
            )  # fmt: skip
            links.append(Link(fa.path, fb.path, verdict, p.score, decoded))
    order, derived = choose_source(of, links, lambda member: evidence.spectrum(pk_of[member.path]))
    for first, (parent, why) in list(derived.items()):
        for twin in twins[pk_of[first]][1:]:
            derived[twin] = (parent, why)
    return [path for first in order for path in twins[pk_of[first]]], derived


def settled_verdict(p: StoredPair, lossless_a: bool, lossless_b: bool, same_pixels: Callable[[], bool]) -> Verdict:
    """The pair's verdict, ``same_pixels`` when a lossless and a lossy file that the cascade called
    near duplicates hold the same pixels (the cascade settles that for a file's best match only):
    which one was made from the other depends on it. ``same_pixels`` is asked only then."""
    if p.verdict is not Verdict.NEAR_DUPLICATE or lossless_a == lossless_b:
        return p.verdict
    return Verdict.SAME_PIXELS if same_pixels() else p.verdict


class StoredEvidence:
    """``SourceEvidence`` on one machine: the facts ``find``'s cache and index keep, spectra kept in
    the cache (computed from the file the first time one is asked for), pixel digests kept in the
    index (computed from the files the first time)."""

    def __init__(
        self,
        index: Index,
        cache: FindCache,
        facts: Mapping[int, RowFacts],
        fps: dict[int, Fingerprint],
        mtime_of: Mapping[str, int],
        paths_of: Mapping[int, list[str]],
    ) -> None:
        self._index, self._cache, self._facts, self._fps = index, cache, facts, fps
        self._mtime_of, self._paths_of = mtime_of, paths_of

    def facts(self, pk: int, path: str) -> SourceFacts:
        """``member_facts`` from the cached row and the stored fingerprint."""
        return member_facts(path, self._facts[pk], self._fps.get(pk), self._mtime_of.get(path, 0))

    def spectrum(self, pk: int) -> npt.NDArray[np.float64] | None:
        """The cached spectrum profile, else the file's, decoded at full size (and kept)."""
        kept = self._cache.spectra([pk]).get(pk)
        if kept is not None:
            return np.frombuffer(kept, dtype=np.float64)
        limits = self._index.limits
        try:
            data = read_source(Path(self._paths_of[pk][0]), max_bytes=limits.max_bytes).data
            shape = spectrum_profile(decode_image(data, limits=limits).pixels)
        except LookalikeError:
            return None
        self._cache.put_spectrum(pk, shape.astype(np.float64).tobytes())
        return shape

    def decoded(self, a_pk: int, b_pk: int) -> bool:
        """Both files, as fingerprinted, decode within a level of each other (``decoded_alike``)."""
        a, b = self._fps.get(a_pk), self._fps.get(b_pk)
        if a is None or b is None or not worth_pixel_digest(a, b):
            return False
        data = [self._unchanged(pk, fp) for pk, fp in ((a_pk, a), (b_pk, b))]
        if not data[0] or not data[1]:
            return False
        try:
            return decoded_alike(data[0], data[1], limits=self._index.limits)
        except LookalikeError:
            return False

    def _unchanged(self, pk: int, fp: Fingerprint) -> bytes:
        """The row's file's bytes when they are still those fingerprinted, else none."""
        try:
            data = read_source(Path(self._paths_of[pk][0]), max_bytes=self._index.limits.max_bytes).data
        except LookalikeError:
            return b""
        return data if hashlib.sha256(data).digest() == fp.sha256 else b""

    def same_pixels(self, a_pk: int, b_pk: int) -> bool:
        """The full-resolution pixel digests agree (each kept in the index once computed)."""
        a, b = self._fps.get(a_pk), self._fps.get(b_pk)
        if a is None or b is None or not worth_pixel_digest(a, b):
            return False
        digests = []
        for pk, fp in ((a_pk, a), (b_pk, b)):
            digest = fp.pixel_digest
            if not digest:
                data = self._unchanged(pk, fp)
                if not data:
                    return False  # unreadable, or changed since it was read
                digest = full_pixel_digest(data, limits=self._index.limits)
                self._fps[pk] = fp.with_pixel_digest(digest)
                self._index.set_pixel_digest(pk, self._fps[pk])
            digests.append(digest)
        return digests[0] == digests[1]


class MemberEvidence:
    """Each member's evidence in ``check``'s words, the member as the copy and its match as the original.

    ``known``: what local features said of copies before (the find cache); ``new`` collects what
    they said now, for the caller to keep."""

    def __init__(
        self,
        index: Index,
        fps: dict[int, Fingerprint],
        linking: dict[tuple[int, int], StoredPair],
        known: dict[tuple[int, int], str | None],
    ) -> None:
        self._index = index
        self._fps = fps
        self._linking = linking
        self._local: dict[int, LocalFeatures | None] = {}
        self._known = known
        self.new: dict[tuple[int, int], str | None] = {}

    def _described(self, pk: int, ref_pk: int) -> str | None:
        """What local features say of ``pk`` as a copy of ``ref_pk`` (None when nothing), computed once."""
        key = (pk, ref_pk)
        if key not in self._known:
            mine, theirs = self._features(pk), self._features(ref_pk)
            found = verify_local(mine, theirs) if mine is not None and theirs is not None else None
            text = None if found is None or found.inliers < LOCAL_SIMILAR_INLIERS else describe_local(found)
            self._known[key] = self.new[key] = text
        return self._known[key]

    def _features(self, pk: int) -> LocalFeatures | None:
        if pk not in self._local:
            data = self._index.local_features([pk]).get(pk)
            self._local[pk] = LocalFeatures.from_bytes(data) if data else None
        return self._local[pk]

    def local_against(self, pk: int, ref_pk: int) -> Evidence | None:
        """What local features say of member ``pk`` as a copy of ``ref_pk`` when they match at all."""
        text = self._described(pk, ref_pk)
        return None if text is None else Evidence(EvidenceKind.LOCAL_FEATURES, text)

    def relative(self, pk: int, ref_pk: int, stored: Evidence, verdict: Verdict) -> Evidence:
        """The evidence of member ``pk`` against ``ref_pk`` (its match), else ``stored``."""
        link = self._linking.get((min(pk, ref_pk), max(pk, ref_pk)))
        copy, original = self._fps.get(pk), self._fps.get(ref_pk)
        if pk == ref_pk or link is None or copy is None or original is None or link.by_person:
            return stored
        if verdict in (Verdict.IDENTICAL, Verdict.SAME_PIXELS):
            return Evidence(EvidenceKind.MATCH, explain(original, copy, verdict))
        if link.by_local_features:
            text = self._described(pk, ref_pk)
            if text is None:
                return stored
            return Evidence(EvidenceKind.LOCAL_FEATURES, text, same_picture=verdict.is_duplicate)
        bits, turn = copy.dihedral_distance_bits(original)
        return Evidence(EvidenceKind.MATCH, explain(original, copy, verdict, transform=Dihedral(turn), phash_bits=bits))
