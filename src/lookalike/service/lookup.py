"""Checking from hashes alone (``POST /v1/check/hash``): a client that hashed a file before
uploading learns whether the bytes are stored already, and which stored pictures look alike,
without sending the file."""

from __future__ import annotations

from lookalike.index import StoredFile
from lookalike.index.collection import RETRIEVAL_RADIUS
from lookalike.match import Verdict, verdict_for
from lookalike.match.score import bit_score
from lookalike.service.schemas import HashCheckIn, HashCheckOut, MatchOut
from lookalike.service.state import ServiceState

__all__ = ["check_hashes"]


def check_hashes(state: ServiceState, tenant: str, query: HashCheckIn) -> HashCheckOut:
    """Exact by SHA-256; near by pHash within ``RETRIEVAL_RADIUS`` bits, scored by pHash alone."""
    store = state.index.store
    best: dict[str, tuple[float, str, str, StoredFile]] = {}
    if query.sha256 is not None:
        for f in store.files_by_sha(tenant, bytes.fromhex(query.sha256)):
            best[f.image_id] = (1.0, Verdict.IDENTICAL.value, "the same bytes (SHA-256)", f)
    if query.phash is not None:
        code = int(query.phash, 16)
        with state.searching() as index:
            index.refresh()
            # the in-memory pHash index has no public radius search yet: Index.check needs the
            # picture itself. The ids it returns span tenants; rows are filtered by tenant below.
            pks, _ = index._phash.radius(code, RETRIEVAL_RADIUS)
        for f in store.files([int(p) for p in pks]):
            if f.scope != tenant:
                continue
            bits = (f.fingerprint.phash ^ code).bit_count()
            score = bit_score(bits, 64)
            if f.image_id in best and best[f.image_id][0] >= score:
                continue
            verdict = verdict_for(score, state.index.thresholds).value
            best[f.image_id] = (score, verdict, f"pHash {bits}/64 bits apart (hashes only)", f)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[0]))[: state.settings.top]
    matches = [
        MatchOut(id=i, score=round(s, 4), verdict=v, explanation=why, rendition=f.rendition)
        for i, (s, v, why, f) in ranked
    ]
    overall = matches[0].verdict if matches and matches[0].verdict != Verdict.DIFFERENT.value else "unique"
    return HashCheckOut(verdict=overall, matches=matches, upload_needed=overall != Verdict.IDENTICAL.value)
