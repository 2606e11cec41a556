#!/usr/bin/env python3
"""Score `lookalike find --json` against a benchmark's truth.json, counting pairs of files.

    python benchmarks/find_quality.py BENCH_DIR FIND.json [--json]

BENCH_DIR holds truth.json ({"queries": {NAME: {"ref": REF or null, "transform": EDIT}},
"ambiguous": [[REF, REF], ...]}); the find run was over a folder holding the references and the
queries together (file names are matched by basename). The truth groups are each reference with
its queries; unmatched queries (ref null) belong with nothing.

Every pair of files the output puts in one group is a predicted pair; a true pair is two files of
one truth group. Predicted pairs that join two references listed together as ambiguous (or their
queries) count neither for nor against. Prints pair precision, pair recall, and per-edit recall of
the query-reference pairs (a query counts as found when it lands in its reference's group).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import Counter, defaultdict
from itertools import combinations


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench")
    ap.add_argument("find_json")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    truth = json.load(open(os.path.join(args.bench, "truth.json")))
    queries: dict[str, dict[str, str | None]] = truth["queries"]
    ambiguous = {frozenset(p) for p in truth.get("ambiguous", [])}
    group_of: dict[str, str] = {}  # file name -> its reference's name
    sizes: Counter[str] = Counter()
    refs = sorted(os.listdir(os.path.join(args.bench, "references")))
    for r in refs:
        group_of[r] = r
        sizes[r] += 1
    for q, v in queries.items():
        if v["ref"] is not None:
            group_of[q] = str(v["ref"])
            sizes[str(v["ref"])] += 1
    true_pairs = sum(k * (k - 1) // 2 for k in sizes.values())

    found = json.load(open(args.find_json))
    tp = fp = ignored = 0
    wrong_links: Counter[tuple[str, str]] = Counter()
    with_ref: set[str] = set()
    for g in found["groups"]:
        names = [os.path.basename(m["path"]) for m in g["members"]]
        for a, b in combinations(names, 2):
            ga, gb = group_of.get(a), group_of.get(b)
            if ga is not None and ga == gb:
                tp += 1
                if a == ga or b == gb:
                    with_ref.add(b if a == ga else a)
            elif ga is not None and gb is not None and frozenset((ga, gb)) in ambiguous:
                ignored += 1
            else:
                fp += 1
                wrong_links[tuple(sorted((str(ga), str(gb))))] += 1  # type: ignore[arg-type]
    # per-edit recall: is each query in its reference's group?
    group_index = {}
    for i, g in enumerate(found["groups"]):
        for m in g["members"]:
            group_index[os.path.basename(m["path"])] = i
    per_edit: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for q, v in queries.items():
        if v["ref"] is None:
            continue
        ok = q in group_index and group_index.get(str(v["ref"])) == group_index[q]
        per_edit[str(v["transform"])][0] += ok
        per_edit[str(v["transform"])][1] += 1
    report = {
        "pair_precision": round(tp / max(1, tp + fp), 4),
        "pair_recall": round(tp / max(1, true_pairs), 4),
        "true_pairs": true_pairs,
        "predicted_pairs": tp + fp + ignored,
        "correct": tp,
        "wrong": fp,
        "ignored_ambiguous": ignored,
        "groups": len(found["groups"]),
        "errors": len(found.get("errors", [])),
        "stats": found.get("stats", {}),
        "query_with_its_reference_by_edit": {k: round(a / b, 3) for k, (a, b) in sorted(per_edit.items())},
        "worst_wrong_links": [[a, b, n] for (a, b), n in wrong_links.most_common(10)],
    }
    if args.json:
        print(json.dumps(report))
        return
    for k, v in report.items():
        if isinstance(v, dict):
            print(f"{k}:")
            for kk, vv in v.items():
                print(f"  {kk:>22}: {vv}")
        else:
            print(f"{k:>22}: {v}")


if __name__ == "__main__":
    main()
