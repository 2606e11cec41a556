#!/usr/bin/env python3
"""A held-out benchmark for the keeper choice: copies *made from* an original that are bigger, or
lossless in format, than the original, the kinds the public benchmark lacks, plus its usual edits.

    python benchmarks/make_keeper_bench.py CORPUS OUT [--originals 150] [--edits 3] [--seed S]
    lookalike find OUT --db OUT.db --json > OUT.json
    python benchmarks/find_keepers.py OUT OUT.json

OUT/references/ holds the chosen originals (bytes untouched), OUT/queries/ the copies and
OUT/truth.json the truth in the public benchmark's format ({"queries": {name: {"ref", "transform"}}}),
so ``find_keepers.py`` and ``find_quality.py`` score it as they score the public tree.

Each original gets ``--edits`` edits, dealt round-robin from its kind's list so that every edit
kind meets every sort of original; a group then holds the original and a few copies, and a wrong
keeper names the edit that won. The kinds (the first group is what the public benchmark lacks):

- ``frame``: a flat frame (2-12 % of the short side, white, black, grey or a colour), sometimes a
  mat with a thin dark line inside; ``polaroid``: a white border with a deep bottom margin;
- ``caption_beside`` / ``caption_below``: a caption area (light or dark, 20-45 % of the side) with
  lines of text added to the right of or under the picture;
- ``bmp_of_jpeg`` / ``png_of_jpeg``: a JPEG original decoded and saved losslessly, as it decodes
  here (BMP) or with another decoder's colour conversion (the JPEG's YCbCr converted by Pillow's own
  rounding, PNG: pixels off by a level here and there);
- ``gif_palette`` (adaptive 256 colours), ``gif_dither`` (Floyd-Steinberg onto a 256-colour web
  palette), ``png_palette`` (a 64-colour PNG);
- the public benchmark's kinds, with other settings: ``jpeg_q70``, ``webp_q75``, ``resize_60``,
  ``thumb_320``, ``grayscale``, ``crop_15``, ``brightness``, ``blur``, ``hflip``, ``rotate_90``,
  ``letterbox`` (white bars), ``upscale_140``.

Every file gets the same modification time (``--mtime equal``, the default), so that the age of a
file says nothing; ``--mtime copies-older`` makes every copy older than its original, a hard case.
Deterministic: the same corpus and seed give the same files. Needs Pillow and NumPy. Tune nothing
to these files either: they are a sample of copies people make, not the world.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
from collections.abc import Callable

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

Edit = Callable[[Image.Image, bytes, random.Random], "tuple[bytes, str] | None"]

_WORDS = (
    "summer evening by the lake with friends and family the light was golden over the hills "
    "grandma's garden after the rain first day of school a walk in the old town market stall "
    "photo by anna 2019 all rights reserved view from the bridge"
).split()


def rgb(im: Image.Image) -> Image.Image:
    """The picture flattened onto white, as most editors export it."""
    if im.mode in ("RGBA", "LA", "P", "PA"):
        im = im.convert("RGBA")
        bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(bg, im).convert("RGB")
    return im.convert("RGB")


def save(im: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    im.save(buf, fmt, **kw)
    return buf.getvalue()


def as_jpeg_or_png(im: Image.Image, r: random.Random) -> tuple[bytes, str]:
    if r.random() < 0.6:
        return save(rgb(im), "JPEG", quality=r.choice((85, 90, 95))), ".jpg"
    return save(rgb(im), "PNG"), ".png"


def _colour(r: random.Random) -> tuple[int, int, int]:
    return r.choice(
        ((255, 255, 255), (0, 0, 0), (128, 128, 128), (240, 236, 225), tuple(r.randrange(256) for _ in range(3)))
    )  # type: ignore[return-value]


def frame(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    im = rgb(im)
    w, h = im.size
    side = max(2, round(min(w, h) * r.uniform(0.02, 0.12)))
    colour = _colour(r)
    out = Image.new("RGB", (w + 2 * side, h + 2 * side), colour)
    out.paste(im, (side, side))
    if r.random() < 0.4:  # a mat with a thin dark line around the picture
        d = ImageDraw.Draw(out)
        line = max(1, side // 6)
        d.rectangle((side - 2 * line, side - 2 * line, side + w + 2 * line - 1, side + h + 2 * line - 1),
                    outline=(30, 30, 30), width=line)  # fmt: skip
    return as_jpeg_or_png(out, r)


def polaroid(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    im = rgb(im)
    w, h = im.size
    side = max(3, round(min(w, h) * r.uniform(0.04, 0.07)))
    bottom = round(h * r.uniform(0.18, 0.3))
    out = Image.new("RGB", (w + 2 * side, h + side + bottom), (250, 250, 248))
    out.paste(im, (side, side))
    _text(out, (side, h + side, w + side, h + side + bottom), (40, 40, 40), r, lines=1)
    return as_jpeg_or_png(out, r)


def _text(canvas: Image.Image, box: tuple[int, int, int, int], ink: tuple[int, int, int], r: random.Random,
          lines: int) -> None:  # fmt: skip
    """Lines of words inside ``box`` of ``canvas``."""
    x0, y0, x1, y1 = box
    d = ImageDraw.Draw(canvas)
    size = max(9, min((y1 - y0) // (lines + 1), (x1 - x0) // 12))
    font = ImageFont.load_default(size=size)
    y = y0 + size // 2
    for _ in range(lines):
        if y + size > y1:
            break
        words = " ".join(r.choice(_WORDS) for _ in range(8))
        while words and d.textlength(words, font=font) > (x1 - x0) - size:
            words = words.rsplit(" ", 1)[0] if " " in words else ""
        d.text((x0 + size // 2, y), words, font=font, fill=ink)
        y += round(size * 1.4)


def caption_beside(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    im = rgb(im)
    w, h = im.size
    strip = round(w * r.uniform(0.2, 0.45))
    light = r.random() < 0.6
    out = Image.new("RGB", (w + strip, h), (248, 248, 245) if light else (25, 25, 30))
    left = r.random() < 0.25
    out.paste(im, (strip if left else 0, 0))
    x0 = 0 if left else w
    _text(out, (x0, 0, x0 + strip, h), (30, 30, 30) if light else (230, 230, 230), r, lines=r.randint(3, 9))
    return as_jpeg_or_png(out, r)


def caption_below(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    im = rgb(im)
    w, h = im.size
    strip = round(h * r.uniform(0.15, 0.35))
    light = r.random() < 0.5
    out = Image.new("RGB", (w, h + strip), (255, 255, 255) if light else (15, 15, 15))
    out.paste(im, (0, 0))
    _text(out, (0, h, w, h + strip), (20, 20, 20) if light else (240, 240, 240), r, lines=r.randint(1, 3))
    return as_jpeg_or_png(out, r)


def bmp_of_jpeg(im: Image.Image, data: bytes, r: random.Random) -> tuple[bytes, str] | None:
    if im.format != "JPEG":
        return None
    return save(rgb(im), "BMP"), ".bmp"


def png_of_jpeg(im: Image.Image, data: bytes, r: random.Random) -> tuple[bytes, str] | None:
    """The JPEG decoded to YCbCr and converted by Pillow's own arithmetic, as another program's
    decoder would: the same picture, pixels a level apart here and there."""
    if im.format != "JPEG" or im.mode != "RGB":
        return None
    ycc = Image.open(io.BytesIO(data))
    ycc.draft("YCbCr", ycc.size)
    ycc.load()
    out = ycc.convert("RGB") if ycc.mode == "YCbCr" else rgb(ycc)
    return save(out, "PNG"), ".png"


def gif_palette(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    return save(rgb(im).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE), "GIF"), ".gif"


def gif_dither(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    return save(rgb(im).convert("P", palette=Image.Palette.WEB, dither=Image.Dither.FLOYDSTEINBERG), "GIF"), ".gif"


def png_palette(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    return save(rgb(im).quantize(64, method=Image.Quantize.MAXCOVERAGE), "PNG"), ".png"


def scale(im: Image.Image, f: float) -> Image.Image:
    return rgb(im).resize((max(8, round(im.width * f)), max(8, round(im.height * f))), Image.Resampling.LANCZOS)


def crop(im: Image.Image, share: float) -> Image.Image:
    w, h = im.size
    return rgb(im).crop(
        (round(w * share / 2), round(h * share / 2), round(w * (1 - share / 2)), round(h * (1 - share / 2)))
    )


def letterbox(im: Image.Image, _: bytes, r: random.Random) -> tuple[bytes, str]:
    im = rgb(im)
    w, h = im.size
    side = max(w, h)
    out = Image.new("RGB", (side, side), (255, 255, 255))
    out.paste(im, ((side - w) // 2, (side - h) // 2))
    return save(out, "JPEG", quality=88), ".jpg"


def jpeg(q: int) -> Callable[[Image.Image], tuple[bytes, str]]:
    return lambda im: (save(rgb(im), "JPEG", quality=q), ".jpg")


#: the kinds the public benchmark lacks (each an enlargement of the canvas, a lossless format or a palette)
DERIVED: dict[str, Edit] = {
    "frame": frame,
    "polaroid": polaroid,
    "caption_beside": caption_beside,
    "caption_below": caption_below,
    "bmp_of_jpeg": bmp_of_jpeg,
    "png_of_jpeg": png_of_jpeg,
    "gif_palette": gif_palette,
    "gif_dither": gif_dither,
    "png_palette": png_palette,
}
#: the public benchmark's kinds, with other settings
USUAL: dict[str, Edit] = {
    "jpeg_q70": lambda im, b, r: jpeg(70)(im),
    "webp_q75": lambda im, b, r: (save(rgb(im), "WEBP", quality=75), ".webp"),
    "resize_60": lambda im, b, r: jpeg(88)(scale(im, 0.6)),
    "thumb_320": lambda im, b, r: jpeg(85)(scale(im, 320 / max(im.size))) if max(im.size) > 400 else None,
    "grayscale": lambda im, b, r: jpeg(90)(rgb(im).convert("L")),
    "crop_15": lambda im, b, r: jpeg(90)(crop(im, 0.15)),
    "brightness": lambda im, b, r: jpeg(90)(ImageEnhance.Brightness(rgb(im)).enhance(1.2)),
    "blur": lambda im, b, r: jpeg(90)(rgb(im).filter(ImageFilter.GaussianBlur(max(1, max(im.size) / 300)))),
    "hflip": lambda im, b, r: jpeg(90)(rgb(im).transpose(Image.Transpose.FLIP_LEFT_RIGHT)),
    "rotate_90": lambda im, b, r: jpeg(90)(rgb(im).transpose(Image.Transpose.ROTATE_270)),
    "letterbox": letterbox,
    "upscale_140": lambda im, b, r: jpeg(90)(scale(im, 1.4)) if max(im.size) < 1600 else None,
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--originals", type=int, default=150, help="originals to draw from the corpus")
    ap.add_argument("--edits", type=int, default=3, help="copies made of each original")
    ap.add_argument("--usual-share", type=float, default=0.35, help="share of copies of the public benchmark's kinds")
    ap.add_argument("--mtime", choices=("equal", "copies-older"), default="equal")
    ap.add_argument("--seed", default="keeper-held-out-1")
    a = ap.parse_args()
    man = json.load(open(os.path.join(a.corpus, "manifest.json")))
    rng = random.Random(a.seed)
    origs, seen = [], set()
    for o in man["originals"]:
        digest = hashlib.sha256(open(os.path.join(a.corpus, o["path"]), "rb").read()).digest()
        if digest not in seen:
            seen.add(digest)
            origs.append(o["path"])
    rng.shuffle(origs)
    origs = sorted(origs[: a.originals])
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(os.path.join(a.out, "references"))
    os.makedirs(os.path.join(a.out, "queries"))
    truth: dict[str, object] = {"queries": {}, "ambiguous": []}
    queries: dict[str, dict[str, str | None]] = truth["queries"]  # type: ignore[assignment]
    derived, usual = list(DERIVED), list(USUAL)
    dealt = 0
    for rel in origs:
        src = os.path.join(a.corpus, rel)
        data = open(src, "rb").read()
        ref = rel.replace("/", "__")
        shutil.copyfile(src, os.path.join(a.out, "references", ref))
        im = Image.open(src)
        im.load()
        r = random.Random(f"{a.seed}:{rel}")
        made = 0
        tries = 0
        while made < a.edits and tries < 4 * a.edits:
            tries += 1
            kinds = usual if r.random() < a.usual_share else derived
            kind = kinds[dealt % len(kinds)] if kinds is derived else r.choice(kinds)
            dealt += kinds is derived
            edit = (DERIVED | USUAL)[kind]
            got = edit(im, data, r)
            if got is None:
                continue
            qdata, ext = got
            name = f"{hashlib.sha1(qdata).hexdigest()[:16]}{ext}"
            if name in queries:
                continue
            open(os.path.join(a.out, "queries", name), "wb").write(qdata)
            queries[name] = {"ref": ref, "transform": kind}
            made += 1
    when = 1_700_000_000
    for ref in os.listdir(os.path.join(a.out, "references")):
        os.utime(os.path.join(a.out, "references", ref), (when, when))
    for q in queries:
        older = when - 86_400 if a.mtime == "copies-older" else when
        os.utime(os.path.join(a.out, "queries", q), (older, older))
    json.dump(truth, open(os.path.join(a.out, "truth.json"), "w"), indent=0)
    kinds_made: dict[str, int] = {}
    for v in queries.values():
        kinds_made[str(v["transform"])] = kinds_made.get(str(v["transform"]), 0) + 1
    print(json.dumps({"references": len(origs), "queries": len(queries), "by_kind": kinds_made}))


if __name__ == "__main__":
    main()
