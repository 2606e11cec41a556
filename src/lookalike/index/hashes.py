"""A check from hashes alone (``Index.check_hashes``): a client that hashed a file before
uploading learns whether the bytes are stored already, and which stored pictures look alike,
without sending the file."""

from __future__ import annotations

from collections.abc import Sequence

from lookalike.config import Thresholds
from lookalike.index.results import CheckMatch, turned_distance_bits
from lookalike.index.store.records import StoredFile
from lookalike.match import Verdict
from lookalike.match.candidate import match_phash
from lookalike.match.evidence import Basis, Evidence, render_evidence

__all__ = ["HASH_LOOKUP_STALENESS", "LOOKUP_RADIUS", "hash_matches"]

# A look-up from hashes alone (``files_near``) may use an in-memory index this many seconds old
# rather than ask the database for changes every time: a service answering hash checks by the
# thousand spends a third of its database round trips on that question. Checks of pictures and
# this process's own writes are always current.
HASH_LOOKUP_STALENESS = 0.2
# A pHash alone is searched wider than ``match.retrieval``'s rule: nothing else can reach an edited
# copy, and one look-up affords the n/14 comparisons of 16 bits that a join of all pairs cannot.
LOOKUP_RADIUS = 16


def hash_matches(
    same_bytes: Sequence[StoredFile], near: Sequence[StoredFile], phash: int, thresholds: Thresholds
) -> list[CheckMatch]:
    """One match per stored image, best first: ``identical`` for the files of ``same_bytes``, and
    the files ``near`` the pHash ``phash`` (none when no pHash was sent) scored by pHash alone under
    the flip or turn of the stored picture that matches best (``match_phash``), with ``thresholds``."""
    best: dict[int, CheckMatch] = {}
    same = render_evidence(Evidence(basis=Basis.SAME_BYTES))
    for f in same_bytes:
        best[f.image_pk] = CheckMatch(f.image_id, f, 1.0, Verdict.IDENTICAL, same)
    for f in near:
        m = match_phash(*turned_distance_bits(phash, f.fingerprint), thresholds)
        if f.image_pk not in best or best[f.image_pk].score < m.score:
            best[f.image_pk] = CheckMatch(f.image_id, f, m.score, m.verdict, m.explanation)
    return sorted(best.values(), key=lambda m: (-m.score, m.image_id))
