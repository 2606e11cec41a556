"""``Index.add_checked``: one check decides what adding does and which pairs go to the review list;
``Index.check`` stores nothing. On a real SQLite file and a real PostgreSQL database."""

from __future__ import annotations

from pathlib import Path

from lookalike.fingerprints import analyse
from lookalike.index import Index, OnDuplicate, Outcome
from lookalike.index.store.interface import open_store
from tests.index.conftest import jpeg, picture, png, similar_pair, with_text_chunk


def test_a_check_stores_nothing_not_even_a_pixel_digest(db_location: str, tmp_path: Path) -> None:
    im = picture(4)
    stored = tmp_path / "drawing.png"
    stored.write_bytes(png(im))
    with Index(db_location) as ix:
        added = ix.add(stored, id="drawing")
        before = (ix.last_change(), ix.stats())

        assert ix.check(with_text_chunk(im)).verdict == "same_pixels"  # needed the stored file's digest
        assert ix.check(with_text_chunk(im)).verdict == "same_pixels"

        assert (ix.last_change(), ix.stats().files, ix.stats().review_pending) == (
            before[0], before[1].files, before[1].review_pending,
        )  # fmt: skip
    store = open_store(db_location)
    try:
        assert store.files([added.file_pk])[0].fingerprint.pixel_digest is None
    finally:
        store.close()


def test_adding_checked_reports_exactly_the_pairs_it_put_on_the_review_list(db_location: str) -> None:
    a, b = similar_pair()
    with Index(db_location) as ix:
        ix.add(a, id="a")
        ix.add(jpeg(picture(11)), id="stranger")

        done = ix.add_checked(analyse(b, local=True), "b.jpg", on_duplicate=OnDuplicate.REJECT)

        assert done.outcome is Outcome.ADDED and done.image_id is not None
        pairs = ix.review()
        assert done.review == len(pairs) == 1
        assert {pairs[0].a_id, pairs[0].b_id} == {"a", done.image_id}


def test_under_review_a_stored_copy_goes_to_the_review_list_with_its_original(db_location: str) -> None:
    original = picture(5)
    with Index(db_location) as ix:
        ix.add(jpeg(original, 92), id="original")
        copy = analyse(jpeg(original, 60), local=True)

        rejected = ix.add_checked(copy, "copy.jpg")
        stored = ix.add_checked(copy, "copy.jpg", on_duplicate=OnDuplicate.REVIEW)
        again = ix.add_checked(copy, "copy.jpg", on_duplicate=OnDuplicate.REVIEW)

        assert (rejected.outcome, rejected.image_id) == (Outcome.REJECTED, None)
        assert rejected.because is not None and rejected.because.image_id == "original"
        assert stored.outcome is Outcome.ADDED and stored.review == 1
        (pair,) = ix.review()
        assert {pair.a_id, pair.b_id} == {"original", stored.image_id}
        assert pair.verdict == "near_duplicate"
        assert (again.outcome, again.image_id, again.review) == (Outcome.PRESENT, stored.image_id, 0)
        assert ix.stats().images == 2


def test_a_rendition_an_image_holds_already_is_not_stored_twice(db_location: str) -> None:
    with Index(db_location) as ix:
        ix.add(jpeg(picture(6)), id="beach", rendition="small")

        taken = ix.add_checked(analyse(jpeg(picture(7)), local=True), "x", image_id="beach", rendition="small")
        other = ix.add_checked(analyse(jpeg(picture(7)), local=True), "x", image_id="beach", rendition="large")

        assert (taken.outcome, taken.image_id) == (Outcome.RENDITION_TAKEN, "beach")
        assert (other.outcome, other.image_id) == (Outcome.ADDED, "beach")
        assert sorted(f.rendition for f in ix.get("beach").files) == ["large", "small"]
