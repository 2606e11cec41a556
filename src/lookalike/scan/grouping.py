"""Linked pairs to the groups ``find`` reports: members, keepers, evidence and eligibility.

``groups_of_links`` is the last step of ``find`` and of the scale-out pipeline alike, and writes
nothing: the links make groups (``node_groups``: ``linking.link_groups``, cliques with
``strict``); each group's keeper is its source (``evidence.source_order``), or the first by an
explicit policy (``keeper.py``), a person's decisions and ``keep_in`` folders first; each member's
evidence is redone against its match, and a member joined only by local features or only through
another member is not ``eligible`` for actions unless asked. ``group_run`` is the same step on one
machine, with the index and the find cache: it keeps what the step learnt (source facts, local
evidence) in the cache, after the pure parts are done.
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
from lookalike.index import Index
from lookalike.match import Verdict
from lookalike.scan.cache import FindCache, RowFacts, StoredPair
from lookalike.scan.cache_person import nfc
from lookalike.scan.evidence import MemberEvidence, SourceEvidence, StoredEvidence, pair_evidence, source_order
from lookalike.scan.groups import cliques
from lookalike.scan.keeper import DEFAULT_KEEP, Candidate, KeepCriterion, keep_order
from lookalike.scan.linking import link_groups
from lookalike.scan.options import FindOptions, is_under
from lookalike.scan.provenance import PictureFacts, analyse_with_facts
from lookalike.scan.results import Evidence, EvidenceKind, Group, Member, Pair

__all__ = [
    "Judges",
    "RunEvidence",
    "group_run",
    "groups_of_links",
    "missing_source_facts",
    "node_groups",
    "node_pairs",
]


@dataclass(frozen=True, slots=True)
class RunEvidence:
    """What choosing each group's source (the keeper) and describing members against it need of a
    run on one machine beyond its links: the index (stored fingerprints, local features), the find
    cache (source facts, decisions from the HTML report) and each path's modification time."""

    index: Index
    cache: FindCache
    mtime_of: dict[str, int]


@dataclass(frozen=True, slots=True)
class Judges:
    """Who judges a run's groups beyond their links: ``source`` ranks each group source first
    (none: the policy ``DEFAULT_KEEP``), ``members`` redoes each member's evidence against its
    match (none: members keep the evidence of their own links), ``decided`` holds a person's
    decisions by NFC path (``FindCache.decisions``: what, and when)."""

    source: SourceEvidence | None = None
    members: MemberEvidence | None = None
    decided: Mapping[str, tuple[str, int]] | None = None


def group_run(
    run: RunEvidence,
    links: dict[tuple[int, int], StoredPair],
    pks: list[int],
    *,
    paths_of: dict[int, list[str]],
    facts: dict[int, RowFacts],
    size_of: dict[str, int],
    opts: FindOptions,
    keep_in: tuple[str, ...],
    also: Mapping[str, tuple[str, ...]],
) -> tuple[list[Group], list[Pair]]:
    """``groups_of_links`` on one machine: the judges come from the index and the find cache, and
    what they learnt on the way (the source facts of rows cached before those were kept, what local
    features said of copies) is kept in the cache once the groups are made."""
    linking = _linking(links, opts)
    nodes = node_groups(pks, linking, opts, paths_of=paths_of, size_of=size_of, facts=facts)
    grouped = sorted({pk for g in nodes for pk in g})
    filled = missing_source_facts(facts, grouped, paths_of, run.index.limits)
    if filled:
        run.cache.set_source_facts(filled)
        facts = facts | {f.file_pk: f for f in filled}
    fps = {f.pk: f.fingerprint for f in run.index.files(grouped)}
    members = MemberEvidence(run.index, fps, linking, run.cache.relatives(grouped))
    judges = Judges(
        source=StoredEvidence(run.index, run.cache, facts, fps, run.mtime_of, paths_of),
        members=members,
        decided=run.cache.decisions(opts.scope),  # recorded by find_groups before grouping
    )
    groups = _groups_with_keepers(nodes, paths_of, size_of, facts, linking, opts, keep_in, also, judges)
    if members.new:
        run.cache.put_relatives(members.new)
    return groups, node_pairs(pks, paths_of, links)


