"""Verdicts a person expects, on real photos and the edits people make to them."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Callable
from pathlib import Path

import pytest
from PIL import Image, ImageOps, PngImagePlugin

from lookalike import Comparison, Dihedral, Signal, Verdict, compare
from lookalike.fingerprints import analyse
from lookalike.match import compare_analyses
from tests.images import CORPUS, EXAMPLES, encode, flat, with_orientation

SUBJECTS = {
    "ant": CORPUS / "photos" / "ants_train_0013035.jpg",
    "coffee": EXAMPLES / "library" / "coffee.jpg",
}


@pytest.fixture(params=list(SUBJECTS), scope="module")
def subject(request: pytest.FixtureRequest) -> Path:
    path = SUBJECTS[request.param]
    if not path.is_file():
        pytest.skip(f"{path} not found (benchmark corpus absent)")
    return path


def _upright(path: Path) -> Image.Image:
    return ImageOps.exif_transpose(Image.open(path)).convert("RGB")


def _png_with_text(im: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "saved again, with a caption in the metadata")
    return encode(im, "PNG", pnginfo=info)


def _scaled(im: Image.Image, factor: float) -> Image.Image:
    return im.resize((round(im.width * factor), round(im.height * factor)), Image.Resampling.LANCZOS)


# name -> (edit, expected transform, words the explanation should contain, words it must not contain)
Edit = Callable[[Image.Image], bytes]
NEAR_EDITS: dict[str, tuple[Edit, Dihedral, tuple[str, ...], tuple[str, ...]]] = {
    "jpeg-quality-50": (lambda im: encode(im, "JPEG", quality=50), Dihedral.IDENTITY, ("re-encoded",), ("turned",)),
    "half-size": (lambda im: encode(_scaled(im, 0.5), "JPEG", quality=90), Dihedral.IDENTITY, ("50%",), ()),
    "grayscale": (lambda im: encode(im.convert("L"), "JPEG", quality=90), Dihedral.IDENTITY, ("grayscale",), ()),
    "webp": (lambda im: encode(im, "WEBP", quality=80), Dihedral.IDENTITY, ("WebP",), ()),
    "upscaled-1.5x": (lambda im: encode(_scaled(im, 1.5), "JPEG", quality=90), Dihedral.IDENTITY, ("enlarged",), ()),
    # pixels stored turned, with an Orientation tag so that it shows the same: nothing was turned for the viewer
    "exif-rotated": (lambda im: with_orientation(im, 6, quality=92), Dihedral.IDENTITY, (), ("turned", "mirrored")),
    "mirrored": (lambda im: encode(ImageOps.mirror(im), "JPEG", quality=90), Dihedral.FLIP_LR, ("mirrored",), ()),
    "upside-down": (lambda im: encode(ImageOps.flip(im), "JPEG", quality=90), Dihedral.FLIP_UD, ("upside down",), ()),
    "turned-90": (
        lambda im: encode(im.transpose(Image.Transpose.ROTATE_90), "JPEG", quality=90),
        Dihedral.ROT90,
        ("turned 90",),
        (),
    ),
}


def _one_line(c: Comparison) -> None:
    assert c.explanation and "\n" not in c.explanation


def test_same_file_is_identical(subject: Path) -> None:
    c = compare(subject, subject)
    assert c.verdict is Verdict.IDENTICAL
    assert c.score == 1.0
    assert "same file" in c.explanation
    _one_line(c)


def test_lossless_resave_is_same_pixels(subject: Path) -> None:
    png = encode(_upright(subject), "PNG")
    c = compare(subject, png)
    assert c.verdict is Verdict.SAME_PIXELS
    assert c.score == 1.0
    _one_line(c)


def test_metadata_change_is_same_pixels(subject: Path) -> None:
    im = _upright(subject)
    plain, captioned = encode(im, "PNG"), _png_with_text(im)
    assert plain != captioned
    assert Image.open(io.BytesIO(captioned)).text["Comment"].startswith("saved again")
    c = compare(plain, captioned)
    assert c.verdict is Verdict.SAME_PIXELS
    assert "metadata" in c.explanation


@pytest.mark.parametrize("edit", list(NEAR_EDITS))
def test_edited_copy_is_a_near_duplicate(subject: Path, edit: str) -> None:
    make, transform, says, never_says = NEAR_EDITS[edit]
    c = compare(subject, make(_upright(subject)))

    assert c.verdict is Verdict.NEAR_DUPLICATE, c.explanation
    assert c.verdict.is_duplicate
    assert c.transform is transform
    assert 0.7 <= c.score <= 1.0
    _one_line(c)
    for word in says:
        assert word in c.explanation, c.explanation
    for word in never_says:
        assert word not in c.explanation, c.explanation


def test_different_ant_photos_are_different(ant_photos: list[Path]) -> None:
    for a, b in [(ant_photos[0], ant_photos[1]), (ant_photos[2], ant_photos[3]), (ant_photos[0], ant_photos[-1])]:
        c = compare(a, b)
        assert c.verdict is Verdict.DIFFERENT, (a.name, b.name, c.explanation)
        assert not c.verdict.is_duplicate
        assert c.explanation.startswith("different pictures")
        _one_line(c)


def test_different_library_photos_are_different() -> None:
    library = sorted((EXAMPLES / "library").glob("*.jpg"))
    for a, b in itertools.combinations(library, 2):
        assert compare(a, b).verdict is Verdict.DIFFERENT, (a.name, b.name)


@pytest.mark.parametrize(
    ("original", "upload", "verdict", "word"),
    [
        ("library/chelsea.jpg", "uploads/chelsea_mirrored.jpg", Verdict.NEAR_DUPLICATE, "mirrored"),
        ("library/motorcycle.jpg", "uploads/motorcycle_gray.jpg", Verdict.NEAR_DUPLICATE, "grayscale"),
        ("library/coffee.jpg", "uploads/coffee_small.webp", Verdict.NEAR_DUPLICATE, "WebP"),
        ("library/coffee.jpg", "uploads/coins_new.jpg", Verdict.DIFFERENT, "different"),
    ],
)
def test_committed_uploads(original: str, upload: str, verdict: Verdict, word: str) -> None:
    c = compare(EXAMPLES / original, EXAMPLES / upload)
    assert c.verdict is verdict
    assert word in c.explanation


def test_scores_are_ordered(ant_photos: list[Path]) -> None:
    original = ant_photos[0]
    identical = compare(original, original)
    same = compare(original, encode(_upright(original), "PNG"))
    near = compare(original, encode(_upright(original), "JPEG", quality=50))
    far = compare(original, ant_photos[1])
    for c in (identical, same, near, far):
        assert 0.0 <= c.score <= 1.0
    assert identical.score >= same.score >= near.score > far.score
    assert far.score < 0.45


def test_evidence_carries_every_hash_and_pixel_metric(subject: Path, ant_photos: list[Path]) -> None:
    near = compare(subject, encode(_upright(subject), "JPEG", quality=50))
    far = compare(subject, ant_photos[5])
    for c in (near, far):
        assert {h.signal for h in c.hashes} == set(Signal)
        for h in c.hashes:
            assert 0 <= h.distance_bits <= h.bits == h.signal.bits
        assert c.pixels is not None
        d = json.loads(json.dumps(c.to_dict()))
        assert set(d["hashes"]) == {s.value for s in Signal}
        assert set(d["pixels"]) == {"ssim", "nrmse", "mse", "histogram_distance", "template_correlation"}
        assert d["verdict"] == c.verdict.value
    assert near.pixels is not None and far.pixels is not None
    # the evidence points the right way
    assert near.pixels.ssim > far.pixels.ssim
    assert near.pixels.template_correlation > far.pixels.template_correlation
    assert near.pixels.mse < far.pixels.mse and near.pixels.nrmse < far.pixels.nrmse
    assert near.pixels.histogram_distance < far.pixels.histogram_distance
    by_near = {h.signal: h.distance_bits for h in near.hashes}
    by_far = {h.signal: h.distance_bits for h in far.hashes}
    assert by_near[Signal.PHASH] < by_far[Signal.PHASH]
    assert by_near[Signal.PDQ] < by_far[Signal.PDQ]


def test_comparison_is_named_after_its_inputs() -> None:
    a = EXAMPLES / "library" / "coffee.jpg"
    c = compare(a, (EXAMPLES / "uploads" / "coffee_small.webp").read_bytes())
    assert c.to_dict()["a"] == str(a)
    assert c.to_dict()["b"] == "<bytes>"


FLAT_COLOURS = [
    (0, 0, 0), (255, 255, 255), (128, 128, 128), (40, 40, 40), (220, 220, 220), (200, 30, 30),
    (30, 30, 200), (30, 200, 30), (250, 250, 0), (0, 200, 200), (120, 60, 20), (255, 128, 0),
]  # fmt: skip


def test_plain_colours_far_apart_are_different() -> None:
    analyses = {c: analyse(encode(flat(c), "PNG")) for c in FLAT_COLOURS}
    wrong = []
    for a, b in itertools.combinations(FLAT_COLOURS, 2):
        if sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5 < 150:
            continue  # near colours: 'similar' would be fair
        verdict = compare_analyses(analyses[a], analyses[b]).verdict
        if verdict is not Verdict.DIFFERENT:
            wrong.append(f"{a} vs {b}: {verdict.value}")
    assert not wrong, "; ".join(wrong)
