"""Checking from hashes alone (``POST /v1/check/hash``): a client that hashed a file before
uploading learns whether the bytes are stored already, and which stored pictures look alike,
without sending the file."""

from __future__ import annotations

from lookalike.match import QueryVerdict
from lookalike.service.schemas import HashCheckIn, HashCheckOut, MatchOut
from lookalike.service.state import ServiceState

__all__ = ["check_hashes"]


def check_hashes(state: ServiceState, tenant: str, query: HashCheckIn) -> HashCheckOut:
    """The answer to one hash check in ``tenant``: ``Index.check_hashes`` (exact by SHA-256; near by
    pHash under any of the eight flips and turns of a stored picture, scored by pHash alone with
    ``check``'s thresholds; then a person's decisions), the best ``top`` matches."""
    ranked = state.index.check_hashes(
        sha256=None if query.sha256 is None else bytes.fromhex(query.sha256),
        phash=None if query.phash is None else int(query.phash, 16),
        scope=tenant,
    )
    matches = [MatchOut.of(m) for m in ranked[: state.settings.top]]
    overall = QueryVerdict.of(ranked[0].verdict if ranked else None)
    return HashCheckOut(verdict=overall, matches=matches, upload_needed=overall is not QueryVerdict.IDENTICAL)
