"""``Index``: the persistent collection answers "have I already got this image?" on real pictures and a
real SQLite file: exact and edited copies, renditions, removal, restarts, two processes, scopes, review."""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import Sequence
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from lookalike.errors import NotFound, StoreError
from lookalike.fingerprints import Analysis, analyse
from lookalike.index import CheckMatch, Decision, Index
from lookalike.index.hashes import HASH_LOOKUP_STALENESS, LOOKUP_RADIUS
from lookalike.match import Verdict, compare
from lookalike.match.retrieval import PHASH_RADIUS
from tests.images import EXAMPLES
from tests.index.conftest import SAMPLES, jpeg, picture, png, shifted, similar_pair, with_text_chunk

# ---- helpers ---------------------------------------------------------------------------------------


def edited(kind: str, im: Image.Image) -> bytes:
    """An edited copy of ``im`` as a person would make one."""
    w, h = im.size
    if kind == "jpeg_q60":
        return jpeg(im, 60)
    if kind == "resized_half":
        return jpeg(im.resize((w // 2, h // 2), Image.Resampling.LANCZOS), 85)
    if kind == "mirrored":
        return jpeg(im.transpose(Image.Transpose.FLIP_LEFT_RIGHT), 90)
    if kind == "png_of_jpeg":
        return png(im)
    raise AssertionError(kind)


def verdict_of(matches: Sequence[CheckMatch], image_id: str) -> str:
    """The verdict a check gave the stored image ``image_id`` ("absent" when not listed)."""
    return next((m.verdict.value for m in matches if m.image_id == image_id), "absent")


def answer(ix: Index, data: bytes, scope: str = "default") -> tuple[str, list[tuple[str, str, float]]]:
    """A check's answer as a user reads it: the verdict and (id, verdict, score) of each match."""
    r = ix.check(data, scope=scope)
    return r.verdict, [(m.image_id, m.verdict.value, round(m.score, 4)) for m in r.matches]


# ---- finding copies ---------------------------------------------------------------------------------


def test_the_same_bytes_are_found_as_identical(index: Index) -> None:
    data = jpeg(picture(1))
    index.add(data, id="holiday")
    index.add(jpeg(picture(2)), id="other")

    result = index.check(data)

    assert result.verdict == "identical"
    assert result.matches[0].image_id == "holiday"
    assert result.matches[0].score == 1.0
    assert all(m.verdict is not Verdict.IDENTICAL for m in result.matches[1:])


@pytest.mark.parametrize("kind", ["jpeg_q60", "resized_half", "mirrored", "png_of_jpeg"])
def test_an_edited_copy_is_a_near_duplicate_of_the_right_image(index: Index, kind: str) -> None:
    original = picture(1)
    index.add(jpeg(original, 92), id="original")
    for seed in (2, 3, 4):
        index.add(jpeg(picture(seed), 92), id=f"stranger-{seed}")

    result = index.check(edited(kind, original))

    assert result.verdict == "near_duplicate"
    assert result.matches[0].image_id == "original"
    assert all(not m.verdict.is_duplicate for m in result.matches[1:])


def test_edited_copies_of_real_photos_are_found_among_them(index: Index) -> None:
    photos = sorted((EXAMPLES / "library").glob("*.jpg"))
    if len(photos) < 3:
        pytest.skip("examples/library has too few photos")
    for path in photos:
        index.add(path, id=path.stem)

    for path in photos:
        with Image.open(path) as im:
            smaller = im.convert("RGB").resize((im.width * 2 // 3, im.height * 2 // 3), Image.Resampling.LANCZOS)
        result = index.check(jpeg(smaller, 70))
        assert (result.verdict, result.matches[0].image_id) == ("near_duplicate", path.stem)
        assert [m.image_id for m in result.matches if m.verdict.is_duplicate] == [path.stem]


def test_an_unrelated_picture_is_unique(index: Index) -> None:
    for seed in (1, 2, 3):
        index.add(jpeg(picture(seed)), id=f"p{seed}")

    result = index.check(jpeg(picture(9)))

    assert result.verdict == "unique"
    assert not any(m.verdict.is_duplicate for m in result.matches)


def test_adding_the_same_bytes_twice_keeps_one_image(index: Index) -> None:
    data = jpeg(picture(1))

    first = index.add(data, id="first")
    again = index.add(data)
    renamed = index.add(data, id="another-name")

    assert first.added and first.image_id == "first"
    assert (again.image_id, again.added) == ("first", False)
    assert (renamed.image_id, renamed.added) == ("first", False)
    assert (index.stats().images, index.stats().files) == (1, 1)
    with pytest.raises(NotFound):
        index.get("another-name")


def test_renditions_of_one_image_are_reported_once(index: Index) -> None:
    big = picture(7, 1200, 900)
    small_bytes = jpeg(big.resize((400, 300), Image.Resampling.LANCZOS))
    big_bytes = jpeg(big)
    index.add(small_bytes, id="x", rendition="400x")
    index.add(big_bytes, id="x", rendition="1200x")
    index.add(jpeg(picture(8, 1200, 900)), id="y")

    assert {f.rendition for f in index.get("x").files} == {"400x", "1200x"}
    for query, expected in [
        (small_bytes, "identical"),
        (big_bytes, "identical"),
        (jpeg(big.resize((800, 600), Image.Resampling.LANCZOS), 80), "near_duplicate"),
    ]:
        result = index.check(query)
        assert result.verdict == expected
        ids = [m.image_id for m in result.matches]
        assert ids.count("x") == 1, ids
        assert ids[0] == "x"
    assert index.check(small_bytes).matches[0].file.rendition == "400x"
    assert index.check(big_bytes).matches[0].file.rendition == "1200x"


def test_a_removed_image_is_no_longer_found(index: Index) -> None:
    original = picture(1)
    data = jpeg(original)
    index.add(data, id="gone")
    index.add(jpeg(picture(2)), id="kept")

    index.remove("gone")

    for query in (data, edited("resized_half", original)):
        result = index.check(query)
        assert result.verdict == "unique"
        assert "gone" not in [m.image_id for m in result.matches]
    with pytest.raises(NotFound):
        index.get("gone")
    with pytest.raises(NotFound):
        index.remove("gone")
    assert index.get("kept").image_id == "kept"
    # and it can come back
    assert index.add(data, id="gone").added
    assert index.check(data).verdict == "identical"


def test_get_of_an_unknown_id_raises_not_found(index: Index) -> None:
    index.add(jpeg(picture(1)), id="known")

    with pytest.raises(NotFound, match="nope") as caught:
        index.get("nope")

    assert isinstance(caught.value, StoreError)
    assert index.get("known").files[0].fingerprint.width == 480


def test_similar_lists_the_edited_copies(index: Index) -> None:
    original = picture(1)
    index.add(jpeg(original, 92), id="original")
    index.add(edited("resized_half", original), id="smaller")
    index.add(edited("mirrored", original), id="mirrored")
    index.add(jpeg(picture(2)), id="stranger")

    found = index.similar("original")

    duplicates = {m.image_id for m in found if m.verdict.is_duplicate}
    assert duplicates == {"smaller", "mirrored"}
    assert [m.score for m in found] == sorted((m.score for m in found), reverse=True)
    assert "original" not in [m.image_id for m in found]
    with pytest.raises(NotFound):
        index.similar("nope")


def test_a_reopened_index_answers_the_same(db_location: str) -> None:
    original = picture(1)
    queries = [jpeg(original), edited("resized_half", original), edited("mirrored", original), jpeg(picture(5))]
    with Index(db_location) as ix:
        ix.add(queries[0], id="original")
        for seed in (2, 3, 4):
            ix.add(jpeg(picture(seed)), id=f"p{seed}")
        ix.remove("p3")
        before = [answer(ix, q) for q in queries]

    with Index(db_location) as reopened:
        after = [answer(reopened, q) for q in queries]

    assert after == before
    assert [a[0] for a in after] == ["identical", "near_duplicate", "near_duplicate", "unique"]
    assert all(m[0] != "p3" for a in after for m in a[1])


def test_two_indexes_on_one_file_see_each_others_changes(db_location: str) -> None:
    original = picture(1)
    data, copy = jpeg(original), edited("resized_half", original)
    with Index(db_location) as writer, Index(db_location) as reader:
        assert reader.check(copy).verdict == "unique"

        writer.add(data, id="shared")
        # the edited copy is found through the in-memory hash index, which only the change log updates
        assert answer(reader, copy)[0] == "near_duplicate"
        assert reader.check(copy).matches[0].image_id == "shared"
        assert reader.check(data).verdict == "identical"

        writer.remove("shared")
        assert reader.check(copy).verdict == "unique"
        assert reader.check(data).verdict == "unique"

        assert reader.add(data, id="back").added
        assert writer.check(copy).matches[0].image_id == "back"
        assert writer.check(copy).verdict == "near_duplicate"


def test_hash_look_ups_see_another_process_s_writes_within_their_staleness(db_location: str) -> None:
    data = jpeg(picture(2))
    phash = analyse(data).fingerprint.phash
    with Index(db_location) as writer, Index(db_location) as reader:
        assert reader.files_near(phash) == []
        writer.add(data, id="shared")
        time.sleep(HASH_LOOKUP_STALENESS * 1.5)
        assert [f.image_id for f in reader.files_near(phash)] == ["shared"]
        writer.remove("shared")
        time.sleep(HASH_LOOKUP_STALENESS * 1.5)
        assert reader.files_near(phash) == []
        # a process's own writes show at once
        reader.add(data, id="again")
        assert [f.image_id for f in reader.files_near(phash)] == ["again"]
        reader.remove("again")
        assert reader.files_near(phash) == []


def test_a_png_resaved_with_a_text_chunk_has_the_same_pixels(index: Index, tmp_path: Path) -> None:
    im = picture(4)
    stored = tmp_path / "drawing.png"
    stored.write_bytes(png(im))
    resaved = with_text_chunk(im)
    assert resaved != stored.read_bytes()
    index.add(stored, id="drawing")

    result = index.check(resaved)

    assert result.verdict == "same_pixels"
    assert result.matches[0].image_id == "drawing"
    assert result.matches[0].score == 1.0
    # a visibly edited copy of the same size is not "the same pixels"
    touched = im.copy()
    touched.paste((255, 0, 0), (10, 10, 60, 60))
    assert index.check(png(touched)).verdict == "near_duplicate"


def test_same_pixels_is_found_for_an_image_added_as_bytes(index: Index) -> None:
    im = picture(4)
    index.add(png(im), id="drawing")

    assert index.check(with_text_chunk(im)).verdict == "same_pixels"


def test_check_finds_a_slightly_cropped_copy_that_compare_calls_a_near_duplicate(index: Index) -> None:
    original = picture(5)
    a, b = jpeg(original, 92), jpeg(shifted(original, 30), 92)
    assert compare(a, b).verdict is Verdict.NEAR_DUPLICATE
    index.add(a, id="original")

    assert index.check(b).verdict in ("near_duplicate", "similar")


# ---- scopes -----------------------------------------------------------------------------------------


def test_an_image_in_one_scope_is_invisible_from_another(index: Index) -> None:
    original = picture(1)
    data = jpeg(original)
    in_a = index.add(data, scope="alice")

    for query in (data, edited("resized_half", original)):
        result = index.check(query, scope="bob")
        assert result.verdict == "unique"
        assert result.matches == ()
    with pytest.raises(NotFound):
        index.get(in_a.image_id, scope="bob")
    with pytest.raises(NotFound):
        index.remove(in_a.image_id, scope="bob")
    with pytest.raises(NotFound):
        index.similar(in_a.image_id, scope="bob")
    phash = index.check(data, scope="alice").fingerprint.phash
    assert [f.image_id for f in index.files_near(phash, scope="alice")] == [in_a.image_id]
    assert index.files_near(phash, scope="bob") == []

    # the same bytes in bob's scope are bob's own image, removable without touching alice's
    in_b = index.add(data, scope="bob")
    assert in_b.added
    index.remove(in_b.image_id, scope="bob")
    assert index.check(data, scope="alice").verdict == "identical"
    assert index.check(data, scope="bob").verdict == "unique"
    assert index.get(in_a.image_id, scope="alice").scope == "alice"


_SCOPES = ("a", "b", "c")
_POOL = 5


@cache
def _pool() -> tuple[tuple[Analysis, Analysis], ...]:
    """(original, edited copy) analyses of a few unrelated pictures, computed once."""
    out = []
    for seed in range(100, 100 + _POOL):
        im = picture(seed, 240, 180)
        out.append((analyse(jpeg(im), name=f"p{seed}"), analyse(edited("resized_half", im), name=f"p{seed}-copy")))
    return tuple(out)


@settings(max_examples=20, deadline=None, database=None)
@given(
    placed=st.lists(st.tuples(st.integers(0, _POOL - 1), st.sampled_from(_SCOPES)), min_size=1, max_size=8),
    removal=st.integers(0, 7),
)
def test_checks_only_ever_answer_from_their_own_scope(placed: list[tuple[int, str]], removal: int) -> None:
    pool = _pool()
    with tempfile.TemporaryDirectory() as tmp, Index(Path(tmp) / "index.sqlite") as ix:
        ids: dict[tuple[int, str], str] = {}
        for pic, scope in placed:
            (result,) = ix.add_fingerprints([(pool[pic][0].fingerprint, f"p{pic}")], scope=scope)
            ids[pic, scope] = result.image_id
        gone = sorted(ids)[removal % len(ids)]
        ix.remove(ids.pop(gone), scope=gone[1])

        for (pic, (original, copy)), scope in itertools.product(enumerate(pool), _SCOPES):
            own = {i for (p, s), i in ids.items() if s == scope}
            stored = (pic, scope) in ids
            for query, strongest in ((original, "identical"), (copy, "near_duplicate")):
                result = ix.check_analysis(query, scope=scope)
                assert all(m.file.scope == scope and m.image_id in own for m in result.matches)
                if stored:
                    assert result.verdict == strongest
                    assert result.matches[0].image_id == ids[pic, scope]
                else:
                    assert not any(m.verdict.is_duplicate for m in result.matches)

        for (pic, scope), image_id in ids.items():
            assert ix.get(image_id, scope=scope).scope == scope
            for other in _SCOPES:
                if (pic, other) not in ids:
                    with pytest.raises(NotFound):
                        ix.get(image_id, scope=other)
                    with pytest.raises(NotFound):
                        ix.remove(image_id, scope=other)


# ---- review -----------------------------------------------------------------------------------------


def _review_pair_source(which: str) -> tuple[bytes, bytes]:
    if which == "generated":
        return similar_pair()
    left, right = SAMPLES / "motorcycle_left.png", SAMPLES / "motorcycle_right.png"
    if not (left.is_file() and right.is_file()):
        pytest.skip(f"benchmark corpus not found at {SAMPLES}")
    return left.read_bytes(), right.read_bytes()


# The corpus's motorcycle_left/right stereo pair was the real-photo case here; local features now
# fit both views with one transform (160 inliers) and call it near_duplicate, which the benchmark
# lists as ambiguous. Telling such pairs apart needs a pixel check of the aligned overlap.
@pytest.mark.parametrize("which", ["generated"])
def test_a_similar_pair_goes_to_review_and_a_decision_is_honoured(db_location: str, which: str) -> None:
    a, b = _review_pair_source(which)
    assert compare(a, b).verdict is Verdict.SIMILAR
    with Index(db_location) as ix:
        ix.add(a, id="a")
        ix.add(jpeg(picture(11)), id="stranger")
        ix.add(b, id="b")

        (pair,) = ix.review()
        assert {pair.a_id, pair.b_id} == {"a", "b"}
        assert (pair.verdict, pair.decision) == ("similar", Decision.PENDING)
        assert verdict_of(ix.similar("b"), "a") == "similar"

        decided = ix.decide(pair.pk, Decision.NOT_DUPLICATE)
        assert decided.decision is Decision.NOT_DUPLICATE and decided.decided_at is not None
        assert ix.review() == []
        assert [p.decision for p in ix.review(decision=None)] == [Decision.NOT_DUPLICATE]
        assert (ix.stats().review_pending, ix.stats().review_decided) == (0, 1)

    with Index(db_location) as ix:  # the decision is stored, not remembered
        for query, mine, other in ((b, "b", "a"), (a, "a", "b")):
            result = ix.check(query)
            assert result.verdict == "identical" and result.matches[0].image_id == mine
            assert verdict_of(result.matches, other) in ("different", "absent")

        ix.decide(pair.pk, Decision.DUPLICATE)
        result = ix.check(b)
        assert result.matches[0].image_id == "b"
        assert verdict_of(result.matches, "a") == "near_duplicate"
        assert verdict_of(ix.check(a).matches, "b") == "near_duplicate"
        with pytest.raises(NotFound):
            ix.decide(pair.pk + 1000, Decision.DUPLICATE)


def test_removing_an_image_takes_its_review_pairs_with_it(index: Index) -> None:
    a, b = similar_pair()
    index.add(a, id="a")
    index.add(b, id="b")
    assert len(index.review()) == 1

    index.remove("b")

    assert index.review(decision=None) == []
    assert index.stats().review_pending == 0


def test_unrelated_pictures_are_not_put_up_for_review(index: Index) -> None:
    pictures = {f"p{seed}": jpeg(picture(seed, 160, 120), 90) for seed in range(32)}
    for image_id, data in pictures.items():
        index.add(data, id=image_id)

    flagged = [(p.a_id, p.b_id, verdict_of(index.check(pictures[p.b_id]).matches, p.a_id)) for p in index.review()]

    # every pair put up for review is one that check itself calls at least similar
    assert [f for f in flagged if f[2] in ("different", "absent")] == []


def test_a_lookup_by_phash_alone_reaches_further_than_a_checks_candidates(index: Index) -> None:
    """A client that sends only a pHash has no PDQ or local features to reach an edited copy by:
    its look-up searches ``LOOKUP_RADIUS`` bits, wider than ``check``'s candidate rule."""
    stored = index.add(jpeg(picture(3)))
    phash = int(index.check(jpeg(picture(3))).fingerprint.phash)
    assert PHASH_RADIUS < 12 <= LOOKUP_RADIUS
    twelve_off = phash ^ sum(1 << b for b in range(0, 64, 5)[:12])
    assert [f.image_id for f in index.files_near(twelve_off)] == [stored.image_id]
    far_off = phash ^ sum(1 << b for b in range(0, 64, 3)[: LOOKUP_RADIUS + 1])
    assert index.files_near(far_off) == []
