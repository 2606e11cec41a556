"""Which member of a group is the original: the *source* the other copies were derived from.

Each link of a group says which way its two pictures were derived when the evidence can tell
(``derived_from``); the keeper is a member nothing is derived from (``choose_source``).

Directions, each from evidence about the pictures, never from names:

1. **same pixels**: a lossless file holding exactly the pixels of a lossy one was made from it
   (a lossy encoder never reproduces another file's pixels); so was one holding them within a
   level (another decoder's rounding: a re-encode moves colour edges by far more), and one whose
   pixels carry the lossy JPEG's 8 x 8 grid at its DC step (``fingerprints.provenance``);
2. **transparency, colour, palette**: a copy without the other's alpha channel is derived from it
   (flattening loses transparency; nothing restores it), a grayscale picture from the colour one
   (colourising is rare and never exact), a picture of 256 colours or fewer from one of more than
   a thousand (a palette is a lossy reduction, whatever the format);
3. **padding**: a picture with margins (letterbox bars, a page or window, a frame, a caption area
   of text on a plain ground, ``margins``) around the other's content, or around the whole other
   picture, is derived from it;
4. **size**: a smaller copy of the same picture is derived from the larger, *unless* the larger
   one is an enlargement of the smaller: its spectrum stops where the smaller one's resolution
   ends (``is_enlargement``: the power just above that frequency, 1.15-1.5 x, is under 4.5 % of
   the power just below it, 0.6-0.9 x; real detail decays smoothly). Measured on the public
   benchmark's photos (72 groups): 150 % enlargements gave 0.03-0.06 (71 of 72 under 0.045),
   real pictures against their 50-90 % copies 0.05 and up (288 pairs). A synthetic picture of
   flat shapes and white noise is not told apart this way (0.066): its noise floor is flat.

Members no link says are derived are the candidates; when there are none (a cycle) or several,
quality decides, best first: real resolution (pixels, minus those of a known enlargement),
lossless encoding (a palette counts as lossy), then the oldest modification time, then fewer
compression losses (JPEG quality estimated from the quantisation tables; an unknown lossy
encoding counts as quality 75, the usual default), colour, the larger picture without padding,
more links in the group (the
original is linked to each of its copies, two copies often only through it), then the path.
Age comes before the quality setting: of two lossy files of one size, the later one may be a
re-save of the earlier at a higher setting (editors save at 90-95 by default), which adds no
detail back, while a file derived from another is written after it; the setting decides only
between files of the same age.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lookalike.match import Verdict

__all__ = [
    "ENLARGEMENT_CLIFF",
    "PALETTE_COLOURS",
    "Link",
    "SourceFacts",
    "choose_source",
    "derived_from",
    "is_enlargement",
    "quality_key",
    "spectrum_profile",
]

#: power just above the smaller copy's resolution over power just below it, under which the
#: larger picture is an enlargement (see the module docstring for the measurement)
ENLARGEMENT_CLIFF = 0.045
#: linear size ratio under which two sizes count as the same picture size (rounding, crops of a few %)
_SAME_SIZE = 1.15
#: share of the area in flat margins from which one picture is "padded" compared with another
#: (thin bars: 6 pixels a side of 500 are 2.4 %)
_PADDED = 0.015
#: relative difference of aspect ratios that counts as the same shape
_ASPECT_TOLERANCE = 0.015
#: colours of a palette at most (GIF, PNG-8, BMP-8)
PALETTE_COLOURS = 256
#: distinct colours from which a picture is more than a palette with some noise on it
_RICH_COLOURS = 1024
#: quality assumed for a lossy file whose encoder settings cannot be read (WebP, AVIF, HEIC)
_UNKNOWN_QUALITY = 75.0
#: bins of ``spectrum_profile`` over 0..Nyquist
PROFILE_BINS = 64
#: side of the centred window the spectrum is measured on
_WINDOW = 512


@dataclass(frozen=True, slots=True)
class SourceFacts:
    """What the source choice looks at in one member (``path`` identifies it)."""

    path: str
    width: int
    height: int
    byte_size: int
    mime: str
    lossless: bool
    gray: bool
    jpeg_quality: float | None
    padding: float
    content_aspect: float
    mtime_ns: int
    alpha: bool = False
    #: distinct colours (``fingerprints.provenance``), None or 0 when unknown
    colours: int | None = None
    #: a JPEG's luminance DC step, or the one a lossless file's pixels show (0: none)
    grid_step: int = 0

    @property
    def palette(self) -> bool:
        """A colour picture stored losslessly in 256 colours or fewer: a reduction, whatever the format."""
        return self.lossless and not self.gray and self.colours is not None and 0 < self.colours <= PALETTE_COLOURS

    @property
    def area(self) -> int:
        """Pixels."""
        return self.width * self.height

    @property
    def content_area(self) -> float:
        """Pixels inside the flat margins."""
        return self.area * (1.0 - self.padding)

    @property
    def quality(self) -> float:
        """Estimated encoding quality 0..100 (lossless 101, a palette 0)."""
        if self.palette:
            return 0.0
        if self.lossless:
            return 101.0
        return self.jpeg_quality if self.jpeg_quality is not None else _UNKNOWN_QUALITY


@dataclass(frozen=True, slots=True)
class Link:
    """A linking pair of the group, by path, with the cascade's verdict."""

    a: str
    b: str
    verdict: Verdict
    score: float
    #: a lossless and a lossy file of one size whose pixels differ by a level at most (``decoded_alike``)
    decoded: bool = False


