"""Checking from hashes alone (``POST /v1/check/hash``): a client that hashed a file before
uploading learns whether the bytes are stored already, and which stored pictures look alike,
without sending the file."""

from __future__ import annotations

from dataclasses import dataclass, replace

from lookalike.index import Decision, StoredFile
from lookalike.match import Verdict, verdict_for
from lookalike.match.score import bit_score
from lookalike.service.schemas import HashCheckIn, HashCheckOut, MatchOut
from lookalike.service.state import ServiceState

__all__ = ["check_hashes"]


@dataclass(frozen=True, slots=True)
class _Found:
    """The best evidence for one stored image."""

    score: float
    verdict: Verdict
    explanation: str
    file: StoredFile


def check_hashes(state: ServiceState, tenant: str, query: HashCheckIn) -> HashCheckOut:
    """Exact by SHA-256; near by pHash within ``RETRIEVAL_RADIUS`` bits (``Index.files_near``), scored
    by pHash alone; then a person's decisions about the best match, as a check of the picture would."""
    index = state.index
    best: dict[str, _Found] = {}
    if query.sha256 is not None:
        for f in index.store.files_by_sha(tenant, bytes.fromhex(query.sha256)):
            best[f.image_id] = _Found(1.0, Verdict.IDENTICAL, "the same bytes (SHA-256)", f)
    if query.phash is not None:
        code = int(query.phash, 16)
        near = index.files_near(code, scope=tenant)
        for f in near:
            bits = (f.fingerprint.phash ^ code).bit_count()
            score = bit_score(bits, 64)
            if f.image_id in best and best[f.image_id].score >= score:
                continue
            verdict = verdict_for(score, index.thresholds)
            best[f.image_id] = _Found(score, verdict, f"pHash {bits}/64 bits apart (hashes only)", f)
    ranked = _apply_decisions(state, sorted(best.values(), key=lambda m: (-m.score, m.file.image_id)))
    matches = [_out(m) for m in ranked[: state.settings.top]]
    overall = matches[0].verdict if matches and matches[0].verdict != Verdict.DIFFERENT.value else "unique"
    return HashCheckOut(verdict=overall, matches=matches, upload_needed=overall != Verdict.IDENTICAL.value)


def _out(m: _Found) -> MatchOut:
    return MatchOut(
        id=m.file.image_id, score=round(m.score, 4), verdict=m.verdict.value, explanation=m.explanation,
        rendition=m.file.rendition,
    )  # fmt: skip


def _apply_decisions(state: ServiceState, ranked: list[_Found]) -> list[_Found]:
    """What a person decided between the best match and the others overrides the hashes, as in
    ``Index.check`` (one indexed query, and only when there is a duplicate and something else)."""
    if len(ranked) < 2 or not ranked[0].verdict.is_duplicate:
        return ranked
    anchor = ranked[0].file.image_pk
    decided = state.index.store.decisions([anchor])
    if not decided:
        return ranked
    thresholds = state.index.thresholds
    out = [ranked[0]]
    for m in ranked[1:]:
        d = decided.get((min(anchor, m.file.image_pk), max(anchor, m.file.image_pk)))
        if d is Decision.NOT_DUPLICATE:
            m = replace(
                m, score=min(m.score, thresholds.similar * 0.99), verdict=Verdict.DIFFERENT,
                explanation=f"a person marked this as not a duplicate of {ranked[0].file.image_id}",
            )  # fmt: skip
        elif d is Decision.DUPLICATE and not m.verdict.is_duplicate:
            m = replace(
                m, score=max(m.score, thresholds.near_duplicate), verdict=Verdict.NEAR_DUPLICATE,
                explanation=f"a person marked this as a duplicate of {ranked[0].file.image_id}",
            )  # fmt: skip
        out.append(m)
    return sorted(out, key=lambda m: (-m.score, m.file.image_id))
