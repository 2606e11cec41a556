#!/usr/bin/env python3
"""Does `lookalike find` keep the original, and describe each copy as the copy?

    python benchmarks/find_keepers.py BENCH_DIR FIND.json [--json]

BENCH_DIR holds truth.json and references/ (see benchmarks/find_quality.py); the find run was
over one folder holding the references and the queries (file names are matched by basename).

Prints:
- kept the reference: the share of groups holding a reference whose keeper is a reference (or a
  file with the same bytes as one), and, for the others, which edit the wrongly kept copy was;
- contradicting evidence: the share of copies, in groups whose keeper is their reference, whose
  evidence says the opposite of what was done to them (a reduced copy "enlarged", an enlarged one
  "resized to" less than 100 %, a grayscale one "colourised", a crop "shown inside a larger
  picture", a padded or screenshotted one "cropped", a brightened one "darkened", a contrast-lowered
  one "contrast raised"), with a breakdown by edit;
- eligible: the share of copies actions would touch without --include-edited, by edit.

Edit names are the benchmark's; the scorer may know them, the tool never does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
from collections import Counter, defaultdict
from typing import Any

_RESIZED = re.compile(r"\bresized to (\d+)%")


def contradiction(edit: str, member: dict[str, Any], keeper: dict[str, Any]) -> str | None:
    """What in a copy's evidence contradicts its edit, or None."""
    text = str(member["evidence"])
    smaller = member["width"] * member["height"] < keeper["width"] * keeper["height"]
    if smaller and "enlarged" in text:
        return "a smaller copy reads 'enlarged'"
    m = _RESIZED.search(text)
    if (
        not smaller
        and m
        and int(m.group(1)) < 100
        and member["width"] * member["height"] > keeper["width"] * keeper["height"]
    ):
        return "a larger copy reads 'resized to' less than 100%"
    opposite = {
        "grayscale": "colourised",
        "brightness_up": "darkened",
        "contrast_down": "contrast raised",
        "crop_10": "shown inside a larger picture",
        "crop_25": "shown inside a larger picture",
        "saturation_crop": "shown inside a larger picture",
        "crop_jpeg_resize": "shown inside a larger picture",
        "letterbox": "cropped to",
        "screenshot": "cropped to",
    }.get(edit)
    if opposite and opposite in text:
        return f"a {edit} copy reads {opposite!r}"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("bench")
    ap.add_argument("find_json")
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    truth = json.load(open(os.path.join(args.bench, "truth.json")))["queries"]
    ref_dir = os.path.join(args.bench, "references")
    refs = set(os.listdir(ref_dir))
    ref_sha = {hashlib.sha256(open(os.path.join(ref_dir, r), "rb").read()).digest(): r for r in refs}
    found = json.load(open(args.find_json))

    def is_reference(path: str) -> bool:
        name = os.path.basename(path)
        if name in refs:
            return True
        try:
            return hashlib.sha256(open(path, "rb").read()).digest() in ref_sha
        except OSError:
            return False

    with_ref = kept_ref = 0
    wrong_keeper: Counter[str] = Counter()
    members = contradicted = 0
    by_edit: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    eligible: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    examples: list[list[str]] = []
    for g in found["groups"]:
        names = [os.path.basename(m["path"]) for m in g["members"]]
        if not any(n in refs for n in names):
            continue
        with_ref += 1
        keeper = next(m for m in g["members"] if m["path"] == g["keep"])
        if not is_reference(g["keep"]):
            wrong_keeper[str(truth.get(os.path.basename(g["keep"]), {}).get("transform", "?"))] += 1
            continue
        kept_ref += 1
        ref_name = os.path.basename(g["keep"])
        for m in g["members"]:
            q = truth.get(os.path.basename(m["path"]))
            if m["path"] == g["keep"] or q is None or q["ref"] is None:
                continue
            edit = str(q["transform"])
            if q["ref"] != ref_name and ref_name in refs:
                continue  # a copy of another reference in this group
            members += 1
            why = contradiction(edit, m, keeper)
            by_edit[edit][1] += 1
            eligible[edit][1] += 1
            eligible[edit][0] += bool(m.get("eligible", True))
            if why:
                contradicted += 1
                by_edit[edit][0] += 1
                if len(examples) < 10:
                    examples.append([os.path.basename(m["path"]), edit, m["evidence"]])
    report = {
        "groups_with_a_reference": with_ref,
        "kept_the_reference": round(kept_ref / max(1, with_ref), 4),
        "wrong_keepers_by_edit": dict(wrong_keeper.most_common()),
        "copies_judged": members,
        "contradicting_evidence": round(contradicted / max(1, members), 4),
        "contradicting_by_edit": {k: f"{a}/{b}" for k, (a, b) in sorted(by_edit.items()) if a},
        "eligible_by_edit": {k: round(a / b, 3) for k, (a, b) in sorted(eligible.items())},
        "contradiction_examples": examples,
    }
    if args.json:
        print(json.dumps(report))
        return
    for k, v in report.items():
        if isinstance(v, dict):
            print(f"{k}:")
            for kk, vv in v.items():
                print(f"  {kk:>22}: {vv}")
        elif isinstance(v, list):
            print(f"{k}:")
            for row in v:
                print("  " + " | ".join(row))
        else:
            print(f"{k:>24}: {v}")


if __name__ == "__main__":
    main()