def groups_of_links(
    pks: list[int],
    paths_of: dict[int, list[str]],
    size_of: dict[str, int],
    facts: dict[int, RowFacts],
    links: dict[tuple[int, int], StoredPair],
    opts: FindOptions,
    keep_in: tuple[str, ...],
    also: Mapping[str, tuple[str, ...]] | None = None,
    *,
    judges: Judges | None = None,
) -> list[Group]:
    """Groups with keepers from the cascade's pairs between index rows (``links``, keyed
    ``(a_pk, b_pk)`` with ``a_pk < b_pk``, a person's decisions applied): the last step of
    ``find`` as a pure function of its inputs (it writes nothing), for the scale-out pipeline.
    ``paths_of`` lists each row's paths (sorted), ``size_of`` each path's size in bytes, ``also``
    the other paths of files reached through several (a file under a keep-in folder by any path
    is kept). Each group's keeper is its source (``evidence.source_order``) as ``judges.source``
    tells it; with no source, or an explicit ``opts.keep``, the first by that policy
    (``DEFAULT_KEEP``).

    A group's links are among its members and its keeper is chosen among them, so the groups of
    a set of rows closed under the linking pairs (connected components of them, and rows with
    several paths) are the groups of all rows that lie in that set: the pipeline groups a batch
    of components at a time."""
    linking = _linking(links, opts)
    nodes = node_groups(pks, linking, opts, paths_of=paths_of, size_of=size_of, facts=facts)
    return _groups_with_keepers(nodes, paths_of, size_of, facts, linking, opts, keep_in, also or {}, judges or Judges())


def node_groups(
    pks: list[int],
    linking: dict[tuple[int, int], StoredPair],
    opts: FindOptions,
    *,
    paths_of: dict[int, list[str]],
    size_of: dict[str, int],
    facts: dict[int, RowFacts],
) -> list[list[int]]:
    """The groups of index rows the linking pairs make (``link_groups``; cliques with
    ``opts.strict``, each grown from its best member by the keep policy), then each ungrouped row
    reached by several paths as a group of its own."""
    groups = link_groups(pks, linking)
    if opts.strict:
        ranked = keep_order([_candidate(pk, paths_of[pk][0], facts, size_of) for pk in pks], opts.keep or DEFAULT_KEEP)
        rank = {c.path: i for i, c in enumerate(ranked)}
        strict: list[list[int]] = []
        for nodes in groups:
            order = sorted(nodes, key=lambda pk: rank[paths_of[pk][0]])
            inside = [k for k in linking if k[0] in set(nodes) and k[1] in set(nodes)]
            strict.extend(cliques(nodes, inside, order=order))
        groups = strict
    grouped = {pk for g in groups for pk in g}
    return groups + [[pk] for pk in pks if pk not in grouped and len(paths_of[pk]) > 1]


def _linking(links: dict[tuple[int, int], StoredPair], opts: FindOptions) -> dict[tuple[int, int], StoredPair]:
    """The pairs whose verdict links files (``opts.link``); ``similar`` pairs are listed, never linked."""
    return {k: p for k, p in links.items() if p.verdict in opts.link}


def _candidate(pk: int, path: str, facts: Mapping[int, RowFacts], size_of: Mapping[str, int]) -> Candidate:
    """What the keep policy looks at in row ``pk`` reached as ``path``."""
    f = facts[pk]
    return Candidate(path, f.width, f.height, size_of[path], f.lossless, f.taken_at)


@dataclass(frozen=True, slots=True)
class _Links:
    """A run's linking pairs, and each row's links by the other row, for describing members."""

    linking: dict[tuple[int, int], StoredPair]
    best: dict[int, dict[int, StoredPair]]

    @classmethod
    def of(cls, linking: dict[tuple[int, int], StoredPair]) -> _Links:
        best: dict[int, dict[int, StoredPair]] = defaultdict(dict)
        for (a, b), p in linking.items():
            best[a][b] = p
            best[b][a] = p
        return cls(linking, best)


@dataclass(frozen=True, slots=True)
class _Keeping:
    """One group's members in keeper order, its keeper, and why that one."""

    ranked: list[Candidate]
    keeper: Candidate
    protected: list[Candidate]
    #: a person's decision on each member ("keep", "exclude" or "") and when it was made
    decided: dict[str, tuple[str, int]]
    chosen: bool
    derived: dict[str, tuple[str, str]]


