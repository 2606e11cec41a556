"""A person's word on a pair overrides its score, with the thresholds the caller judges by."""

from __future__ import annotations

import pytest

from lookalike.config import Thresholds
from lookalike.match import Verdict
from lookalike.match.decision import overrule

CALIBRATED = Thresholds(near_duplicate=0.62, similar=0.30)
STRICT = Thresholds(near_duplicate=0.9, similar=0.5)


@pytest.mark.parametrize("thresholds", [CALIBRATED, STRICT])
def test_a_duplicate_decision_lifts_a_pair_to_the_near_duplicate_threshold_in_use(thresholds: Thresholds) -> None:
    ruling = overrule(0.4, Verdict.SIMILAR, True, thresholds)

    assert (ruling.score, ruling.verdict, ruling.by_person, ruling.linked) == (
        thresholds.near_duplicate, Verdict.NEAR_DUPLICATE, True, True,
    )  # fmt: skip
    assert ruling.explanation("a", "hashes") == "a person marked this as a duplicate of a"
    # a pair never compared (decided on from the review page) gets the same
    assert overrule(0.0, Verdict.DIFFERENT, True, thresholds).score == thresholds.near_duplicate


def test_a_not_duplicate_decision_unlinks_the_pair_below_similar() -> None:
    ruling = overrule(0.95, Verdict.NEAR_DUPLICATE, False, CALIBRATED)

    assert ruling.verdict is Verdict.DIFFERENT and not ruling.linked
    assert ruling.score < CALIBRATED.similar
    assert ruling.explanation("a", "hashes") == "a person marked this as not a duplicate of a"


def test_without_a_decision_or_when_the_hashes_agree_the_score_stands() -> None:
    for duplicate, verdict in ((None, Verdict.SIMILAR), (True, Verdict.SAME_PIXELS)):
        ruling = overrule(0.8, verdict, duplicate, CALIBRATED)
        assert (ruling.score, ruling.verdict, ruling.by_person) == (0.8, verdict, False)
        assert ruling.explanation("a", "hashes") == "hashes"
