"""The candidate rule: pHash close under a turn, and PDQ close under the same turn."""

from __future__ import annotations

from dataclasses import replace

import pytest

from lookalike.fingerprints import fingerprint_bytes
from lookalike.match import Query
from lookalike.match.retrieval import PDQ_RADIUS, PHASH_RADIUS, is_candidate, retrieves
from tests.images import encode, photo


def _flip_bits(data: bytes, n: int) -> bytes:
    value = int.from_bytes(data, "big") ^ ((1 << n) - 1)
    return value.to_bytes(len(data), "big")


@pytest.fixture(scope="module")
def query_fp():  # type: ignore[no-untyped-def]
    return fingerprint_bytes(encode(photo(seed=21), "PNG"))


@pytest.mark.parametrize(
    ("phash_bits", "pdq_bits", "candidate"),
    [(0, 0, True), (PHASH_RADIUS, PDQ_RADIUS, True), (PHASH_RADIUS + 1, 0, False), (0, PDQ_RADIUS + 1, False)],
)
def test_a_stored_picture_is_a_candidate_only_when_both_hashes_agree(
    query_fp, phash_bits: int, pdq_bits: int, candidate: bool
) -> None:  # type: ignore[no-untyped-def]
    variants = (query_fp.phash ^ ((1 << phash_bits) - 1), *query_fp.phash_variants[1:])
    stored = replace(query_fp, sha256=bytes(32), phash_variants=variants, pdq=_flip_bits(query_fp.pdq, pdq_bits))
    assert is_candidate(phash_bits, pdq_bits) is candidate
    assert retrieves(Query(query_fp), stored) is candidate


def test_without_the_turned_pdq_phash_alone_decides() -> None:
    assert is_candidate(PHASH_RADIUS, None) and not is_candidate(PHASH_RADIUS + 1, None)
