"""Linked pairs to the groups ``find`` reports: members, keepers, evidence and eligibility.

``groups_from_links`` is the last step of ``find`` and of the scale-out pipeline alike: the links
make groups (``linking.link_groups``, cliques with ``strict``); each group's keeper is its source
(``evidence.source_order``), or the first by an explicit policy (``keeper.py``), a person's
decisions and ``keep_in`` folders first; each member's evidence is redone against its match, and
a member joined only by local features or only through another member is not ``eligible`` for
actions unless asked.
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from lookalike.config import DecodeLimits
from lookalike.decode import read_source
from lookalike.errors import LookalikeError
from lookalike.fingerprints import Fingerprint
from lookalike.index import Index
from lookalike.match import Verdict
from lookalike.scan.cache import FindCache, RowFacts, StoredPair, nfc
from lookalike.scan.evidence import MemberEvidence, SourceEvidence, StoredEvidence, pair_evidence, source_order
from lookalike.scan.groups import cliques
from lookalike.scan.keeper import DEFAULT_KEEP, Candidate, KeepCriterion, keep_order
from lookalike.scan.linking import link_groups
from lookalike.scan.options import FindOptions, is_under
from lookalike.scan.provenance import PictureFacts, analyse_with_facts
from lookalike.scan.results import Evidence, EvidenceKind, Group, Member, Pair

__all__ = ["RunEvidence", "groups_from_links"]


@dataclass(frozen=True, slots=True)
class RunEvidence:
    """What choosing each group's source (the keeper) and describing members against it need of a
    run beyond its links: the index (stored fingerprints, local features), the find cache (source
    facts, decisions from the HTML report) and each path's modification time."""

    index: Index
    cache: FindCache
    mtime_of: dict[str, int]


