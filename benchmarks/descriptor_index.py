#!/usr/bin/env python3
"""The crop/overlay tier at scale: memory per image and query time of ``DescriptorIndex``.

    python benchmarks/descriptor_index.py ../shared/bench/corpus --images 1000000

Every stored image keeps ``LOCAL_CODES`` (64) ORB descriptors. The index is
filled with the real descriptors of the corpus's pictures plus, for the rest
of ``--images``, synthetic images whose codes are real descriptors of random
corpus pictures with 70-110 of their 256 bits flipped (so that buckets fill as
real ORB codes fill them, not as uniform random bits would). Then real
edited copies (a 25% crop, a picture shown at 60% inside a page) of corpus
pictures vote, and the script prints the vote's time, whether the right
picture came first, and the memory the index holds. Prints; asserts nothing.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from pathlib import Path

import numpy as np
from PIL import Image

from lookalike.decode import decode_image
from lookalike.fingerprints.local import local_features
from lookalike.index.search.descriptors import DescriptorIndex
from lookalike.index.store.records import LOCAL_CODES


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--images", type=int, default=1_000_000)
    parser.add_argument("--real", type=int, default=300, help="corpus pictures to use")
    parser.add_argument("--queries", type=int, default=40)
    args = parser.parse_args()

    paths = sorted(p for p in args.corpus.rglob("*") if p.suffix.lower() in {".jpg", ".png", ".webp"})
    paths = paths[:: max(1, len(paths) // args.real)][: args.real]
    pictures, codes = [], []
    for p in paths:
        px = decode_image(p.read_bytes(), min_side=256).pixels
        f = local_features(px)
        if len(f) >= LOCAL_CODES:
            pictures.append(px)
            codes.append(f.descriptors[:LOCAL_CODES])
    print(f"{len(codes)} real pictures with {LOCAL_CODES} descriptors each")

    rng = np.random.default_rng(0)
    index = DescriptorIndex()
    start = time.perf_counter()
    for owner, c in enumerate(codes):
        index.add(owner, c)
    pool = np.concatenate(codes)
    batch = 2_000
    for first in range(len(codes), args.images, batch):
        n = min(batch, args.images - first)
        rows = pool[rng.integers(0, len(pool), n * LOCAL_CODES)]
        bits = np.unpackbits(rows, axis=1)
        flips = rng.random(bits.shape) < rng.uniform(70, 110, (len(rows), 1)) / 256
        noisy = np.packbits(bits ^ flips, axis=1)
        for k in range(n):
            index.add(first + k, noisy[k * LOCAL_CODES : (k + 1) * LOCAL_CODES])
    index.nearest(pool[:1])  # merges the delta
    built = time.perf_counter() - start
    held = index.nbytes()
    print(
        f"{args.images:,} images, {len(index):,} descriptors: built in {built:.1f} s, "
        f"{held / 1e6:,.0f} MB held = {held / args.images:,.0f} bytes per image; peak RSS {_peak_rss_mb():,.0f} MB"
    )

    for name, edit in (
        ("crop 25%", lambda im: im.crop((im.width // 4, 0, im.width, im.height * 9 // 10))),
        ("inside a page", _in_page),
    ):
        times, first_place = [], 0
        for owner in rng.choice(len(pictures), min(args.queries, len(pictures)), replace=False):
            query = local_features(np.asarray(edit(Image.fromarray(pictures[owner])).convert("RGB")), max_features=1000)
            t = time.perf_counter()
            votes = index.vote(query.descriptors[:500], top=5)
            times.append(time.perf_counter() - t)
            first_place += bool(votes) and votes[0][0] == owner
        print(
            f"{name}: vote median {1000 * statistics.median(times):.1f} ms, p90 "
            f"{1000 * sorted(times)[int(0.9 * len(times))]:.1f} ms; right picture first in "
            f"{first_place}/{len(times)}"
        )


def _in_page(im: Image.Image) -> Image.Image:
    page = Image.new("RGB", im.size, (240, 240, 240))
    small = im.resize((im.width * 6 // 10, im.height * 6 // 10))
    page.paste(small, (im.width // 10, im.height // 5))
    return page


if __name__ == "__main__":
    main()
