"""The evidence a person reads: one sentence per finding, the same from every front end."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lookalike import compare
from lookalike.fingerprints import Dihedral
from lookalike.index import Index
from lookalike.match import Verdict
from lookalike.match.evidence import Basis, Evidence, LearnedRole, render_evidence
from lookalike.match.local import LocalEvidence
from lookalike.scan import Evidence as MemberReason
from lookalike.scan import EvidenceKind
from tests.images import encode, photo

CROP = LocalEvidence(inliers=120, matches=200, stored_shown=0.5, query_filled=1.0)


def test_each_finding_reads_as_one_sentence() -> None:
    lines = {
        Basis.SAME_BYTES: Evidence(basis=Basis.SAME_BYTES),
        "same picture": Evidence(basis=Basis.LOCAL_FEATURES, local=CROP, same_picture=True),
        "region": Evidence(basis=Basis.LOCAL_FEATURES, local=CROP, same_picture=False),
        "hashes": Evidence(basis=Basis.HASHES, verdict=Verdict.SIMILAR, phash_bits=14),
        "edited": Evidence(basis=Basis.HASHES, verdict=Verdict.NEAR_DUPLICATE, edits=("resized to 50% (160x120)",)),
        "hash only": Evidence(basis=Basis.PHASH_ONLY, phash_bits=3, turn=Dihedral.FLIP_LR),
        "person": Evidence(basis=Basis.PERSON, duplicate=False, other="cat-1"),
        "learned": Evidence(basis=Basis.LEARNED, cosine=0.913, role=LearnedRole.RAISED, cascade="different pictures"),
    }
    said = {k: render_evidence(e) for k, e in lines.items()}

    assert said == {
        Basis.SAME_BYTES: "the same file (identical bytes)",
        "same picture": "same picture, 120 matching keypoints, cropped to 50% of the original",
        "region": "shares a region: 120 matching keypoints, cropped to 50% of the original",
        "hashes": "looks alike but may not be the same picture (pHash differs in 14 of 64 bits); worth a look",
        "edited": "same picture, resized to 50% (160x120)",
        "hash only": "pHash 3/64 bits apart, mirrored left to right (hashes only)",
        "person": "a person marked this as not a duplicate of cat-1",
        "learned": "different pictures; learned embedding cosine 0.91 raised the score",
    }
    assert str(lines["region"]) == said["region"]


def test_identical_bytes_read_alike_in_compare_check_by_hash_and_find(tmp_path: Path) -> None:
    data = encode(photo(seed=3), "JPEG", quality=90)
    with Index(tmp_path / "index.db") as index:
        index.add(data)
        by_hash = index.check_hashes(sha256=hashlib.sha256(data).digest())

    same = render_evidence(Evidence(basis=Basis.SAME_BYTES))
    assert compare(data, data).explanation == same
    assert [(m.verdict, m.explanation) for m in by_hash] == [(Verdict.IDENTICAL, same)]
    assert MemberReason(EvidenceKind.SAME_FILE).text == same
