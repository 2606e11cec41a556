#!/usr/bin/env python3
"""Memory a `find` run holds per image, measured with tracemalloc.

    python benchmarks/find_memory.py FOLDER --db DB

Run it on a folder already read once with the same database, so that the figure is the state of
grouping rather than of the worker processes. Prints the peak of opening the index alone, the peak
of the whole run, and what the returned result holds, each per file.
"""

from __future__ import annotations

import argparse
import tracemalloc

from lookalike.index import Index
from lookalike.scan import FindOptions, find_groups


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folder")
    ap.add_argument("--db", required=True)
    args = ap.parse_args()
    tracemalloc.start()
    with Index(args.db):
        pass
    index_peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.reset_peak()
    result = find_groups([args.folder], db=args.db, options=FindOptions())
    held, peak = tracemalloc.get_traced_memory()
    n = max(1, result.stats.files)
    print(f"files                 {result.stats.files:,} ({result.stats.read:,} read now), {len(result.pairs):,} pairs")
    print(f"index opened alone    {index_peak / 1e6:,.1f} MB peak ({index_peak / n:,.0f} bytes a file)")
    print(f"whole find run        {peak / 1e6:,.1f} MB peak ({peak / n:,.0f} bytes a file)")
    print(f"result held           {held / 1e6:,.1f} MB ({held / n:,.0f} bytes a file)")


if __name__ == "__main__":
    main()