def groups_from_links(
    pks: list[int],
    paths_of: dict[int, list[str]],
    size_of: dict[str, int],
    facts: dict[int, RowFacts],
    links: dict[tuple[int, int], StoredPair],
    opts: FindOptions,
    keep_in: tuple[str, ...],
    also: Mapping[str, tuple[str, ...]] | None = None,
    *,
    run: RunEvidence | None = None,
    source: SourceEvidence | None = None,
) -> tuple[list[Group], list[Pair]]:
    """Groups with keepers, and the linked pairs as paths, from the cascade's pairs between index rows
    (``links``, keyed ``(a_pk, b_pk)`` with ``a_pk < b_pk``, a person's decisions applied): the last
    step of ``find``, a pure function of its inputs so that the scale-out pipeline calls it too.
    ``paths_of`` lists each row's paths (sorted), ``size_of`` each path's size in bytes, ``also`` the
    other paths of files reached through several (a file under a keep-in folder by any path is kept).

    Each group's keeper is its source (``evidence.source_order``), judged from ``run`` (one
    machine's index and cache, which also give a person's decisions and each member's evidence
    redone against its match) or from ``source`` (what a scale-out run gathered); with neither,
    or an explicit ``opts.keep``, the first by that policy (``DEFAULT_KEEP``). Without ``run``
    members keep the evidence of their own links."""
    if run is not None and source is not None:
        raise ValueError("give the source evidence as run (one machine) or as source, not both")
    also = also or {}

    def candidate(pk: int, path: str) -> Candidate:
        f = facts[pk]
        return Candidate(path, f.width, f.height, size_of[path], f.lossless, f.taken_at)

    linking = {k: p for k, p in links.items() if p.verdict in opts.link}
    node_groups = link_groups(pks, linking)
    if opts.strict:
        ranked = keep_order([candidate(pk, paths_of[pk][0]) for pk in pks], opts.keep or DEFAULT_KEEP)
        rank = {c.path: i for i, c in enumerate(ranked)}
        strict: list[list[int]] = []
        for nodes in node_groups:
            order = sorted(nodes, key=lambda pk: rank[paths_of[pk][0]])
            inside = [k for k in linking if k[0] in set(nodes) and k[1] in set(nodes)]
            strict.extend(cliques(nodes, inside, order=order))
        node_groups = strict
    grouped = {pk for g in node_groups for pk in g}
    node_groups += [[pk] for pk in pks if pk not in grouped and len(paths_of[pk]) > 1]
    best_link: dict[int, dict[int, StoredPair]] = defaultdict(dict)
    for (a, b), p in linking.items():
        best_link[a][b] = p
        best_link[b][a] = p

    grouped_pks = sorted({pk for g in node_groups for pk in g})
    fps: dict[int, Fingerprint] = {}
    decided_paths: dict[str, tuple[str, int]] = {}
    evidence: MemberEvidence | None = None
    if run is not None:
        fps = {f.pk: f.fingerprint for f in run.index.files(grouped_pks)}
        facts = _with_source_facts(run.cache, facts, grouped_pks, paths_of, run.index.limits)
        decided_paths = run.cache.decisions(opts.scope)  # recorded by find_groups before grouping
        evidence = MemberEvidence(run.index, fps, linking, run.cache.relatives(grouped_pks))
        source = StoredEvidence(run.index, run.cache, facts, fps, run.mtime_of, paths_of)

    group_of = {pk: i for i, g in enumerate(node_groups) for pk in g}
    links_in: dict[int, dict[tuple[int, int], StoredPair]] = defaultdict(dict)
    for key, p in linking.items():  # each group's own links, found once (not once per group)
        if key[0] in group_of and group_of[key[0]] == group_of.get(key[1]):
            links_in[group_of[key[0]]][key] = p
    groups: list[Group] = []
    for gi, nodes in enumerate(node_groups):
        members = [candidate(pk, path) for pk in nodes for path in paths_of[pk]]
        pk_of = {path: pk for pk in nodes for path in paths_of[pk]}
        derived: dict[str, tuple[str, str]] = {}
        if opts.keep is not None or source is None:
            ranked = keep_order(members, opts.keep or DEFAULT_KEEP)
        else:
            by_path = {c.path: c for c in members}
            source_paths, derived = source_order(nodes, paths_of, links_in[gi], source)
            ranked = [by_path[p] for p in source_paths]
        # a symlink is never kept over a real file: the file it points to may live outside the
        # scanned folders, and removing the real copy would leave only a link to keep the picture
        ranked.sort(key=lambda c: os.path.islink(c.path))
        protected = [c for c in ranked if any(is_under(p, k) for p in (c.path, *also.get(c.path, ())) for k in keep_in)]
        decided = {c.path: decided_paths.get(nfc(c.path), ("", 0)) for c in ranked}
        # the newest keep of the group wins: a later "keep c2" overrides an earlier "keep c1"
        chosen = sorted((c for c in ranked if decided[c.path][0] == "keep"), key=lambda c: -decided[c.path][1])
        keeper = (chosen or protected or ranked)[0]
        kpk = pk_of[keeper.path]
        out: list[Member] = []
        for c in [keeper] + [c for c in ranked if c is not keeper]:
            pk = pk_of[c.path]
            score, verdict, why, match = _why(pk, c.path, kpk, keeper.path, paths_of, best_link, set(nodes))
            if evidence is not None:
                why = evidence.relative(pk, pk_of.get(match, kpk), why, verdict)
            if evidence is not None and pk != kpk and match != keeper.path:
                against_keeper = evidence.local_against(pk, kpk)
                if against_keeper is not None:  # linked through another member, yet its picture is in the keeper's
                    why, match = against_keeper, keeper.path
            f = facts[pk]
            keep = c is keeper or c in protected
            excluded = False
            eligible, eligibility = _eligibility(pk, kpk, match, verdict, linking)
            if c is keeper:
                why = _keep_reason(c, f, bool(chosen), bool(protected), opts.keep, derived, keeper.path)
                eligible, eligibility = False, "the keeper"
            elif keep:
                why = replace(why, kept_in_folder=True)
                eligible, eligibility = False, "in a --keep-in folder"
            elif decided[c.path][0] == "exclude":
                eligible, eligibility, excluded = False, "excluded by your decision", True
            out.append(
                Member(
                    c.path, score, verdict, why, match, keep, f.width, f.height, c.byte_size, f.mime, f.taken_at,
                    eligible, eligibility, excluded, f.sha256.hex(),
                )
            )  # fmt: skip
        groups.append(Group(keep=keeper.path, members=tuple(out)))
    if run is not None and evidence is not None and evidence.new:
        run.cache.put_relatives(evidence.new)
    groups.sort(key=lambda g: (-len(g.members), g.keep))

    return groups, node_pairs(pks, paths_of, links)


def node_pairs(
    pks: list[int], paths_of: dict[int, list[str]], links: Mapping[tuple[int, int], StoredPair]
) -> list[Pair]:
    """The linked pairs as paths, linear in the paths: the files holding one row's bytes are one
    node, listed as each path identical to the node's first, and a link between two nodes is one
    pair of their first paths. (Every pair of paths would be quadratic: 3,000 copies of one
    picture would make 4.5 M pairs.)"""
    pairs: list[Pair] = []
    for pk in pks:
        first, *others = paths_of[pk]
        pairs.extend(Pair(first, y, 1.0, Verdict.IDENTICAL) for y in others)
    for (a, b), p in sorted(links.items()):
        pairs.append(Pair(paths_of[a][0], paths_of[b][0], p.score, p.verdict))
    return pairs