def spectrum_profile(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """Mean power of the luminance spectrum in ``PROFILE_BINS`` rings from 0 to the Nyquist
    frequency, on a centred window of at most 512 x 512 pixels (Hann-tapered). ``pixels`` must
    be at the file's own resolution."""
    grey = pixels.astype(np.float64) @ np.array([0.299, 0.587, 0.114]) if pixels.ndim == 3 else pixels.astype(float)
    h, w = grey.shape
    side = min(_WINDOW, h, w)
    if side < 16:
        return np.zeros(PROFILE_BINS)
    y0, x0 = (h - side) // 2, (w - side) // 2
    win = grey[y0 : y0 + side, x0 : x0 + side]
    taper = np.hanning(side)
    power = np.abs(np.fft.rfft2((win - win.mean()) * np.outer(taper, taper))) ** 2
    fy = np.fft.fftfreq(side)[:, None] * 2
    fx = np.fft.rfftfreq(side)[None, :] * 2
    ring = np.minimum((np.sqrt(fx * fx + fy * fy) * PROFILE_BINS).astype(np.int64), PROFILE_BINS)
    sums = np.bincount(ring.ravel(), weights=power.ravel(), minlength=PROFILE_BINS + 1)[:PROFILE_BINS]
    counts = np.bincount(ring.ravel(), minlength=PROFILE_BINS + 1)[:PROFILE_BINS]
    return np.asarray(sums / np.maximum(counts, 1), dtype=np.float64)


def _band(profile: npt.NDArray[np.float64], lo: float, hi: float) -> float:
    a, b = int(lo * PROFILE_BINS), max(int(lo * PROFILE_BINS) + 1, int(np.ceil(min(hi, 1.0) * PROFILE_BINS)))
    return float(profile[a:b].mean()) if b > a and a < PROFILE_BINS else 0.0


def is_enlargement(profile: npt.NDArray[np.float64], ratio: float) -> bool:
    """Whether a picture with this ``spectrum_profile`` is another, ``ratio`` times smaller
    (linear), enlarged: its power stops at 1/ratio of its Nyquist frequency."""
    if ratio < _SAME_SIZE or not profile.any():
        return False
    cut = 1.0 / ratio
    # past the resampling filter's transition on both sides (Lanczos rolls off over about 0.7-1.1 x cut)
    below = _band(profile, 0.6 * cut, 0.9 * cut)
    above = _band(profile, 1.15 * cut, 1.5 * cut)
    return below > 0 and above < ENLARGEMENT_CLIFF * below


def derived_from(
    a: SourceFacts, b: SourceFacts, verdict: Verdict, enlarged: bool = False, decoded: bool = False
) -> tuple[str, str] | None:
    """(derived path, why) when the evidence says which of two linked members was made from the
    other, else None. ``enlarged``: the larger of the two is known to be an enlargement of the
    smaller (``is_enlargement``); ``decoded``: their pixels differ by a level at most (``Link``).
    The directions of the module docstring are asked in its order; the first that tells wins."""
    if verdict is Verdict.IDENTICAL:
        return None
    return (
        _by_encoding(a, b, verdict, decoded) or _by_colour(a, b) or _by_margins(a, b) or _by_size_alone(a, b, enlarged)
    )


def _by_encoding(a: SourceFacts, b: SourceFacts, verdict: Verdict, decoded: bool) -> tuple[str, str] | None:
    """Direction 1: a lossless file holding a lossy one's pixels (exactly, within a level, or with
    its JPEG grid) was made from it."""
    if a.lossless == b.lossless:
        return None
    copy, lossy = (a, b) if a.lossless else (b, a)
    if verdict is Verdict.SAME_PIXELS:
        return copy.path, "the same pixels stored losslessly from a lossy file"
    if decoded:
        return copy.path, "a lossy file's decode stored losslessly (by another decoder: a level apart)"
    if (
        lossy.mime == "image/jpeg" and copy.grid_step >= 3 and copy.grid_step == lossy.grid_step
        and (copy.width, copy.height) == (lossy.width, lossy.height)
    ):  # fmt: skip
        return copy.path, "a lossless copy of a JPEG: its pixels carry that JPEG's 8x8 grid"
    return None


def _by_colour(a: SourceFacts, b: SourceFacts) -> tuple[str, str] | None:
    """Direction 2: transparency lost, colour dropped, or a palette made from a rich picture."""
    if a.alpha != b.alpha:
        return (b if a.alpha else a).path, "a copy that lost the other's transparency"
    if a.gray != b.gray and not (a.palette or b.palette):  # dithering onto a palette adds colour
        return (a if a.gray else b).path, "a grayscale copy of a colour picture"
    if a.palette != b.palette:
        reduced, rich = (a, b) if a.palette else (b, a)
        if (rich.colours or 0) > _RICH_COLOURS:
            return reduced.path, f"a copy reduced to a palette of {reduced.colours} colours"
    return None


def _by_margins(a: SourceFacts, b: SourceFacts) -> tuple[str, str] | None:
    """Direction 3: flat margins around the other's content, or an area added around the whole other."""
    padded, plain = (a, b) if a.padding > b.padding else (b, a)
    # a picture on a plain background (a drawing, a stamp) has margins of its own: the padded
    # copy must have clearly more, not a little more after a crop
    if (
        padded.padding - plain.padding >= _PADDED
        and plain.padding <= padded.padding / 2
        and _padded_frame(padded, plain)
    ):
        return padded.path, "the picture with flat margins (padding, a page) around it"
    for outer, inner in ((a, b), (b, a)):
        if _frames_whole(outer, inner):
            return outer.path, "the whole picture with an area added around it (a frame, a caption area)"
    return None


def _by_size_alone(a: SourceFacts, b: SourceFacts, enlarged: bool) -> tuple[str, str] | None:
    """Direction 4: the smaller copy was made from the larger, unless the larger is an enlargement."""
    big, small = _by_size(a, b)
    ratio = _size_ratio(a, b)
    if ratio < _SAME_SIZE:
        return None
    if enlarged:
        return big.path, f"an enlargement ({100 * ratio:.0f}%) with no detail beyond the smaller picture's"
    return small.path, "a smaller copy"


def _padded_frame(padded: SourceFacts, plain: SourceFacts) -> bool:
    """Whether ``padded``'s margins made its frame: its whole frame has another shape than
    ``plain``'s while what their margins frame has the same (letterbox bars). A picture with a
    border of its own and a crop of it keep one shape, as do copies with noise or an overlay."""

    def aspect(f: SourceFacts) -> float:
        return f.width / max(1, f.height)

    def close(x: float, y: float, tolerance: float) -> bool:
        return abs(x - y) <= tolerance * max(x, y)

    # the margins' edges are found to a pixel or two on a reduced picture: a looser match inside
    if not close(padded.content_aspect, plain.content_aspect, 2 * _ASPECT_TOLERANCE):
        return False
    if not close(aspect(padded), aspect(plain), _ASPECT_TOLERANCE):
        return True
    # a frame of even width keeps the shape: then the plain picture has no margins, and the padded
    # one frames it at its own size (a crop of a picture with a border of its own is smaller)
    inner_width = (padded.content_area * padded.content_aspect) ** 0.5
    return plain.padding < _PADDED and close(inner_width, plain.width, 2 * _ASPECT_TOLERANCE)


def _frames_whole(outer: SourceFacts, inner: SourceFacts) -> bool:
    """Whether ``outer``'s margins frame all of ``inner``: what they frame has ``inner``'s whole
    shape while ``outer`` has another (a caption area beside or below, a deeper bottom margin),
    whatever margins ``inner`` seems to have of its own (a plain sky or backdrop reads as one)."""
    shape_outer, shape_inner = outer.width / max(1, outer.height), inner.width / max(1, inner.height)
    return (
        outer.padding >= _PADDED
        and abs(outer.content_aspect - shape_inner) <= 2 * _ASPECT_TOLERANCE * max(outer.content_aspect, shape_inner)
        and abs(shape_outer - shape_inner) > _ASPECT_TOLERANCE * max(shape_outer, shape_inner)
    )


def _by_size(a: SourceFacts, b: SourceFacts) -> tuple[SourceFacts, SourceFacts]:
    return (a, b) if (a.area, b.path) > (b.area, a.path) else (b, a)


def _size_ratio(a: SourceFacts, b: SourceFacts) -> float:
    """Linear ratio of the pictures' sizes, larger over smaller."""
    big, small = _by_size(a, b)
    return float((big.area / max(1, small.area)) ** 0.5)


def quality_key(f: SourceFacts, links: int, enlarged: bool) -> tuple[object, ...]:
    """Sort key of the quality fallback (see the module docstring): best first."""
    return (
        enlarged, -f.area if not enlarged else 0, not f.lossless or f.palette, f.mtime_ns, -f.quality, f.gray,
        f.padding >= _PADDED, -links, f.path,
    )  # fmt: skip


#: a linking pair by path: (a, b, verdict, the larger one's path, linear size ratio)
_Sized = tuple[str, str, Verdict, str, float]


def choose_source(
    facts: Mapping[str, SourceFacts],
    links: Iterable[Link],
    profile: Callable[[SourceFacts], npt.NDArray[np.float64] | None],
) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """Members best first (the first is the source) and, for each member known to be derived,
    (the member it is derived from, why). Independent of the order of ``facts`` and ``links``.

    ``profile(member)`` gives the member's ``spectrum_profile`` at its own resolution (or None
    when it cannot be read); it is asked only of a leading candidate that is larger than a
    member it is linked to, to tell a real larger picture from an enlargement."""
    pairs = sorted(
        {
            (min(k.a, k.b), max(k.a, k.b)): (k.verdict, k.decoded)
            for k in links
            if k.a != k.b and k.a in facts and k.b in facts
        }.items()
    )
    degree: dict[str, int] = {p: 0 for p in facts}
    for (a, b), _ in pairs:
        degree[a] += 1
        degree[b] += 1
    tested: dict[str, npt.NDArray[np.float64] | None] = {}
    # each pair's size relation, and what it says before any spectrum is known
    sized: list[_Sized] = [
        (a, b, verdict, _by_size(facts[a], facts[b])[0].path, _size_ratio(facts[a], facts[b]))
        for (a, b), (verdict, _) in pairs
    ]
    decoded = {pair for pair, (_, alike) in pairs if alike}
    plain = {
        (a, b): derived_from(facts[a], facts[b], verdict, False, (a, b) in decoded) for a, b, verdict, _, _ in sized
    }
    while True:
        order, derived = _ranked(facts, sized, plain, tested, degree)
        if not order:
            return order, derived
        # the leading candidate's size links are settled by its spectrum and the spectra of the
        # larger members it is linked to: an untested larger member may be an enlargement
        top = order[0]
        untested = sorted({big for a, b, _, big, ratio in sized if top in (a, b) and ratio >= _SAME_SIZE} - set(tested))
        if not untested:
            return order, derived
        for path in untested:
            tested[path] = profile(facts[path])


def _ranked(
    facts: Mapping[str, SourceFacts],
    sized: list[_Sized],
    plain: Mapping[tuple[str, str], tuple[str, str] | None],
    tested: Mapping[str, npt.NDArray[np.float64] | None],
    degree: Mapping[str, int],
) -> tuple[list[str], dict[str, tuple[str, str]]]:
    """One pass of ``choose_source`` with the spectra ``tested`` so far: members best first (those
    the fewest links say are derived, then by quality) and what each derived member comes from
    (its largest parent)."""
    derived: dict[str, tuple[str, str]] = {}
    incoming: dict[str, int] = {p: 0 for p in facts}
    enlargements: set[str] = set()
    for a, b, verdict, big_path, ratio in sized:
        shape = tested.get(big_path)
        enlarged = shape is not None and ratio >= _SAME_SIZE and is_enlargement(shape, ratio)
        said = derived_from(facts[a], facts[b], verdict, True) if enlarged else plain[(a, b)]
        if said is None:
            continue
        child, why = said
        parent = b if child == a else a
        incoming[child] += 1
        if enlarged and child == big_path:
            enlargements.add(child)
        if child not in derived or (facts[parent].area, parent) > (facts[derived[child][0]].area, derived[child][0]):
            derived[child] = (parent, why)
    fewest = min(incoming.values(), default=0)
    order = sorted(facts, key=lambda p: (incoming[p] > fewest, quality_key(facts[p], degree[p], p in enlargements)))
    return order, derived
