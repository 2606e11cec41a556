"""Build a held-out benchmark of combined and structural edits, in ``lookalike eval``'s layout.

    python benchmarks/make_structural_bench.py CORPUS OUT [--seed 11]

The references are the corpus originals that the public benchmark (``make_bench.py``, seed 7) holds
out as distractors, so nothing here was tuned on them. Each gets edits the public set lacks or has
only one form of: mirrored and cropped, mirrored inside a page, a tight crop around the middle, a
tile of a 2x2 or 1x3 collage (the other tiles other corpus photos, not references here), a caption
panel added beside the picture (canvas grows sideways) and a small off-centre screenshot. Other
corpus originals, unedited, are the unmatched queries (ants and bees that look alike: hard
negatives). Deterministic for the same arguments.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil

from PIL import Image, ImageDraw, ImageFont, ImageOps


def _jpeg(im: Image.Image, quality: int = 88) -> bytes:
    buf = io.BytesIO()
    im.convert("RGB").save(buf, "JPEG", quality=quality)
    return buf.getvalue()


def _crop(im: Image.Image, left: float, top: float, right: float, bottom: float) -> Image.Image:
    w, h = im.size
    return im.crop((round(w * left), round(h * top), round(w * (1 - right)), round(h * (1 - bottom))))


def _fit(im: Image.Image, w: int, h: int) -> Image.Image:
    return ImageOps.fit(im.convert("RGB"), (w, h), Image.Resampling.LANCZOS)


def mirror_crop(im: Image.Image, r: random.Random) -> Image.Image:
    return _crop(
        ImageOps.mirror(im), r.uniform(0.1, 0.25), r.uniform(0, 0.12), r.uniform(0, 0.1), r.uniform(0.05, 0.15)
    )


def tight_crop(im: Image.Image, r: random.Random) -> Image.Image:
    side = r.uniform(0.45, 0.6)  # 20-36% of the area, around the middle
    cx, cy = r.uniform(0.4, 0.6), r.uniform(0.4, 0.6)
    return _crop(im, cx - side / 2, cy - side / 2, 1 - cx - side / 2, 1 - cy - side / 2)


def mirror_tight_crop(im: Image.Image, r: random.Random) -> Image.Image:
    return tight_crop(ImageOps.mirror(im), r)


def collage(im: Image.Image, r: random.Random, fillers: list[Image.Image], rows: int, cols: int) -> Image.Image:
    cw, ch = 360, 270
    out = Image.new("RGB", (cols * cw + (cols + 1) * 6, rows * ch + (rows + 1) * 6), (255, 255, 255))
    cells = [(i, j) for i in range(rows) for j in range(cols)]
    mine = r.randrange(len(cells))
    others = iter(r.sample(fillers, len(cells) - 1))
    for k, (i, j) in enumerate(cells):
        tile = _fit(im if k == mine else next(others), cw, ch)
        out.paste(tile, (6 + j * (cw + 6), 6 + i * (ch + 6)))
    return out


def side_caption(im: Image.Image, r: random.Random) -> Image.Image:
    im = im.convert("RGB")
    panel = round(im.width * r.uniform(0.5, 0.9))
    out = Image.new("RGB", (im.width + panel, im.height), (250, 250, 245))
    left = r.random() < 0.5
    out.paste(im, (panel if left else 0, 0))
    d = ImageDraw.Draw(out)
    font = ImageFont.load_default(size=max(12, im.height // 14))
    x0 = 10 if left else im.width + 10
    for k, line in enumerate(("me explaining", "the bug to", "the duck")):
        d.text((x0, 20 + k * im.height // 10), line, font=font, fill=(20, 20, 20))
    return out


def small_screenshot(im: Image.Image, r: random.Random) -> Image.Image:
    im = im.convert("RGB")
    s = r.uniform(0.35, 0.5)
    small = im.resize((max(8, round(im.width * s)), max(8, round(im.height * s))), Image.Resampling.LANCZOS)
    page = Image.new("RGB", (im.width, im.height), (242, 242, 242))
    d = ImageDraw.Draw(page)
    d.rectangle((0, 0, im.width, round(im.height * 0.07)), fill=(30, 30, 30))
    font = ImageFont.load_default(size=max(10, im.height // 32))
    for k in range(6):
        d.text(
            (round(im.width * 0.55), round(im.height * (0.15 + 0.08 * k))),
            "lorem ipsum dolor",
            font=font,
            fill=(80, 80, 80),
        )
    page.paste(small, (round(im.width * r.uniform(0.03, 0.08)), round(im.height * r.uniform(0.12, 0.3))))
    return page


def mirror_screenshot(im: Image.Image, r: random.Random) -> Image.Image:
    return small_screenshot(ImageOps.mirror(im), r)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("corpus")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--negatives", type=int, default=120)
    a = ap.parse_args()
    man = json.load(open(os.path.join(a.corpus, "manifest.json")))
    origs, seen = [], set()
    for o in man["originals"]:  # as make_bench.py picks its distractors (seed 7, 10%)
        digest = hashlib.sha256(open(os.path.join(a.corpus, o["path"]), "rb").read()).digest()
        if digest not in seen:
            seen.add(digest)
            origs.append(o["path"])
    order = origs[:]
    random.Random(7).shuffle(order)
    held = order[: round(len(order) * 0.1)]
    rest = [p for p in order[len(held) :] if p.startswith("photos/")]
    r = random.Random(a.seed)
    fillers_paths = r.sample(rest, 40)
    negatives = r.sample([p for p in rest if p not in fillers_paths], a.negatives)
    fillers = [Image.open(os.path.join(a.corpus, p)).convert("RGB") for p in fillers_paths]
    if os.path.exists(a.out):
        shutil.rmtree(a.out)
    os.makedirs(os.path.join(a.out, "references"))
    os.makedirs(os.path.join(a.out, "queries"))
    truth: dict[str, object] = {"queries": {}, "ambiguous": []}
    queries: dict[str, dict[str, str | None]] = truth["queries"]  # type: ignore[assignment]
    edits = {
        "mirror_crop": mirror_crop,
        "tight_crop": tight_crop,
        "mirror_tight_crop": mirror_tight_crop,
        "collage_2x2": lambda im, r: collage(im, r, fillers, 2, 2),
        "collage_1x3": lambda im, r: collage(im, r, fillers, 1, 3),
        "side_caption": side_caption,
        "small_screenshot": small_screenshot,
        "mirror_screenshot": mirror_screenshot,
    }

    def put(data: bytes, ext: str, ref: str | None, transform: str) -> None:
        q = hashlib.sha1(data).hexdigest()[:16] + ext
        open(os.path.join(a.out, "queries", q), "wb").write(data)
        queries[q] = {"ref": ref, "transform": transform}

    for rel in held:
        ref = rel.replace("/", "__")
        shutil.copyfile(os.path.join(a.corpus, rel), os.path.join(a.out, "references", ref))
        im = Image.open(os.path.join(a.corpus, rel))
        im.load()
        if im.mode in ("RGBA", "LA", "P"):
            im = im.convert("RGBA")
            bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(bg, im)
        im = im.convert("RGB")
        er = random.Random(f"{a.seed}:{rel}")
        for name, fn in edits.items():
            put(_jpeg(fn(im, er)), ".jpg", ref, name)
    for rel in negatives:
        data = open(os.path.join(a.corpus, rel), "rb").read()
        put(data, os.path.splitext(rel)[1].lower(), None, "distractor")
    json.dump(truth, open(os.path.join(a.out, "truth.json"), "w"), indent=0)
    print(f"{len(held)} references, {len(queries)} queries in {a.out}")


if __name__ == "__main__":
    main()