def _keep_reason(
    c: Candidate,
    f: RowFacts,
    chosen: bool,
    protected: bool,
    policy: tuple[KeepCriterion, ...] | None,
    derived: dict[str, tuple[str, str]],
    keeper: str,
) -> Evidence:
    """Why the keeper was kept: a person's choice, a keep-in folder, the policy, or the source."""
    kind = "lossless" if f.lossless else (f"lossy, quality ~{f.jpeg_quality:.0f}" if f.jpeg_quality else "lossy")
    facts = f"{c.width}x{c.height}, {kind} {f.mime.split('/')[-1].upper()}"
    facts += f", {c.byte_size:,} bytes" + (f", taken {c.taken_at}" if c.taken_at else "")
    if chosen:
        return Evidence(EvidenceKind.KEEPER, "your decision", facts)
    where = "in a --keep-in folder, then " if protected else ""
    if policy is not None:
        return Evidence(EvidenceKind.KEEPER, f"{where}first by {' > '.join(k.value for k in policy)}", facts)
    children = sum(1 for parent, _ in derived.values() if parent == keeper)
    source = (
        f"the original: {children} cop{'y' if children == 1 else 'ies'} derive from it"
        if children
        else ("the best copy by quality; nothing here is derived from it")
    )
    return Evidence(EvidenceKind.KEEPER, f"{where}{source}", facts)


def _with_source_facts(
    cache: FindCache, facts: dict[int, RowFacts], pks: list[int], paths_of: dict[int, list[str]], limits: DecodeLimits
) -> dict[int, RowFacts]:
    """Rows cached before the keeper-choice facts were kept get them now (one reduced decode each)."""
    missing: list[RowFacts] = []
    for pk in pks:
        f = facts[pk]
        if f.padding is not None and f.colours is not None:
            continue
        try:
            _, k = analyse_with_facts(
                read_source(Path(paths_of[pk][0]), max_bytes=limits.max_bytes).data, limits=limits
            )
        except LookalikeError:  # unreadable now: judged without its margins
            k = PictureFacts(None, 0.0, f.width / max(1, f.height), 0, 0)
        missing.append(replace(f, jpeg_quality=k.jpeg_quality, padding=k.padding, content_aspect=k.content_aspect,
                               colours=k.colours, grid_step=k.grid_step))  # fmt: skip
    if missing:
        cache.set_source_facts(missing)
    return facts | {f.file_pk: f for f in missing}


def _eligibility(
    pk: int, keeper_pk: int, match: str, verdict: Verdict, linking: dict[tuple[int, int], StoredPair]
) -> tuple[bool, str]:
    """Whether an action may touch a member without ``--include-edited``, and why."""
    if pk == keeper_pk:
        return True, "identical to the keeper"
    link = linking.get((min(pk, keeper_pk), max(pk, keeper_pk)))
    if link is None:
        return False, f"linked to the keeper only through another member ({os.path.basename(match)}): --include-edited"
    if verdict in (Verdict.IDENTICAL, Verdict.SAME_PIXELS):
        return True, f"{verdict.value.replace('_', ' ')} as the keeper"
    if link.by_local_features and not link.by_person:
        return False, "joined by local features only (a crop or an overlay): --include-edited"
    return True, "a copy of the keeper by its hashes"


def _why(
    pk: int,
    path: str,
    keeper_pk: int,
    keeper_path: str,
    paths_of: dict[int, list[str]],
    best_link: dict[int, dict[int, StoredPair]],
    nodes: set[int],
) -> tuple[float, Verdict, Evidence, str]:
    """(score, verdict, evidence, matched path) of a member: its link to the keeper, else its best link in the group."""
    same_file = Evidence(EvidenceKind.SAME_FILE)
    if pk == keeper_pk and path != keeper_path:
        return 1.0, Verdict.IDENTICAL, same_file, keeper_path
    if pk != keeper_pk and keeper_pk in best_link[pk]:
        p = best_link[pk][keeper_pk]
        return p.score, p.verdict, pair_evidence(p), keeper_path
    if pk == keeper_pk and len(paths_of[pk]) > 1:
        twin = next(x for x in paths_of[pk] if x != path)
        return 1.0, Verdict.IDENTICAL, same_file, twin
    inside = [(p, o) for o, p in best_link[pk].items() if o in nodes]
    if not inside:
        return 1.0, Verdict.IDENTICAL, same_file, path
    best, other = max(inside, key=lambda po: (po[0].score, -po[1]))
    return best.score, best.verdict, pair_evidence(best), paths_of[other][0]