def _groups_with_keepers(
    node_groups: list[list[int]],
    paths_of: dict[int, list[str]],
    size_of: dict[str, int],
    facts: dict[int, RowFacts],
    linking: dict[tuple[int, int], StoredPair],
    opts: FindOptions,
    keep_in: tuple[str, ...],
    also: Mapping[str, tuple[str, ...]],
    judges: Judges,
) -> list[Group]:
    """Each group of rows as a ``Group``: its keeper and each member's evidence and eligibility,
    largest groups first."""
    links = _Links.of(linking)
    group_of = {pk: i for i, g in enumerate(node_groups) for pk in g}
    links_in: dict[int, dict[tuple[int, int], StoredPair]] = defaultdict(dict)
    for key, p in linking.items():  # each group's own links, found once (not once per group)
        if key[0] in group_of and group_of[key[0]] == group_of.get(key[1]):
            links_in[group_of[key[0]]][key] = p
    groups: list[Group] = []
    for gi, nodes in enumerate(node_groups):
        members = [_candidate(pk, path, facts, size_of) for pk in nodes for path in paths_of[pk]]
        pk_of = {path: pk for pk in nodes for path in paths_of[pk]}
        keeping = _keeping(nodes, members, paths_of, links_in[gi], opts, keep_in, also, judges)
        out = [
            _member(c, keeping, pk_of, set(nodes), paths_of, facts[pk_of[c.path]], links, opts, judges.members)
            for c in [keeping.keeper] + [c for c in keeping.ranked if c is not keeping.keeper]
        ]
        groups.append(Group(keep=keeping.keeper.path, members=tuple(out)))
    groups.sort(key=lambda g: (-len(g.members), g.keep))
    return groups


def _keeping(
    nodes: list[int],
    members: list[Candidate],
    paths_of: dict[int, list[str]],
    links_in: dict[tuple[int, int], StoredPair],
    opts: FindOptions,
    keep_in: tuple[str, ...],
    also: Mapping[str, tuple[str, ...]],
    judges: Judges,
) -> _Keeping:
    """The group's keeper: the newest "keep" a person decided, else the first member in a keep-in
    folder, else the first by the source order (or the policy); symlinks rank after real files."""
    derived: dict[str, tuple[str, str]] = {}
    if opts.keep is not None or judges.source is None:
        ranked = keep_order(members, opts.keep or DEFAULT_KEEP)
    else:
        by_path = {c.path: c for c in members}
        source_paths, derived = source_order(nodes, paths_of, links_in, judges.source)
        ranked = [by_path[p] for p in source_paths]
    # a symlink is never kept over a real file: the file it points to may live outside the
    # scanned folders, and removing the real copy would leave only a link to keep the picture
    ranked.sort(key=lambda c: os.path.islink(c.path))
    protected = [c for c in ranked if any(is_under(p, k) for p in (c.path, *also.get(c.path, ())) for k in keep_in)]
    by_person = judges.decided or {}
    decided = {c.path: by_person.get(nfc(c.path), ("", 0)) for c in ranked}
    # the newest keep of the group wins: a later "keep c2" overrides an earlier "keep c1"
    chosen = sorted((c for c in ranked if decided[c.path][0] == "keep"), key=lambda c: -decided[c.path][1])
    keeper = (chosen or protected or ranked)[0]
    return _Keeping(ranked, keeper, protected, decided, bool(chosen), derived)


def _member(
    c: Candidate,
    keeping: _Keeping,
    pk_of: dict[str, int],
    nodes: set[int],
    paths_of: dict[int, list[str]],
    f: RowFacts,
    links: _Links,
    opts: FindOptions,
    evidence: MemberEvidence | None,
) -> Member:
    """Member ``c`` of a group: its evidence against its match, and whether actions may touch it."""
    keeper = keeping.keeper
    pk, kpk = pk_of[c.path], pk_of[keeper.path]
    score, verdict, why, match = _why(pk, c.path, kpk, keeper.path, paths_of, links.best, nodes)
    if evidence is not None:
        why = evidence.relative(pk, pk_of.get(match, kpk), why, verdict)
        if pk != kpk and match != keeper.path:
            against_keeper = evidence.local_against(pk, kpk)
            if against_keeper is not None:  # linked through another member, yet its picture is in the keeper's
                why, match = against_keeper, keeper.path
    keep = c is keeper or c in keeping.protected
    excluded = False
    eligible, eligibility = _eligibility(pk, kpk, match, verdict, links.linking)
    if c is keeper:
        why = _keep_reason(c, f, keeping.chosen, bool(keeping.protected), opts.keep, keeping.derived, keeper.path)
        eligible, eligibility = False, "the keeper"
    elif keep:
        why = replace(why, kept_in_folder=True)
        eligible, eligibility = False, "in a --keep-in folder"
    elif keeping.decided[c.path][0] == "exclude":
        eligible, eligibility, excluded = False, "excluded by your decision", True
    return Member(
        c.path, score, verdict, why, match, keep, f.width, f.height, c.byte_size, f.mime, f.taken_at,
        eligible, eligibility, excluded, f.sha256.hex(),
    )  # fmt: skip


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


def missing_source_facts(
    facts: Mapping[int, RowFacts], pks: list[int], paths_of: Mapping[int, list[str]], limits: DecodeLimits
) -> list[RowFacts]:
    """The rows of ``pks`` cached before the keeper-choice facts were kept, with those facts now
    (one reduced decode each): for the caller to use and keep."""
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
    return missing


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
