"""Which stored pictures become candidates of a query: one rule for every engine.

A stored picture is a candidate when, under some flip or turn of the query, its pHash is within
``PHASH_RADIUS`` bits *and* its PDQ within ``PDQ_RADIUS`` bits of the query turned that way.
The incremental ``Index`` and the scale-out join (``lookalike.scale.join``) both call it.

Why 8 pHash bits: the query's pHash is computed under each of its eight flips and turns, so a
flipped or turned copy meets its original at the few bits a re-encode or resize moves, not at
the bits an estimate of the turn would get wrong; copies whose frame or content changed more
(crops, captions, screenshots) are reached by the nearest pHashes beyond the radius and by the
crop tier's local descriptors (``index.cascade``), not by widening the radius. Unrelated
pictures differ in about 32 of pHash's 64 bits, so within 8 bits under eight turns a random
picture is admitted with probability about 2.2e-9 (0.02 random candidates per image at ten
million, 2 at a billion), where 16 bits admitted 3e-4 (3,100 at ten million). And exact search
within 8 bits costs about 2e-3 n^2 code comparisons for n pictures under eight turns (three
substrings of 22, 21 and 21 bits, each searched within 2), where 16 bits cost 0.56 n^2: the
difference between a 10 M join of minutes and one of days. On the public benchmark, 8 bits
instead of 16 left uAP at 0.9919 and raised recall at 90 % precision from 0.9900 to 0.9908
(fewer unrelated candidates crowd the true one out of local verification).

Why PDQ as well: pHash codes of real pictures are not spread evenly (dark, blank and
featureless pictures crowd together), and PDQ is a second, largely independent 256-bit hash:
unrelated pictures differ in 128 bits (standard deviation 8), so within 100 bits a random pair
passes with probability about 2e-4. Nothing the hashes alone would call a near duplicate is
lost: beyond 100 PDQ bits a pair's hash score (``match.score.hash_score``) is below 0.61
whatever its pHash, under the ``near_duplicate`` threshold of 0.62.

Why the nearest few only within 12 bits past 16,384 rows (``NEAREST_RADIUS``,
``NEAREST_ANY_UP_TO``): beyond the radius, the cascade also looks at the five stored pictures of
the scope whose pHash is nearest the query's, for local verification to settle (crops,
captions). Unrelated pHashes lie within 12 bits of each other with probability 2.3e-7, within 14
with 3.5e-6 and within 16 with 3.9e-5: at a million pictures a query has 0.2, 3.5 and 39
strangers that near, at ten million 2, 35 and 390 (more where real pHashes crowd), so in a large
index the nearest five of a copy farther than about 14 bits are strangers whatever the rule. Yet
finding the exact five cost a scan of every row once they are far (14.6 ms a query at a million
rows, against 0.22 ms for a radius search within 12 bits). A small index (at most 16,384 rows a
scope, where a scan is cheap) keeps the exact five however far: there they reach real copies (the
public benchmark's 555 references: bounded at 12 bits too, its uAP fell from 0.9929 to 0.9904 and
its captions' recall from 0.974 to 0.939, and a lone original stopped finding its tight crop).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints import Dihedral, Fingerprint
from lookalike.fingerprints.bits import hamming_bytes, hamming_int
from lookalike.match.query import Query

__all__ = [
    "NEAREST_ANY_UP_TO",
    "NEAREST_RADIUS",
    "PDQ_RADIUS",
    "PHASH_RADIUS",
    "candidate_mask",
    "is_candidate",
    "retrieves",
]

#: pHash bits (of 64) under the query's best-matching flip or turn
PHASH_RADIUS = 8
#: PDQ bits (of 256) under the same flip or turn
PDQ_RADIUS = 100
#: pHash bits (of 64, the query unturned) within which the nearest few stored pictures are looked at
#: beyond ``PHASH_RADIUS`` (``index.cascade``) in a scope of more than ``NEAREST_ANY_UP_TO`` rows
NEAREST_RADIUS = 12
#: rows of a scope up to which its nearest few are looked at however far (a small index)
NEAREST_ANY_UP_TO = 1 << 14


def is_candidate(phash_bits: int, pdq_bits: int | None) -> bool:
    """Whether a stored picture at these distances from a query (turned alike) is a candidate.
    ``pdq_bits`` is None when the query's turned PDQ is not known (a query without its colour
    grid): pHash alone decides then."""
    return phash_bits <= PHASH_RADIUS and (pdq_bits is None or pdq_bits <= PDQ_RADIUS)


def candidate_mask(phash_bits: npt.NDArray[np.int64], pdq_bits: npt.NDArray[np.int64]) -> npt.NDArray[np.bool_]:
    """``is_candidate`` over arrays of distances."""
    return (phash_bits <= PHASH_RADIUS) & (pdq_bits <= PDQ_RADIUS)


def retrieves(query: Query, stored: Fingerprint) -> bool:
    """``is_candidate`` for a query and a stored fingerprint, under each flip or turn of the query
    whose pHash is within ``PHASH_RADIUS`` (the query's turned PDQ computed only for those)."""
    for k, code in enumerate(query.fingerprint.phash_variants):
        phash_bits = hamming_int(code, stored.phash)
        if phash_bits > PHASH_RADIUS:
            continue
        turned = query.turned(Dihedral(k))
        if is_candidate(phash_bits, None if turned is None else hamming_bytes(turned.pdq, stored.pdq)):
            return True
    return False
