"""Checking from hashes alone (``POST /v1/check/hash``): a client that hashed a file before
uploading learns whether the bytes are stored already, and which stored pictures look alike,
without sending the file."""

from __future__ import annotations

from lookalike.fingerprints import Dihedral
from lookalike.index import CheckMatch
from lookalike.index.results import turned_distance_bits
from lookalike.match import QueryVerdict, Verdict, verdict_for
from lookalike.match.explain import describe_turn
from lookalike.match.score import bit_score
from lookalike.service.schemas import HashCheckIn, HashCheckOut, MatchOut
from lookalike.service.state import ServiceState

__all__ = ["check_hashes"]


def check_hashes(state: ServiceState, tenant: str, query: HashCheckIn) -> HashCheckOut:
    """Exact by SHA-256; near by pHash within ``LOOKUP_RADIUS`` bits under any of the eight flips
    and turns of a stored picture (``Index.files_near``), as ``check`` searches, scored by pHash alone
    with ``check``'s thresholds; then a person's decisions about the best match, as a check of the
    picture applies them (``Index.apply_decisions``)."""
    index = state.index
    best: dict[int, CheckMatch] = {}
    if query.sha256 is not None:
        for f in index.files_by_sha(bytes.fromhex(query.sha256), scope=tenant):
            best[f.image_pk] = CheckMatch(f.image_id, f, 1.0, Verdict.IDENTICAL, "the same bytes (SHA-256)")
    if query.phash is not None:
        code = int(query.phash, 16)
        for f in index.files_near(code, scope=tenant):
            bits, turn = turned_distance_bits(code, f.fingerprint)
            score = bit_score(bits, 64)
            if f.image_pk in best and best[f.image_pk].score >= score:
                continue
            turned = "" if turn is Dihedral.IDENTITY else f", {describe_turn(turn)}"
            why = f"pHash {bits}/64 bits apart{turned} (hashes only)"
            best[f.image_pk] = CheckMatch(f.image_id, f, score, verdict_for(score, index.thresholds), why)
    ranked = index.apply_decisions(sorted(best.values(), key=lambda m: (-m.score, m.image_id)))
    matches = [MatchOut.of(m) for m in ranked[: state.settings.top]]
    overall = QueryVerdict.of(ranked[0].verdict if ranked else None)
    return HashCheckOut(verdict=overall, matches=matches, upload_needed=overall is not QueryVerdict.IDENTICAL)
