"""Pairs to groups of index rows: which pairs link files, and how links make groups.

The pairs among a run's files come from the find cache; a person's decisions on the review list
(``not_duplicate``, ``duplicate``) take pairs out or put them in (``run_links``). Then
``link_groups``: hash links build groups as connected components, a pair matched by local
features alone only attaches a file that has no hash link, and two groups merge only when local
links join several files of each (``MERGE_FILES``).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from lookalike.index import Decision, Index
from lookalike.match import Verdict
from lookalike.match.decision import overrule
from lookalike.scan.cache import FindCache, RowFacts, StoredPair
from lookalike.scan.groups import components
from lookalike.scan.results import Evidence, EvidenceKind

__all__ = [
    "HASH_LINK_BITS",
    "MERGE_FILES",
    "attach_local",
    "hash_components",
    "is_hash_link",
    "link_groups",
    "merge_well_linked",
    "run_links",
]

#: pHash bits (under the best flip or turn) within which a duplicate pair counts as a hash link,
#: which may merge groups (imagededup's default distance threshold is the same 10 of 64 bits)
HASH_LINK_BITS = 10
#: files on each side of the local links that merge two groups (see ``link_groups``); 2 was
#: chosen on the public benchmark (3 gives pair precision 0.995 and recall 0.887 there)
MERGE_FILES = 2
_PERSON = Evidence(EvidenceKind.PERSON).text


def run_links(
    index: Index, cache: FindCache, pks: list[int], facts: dict[int, RowFacts], scope: str
) -> dict[tuple[int, int], StoredPair]:
    """The pairs among rows ``pks`` (keyed ``(a_pk, b_pk)``, ``a_pk < b_pk``), a person's decisions
    applied: those on the review list of the index, and over them the marks kept by the files'
    SHA-256 (``FindCache.marks``), which outlive the index rows."""
    stored = _with_phash_bits(index, cache, cache.pairs_among(pks))
    decided = index.decisions(facts[pk].image_pk for pk in pks)
    image_of = {pk: facts[pk].image_pk for pk in pks}
    image_of_sha = {facts[pk].sha256: facts[pk].image_pk for pk in pks}
    for (sha_a, sha_b), mark in cache.marks(scope).items():
        ia, ib = image_of_sha.get(sha_a), image_of_sha.get(sha_b)
        if ia is not None and ib is not None and ia != ib:
            decided[min(ia, ib), max(ia, ib)] = Decision(mark)
    links: dict[tuple[int, int], StoredPair] = {}
    for p in stored:
        key = (min(image_of[p.a_pk], image_of[p.b_pk]), max(image_of[p.a_pk], image_of[p.b_pk]))
        d = decided.get(key)
        ruling = overrule(p.score, p.verdict, None if d is None else d.duplicate, index.thresholds)
        if not ruling.linked:
            continue
        if ruling.by_person:
            p = StoredPair(p.a_pk, p.b_pk, ruling.score, ruling.verdict, _PERSON, 0, by_person=True)
        links[(p.a_pk, p.b_pk)] = p
    by_image = {facts[pk].image_pk: pk for pk in pks}
    for (ia, ib), d in decided.items():
        if d is Decision.DUPLICATE and ia in by_image and ib in by_image:
            a, b = sorted((by_image[ia], by_image[ib]))
            ruling = overrule(0.0, Verdict.DIFFERENT, True, index.thresholds)  # decided, never compared
            links.setdefault((a, b), StoredPair(a, b, ruling.score, ruling.verdict, _PERSON, 0, by_person=True))
    return links


def _with_phash_bits(index: Index, cache: FindCache, pairs: list[StoredPair]) -> list[StoredPair]:
    """Pairs from a cache made before their pHash distance was kept get it from the stored fingerprints."""
    missing = [p for p in pairs if p.phash_bits is None]
    if not missing:
        return pairs
    fps = {f.pk: f.fingerprint for f in index.files(sorted({x for p in missing for x in (p.a_pk, p.b_pk)}))}
    filled = {
        (p.a_pk, p.b_pk): replace(p, phash_bits=fps[p.a_pk].dihedral_distance_bits(fps[p.b_pk])[0])
        for p in missing
        if p.a_pk in fps and p.b_pk in fps
    }
    cache.set_phash_bits(list(filled.values()))
    return [filled.get((p.a_pk, p.b_pk), p) for p in pairs]


def link_groups(nodes: list[int], links: dict[tuple[int, int], StoredPair]) -> list[list[int]]:
    """Groups from linking pairs: hash links build groups, local-feature links only attach single files.

    A *hash link* is a pair judged by its hashes whose pHashes (under the best flip or turn) are
    within ``HASH_LINK_BITS``, or identical bytes or pixels, or a person's word. Groups start as the
    connected components of hash links. A pair matched only by its local features (crops,
    screenshots, captions, overlays: pHashes farther apart) never merges two such groups, because
    two different pictures that carry the same caption bar, watermark or page frame share local
    features too. Instead, each file without a hash link joins the group it has the most local
    links to (ties: no group), and two such files that are each other's best local match form a
    group of two. Two groups merge only when local links join at least ``MERGE_FILES`` different
    files of each: a picture's crops that hash-link among themselves and are matched to the
    picture again and again, where a shared caption bar or watermark joins one file to one file.
    """
    groups, pairs = attach_local(hash_components(nodes, links), links)
    return sorted(sorted(g) for g in merge_well_linked(groups, links) + pairs)


def hash_components(nodes: list[int], links: dict[tuple[int, int], StoredPair]) -> list[list[int]]:
    """The connected components of the hash links (``is_hash_link``) among ``nodes``; a node with
    no hash link is in none."""
    return components(nodes, [k for k, p in links.items() if is_hash_link(p)])


def attach_local(
    groups: list[list[int]], links: dict[tuple[int, int], StoredPair]
) -> tuple[list[list[int]], list[list[int]]]:
    """Files with no hash link joined by their local-feature links (see ``link_groups``): the
    groups with each such file added to the one it has the most local links to (ties: none), and
    the pairs of two files left outside that are each other's best local match.
    ``groups`` is not changed."""
    group_of = {pk: i for i, g in enumerate(groups) for pk in g}
    support: dict[int, dict[int, list[float]]] = defaultdict(dict)
    loose: list[StoredPair] = []
    for (a, b), p in links.items():
        if is_hash_link(p):
            continue
        for x, y in ((a, b), (b, a)):
            if x not in group_of and y in group_of:
                votes = support[x].setdefault(group_of[y], [0.0, 0.0])
                votes[0] += 1
                votes[1] = max(votes[1], p.score)
        if a not in group_of and b not in group_of:
            loose.append(p)
    grown = [list(g) for g in groups]
    attached: set[int] = set()
    for x, by_group in support.items():
        ranked = sorted(by_group.items(), key=lambda kv: (-kv[1][0], -kv[1][1], kv[0]))
        if len(ranked) > 1 and ranked[1][1][0] == ranked[0][1][0]:
            continue  # as many links to another group: not for a machine to say which
        grown[ranked[0][0]].append(x)
        attached.add(x)
    return grown, _best_local_pairs(loose, attached)


def _best_local_pairs(loose: list[StoredPair], attached: set[int]) -> list[list[int]]:
    """Pairs of two files outside every group (and not attached) that are each other's best local match."""
    best: dict[int, tuple[float, int]] = {}
    for p in loose:
        if p.a_pk in attached or p.b_pk in attached:
            continue
        for x, y in ((p.a_pk, p.b_pk), (p.b_pk, p.a_pk)):
            if x not in best or (p.score, -y) > (best[x][0], -best[x][1]):
                best[x] = (p.score, y)
    return [[x, y] for x, (_, y) in best.items() if x < y and best.get(y, (0.0, -1))[1] == x]


def merge_well_linked(groups: list[list[int]], links: dict[tuple[int, int], StoredPair]) -> list[list[int]]:
    """Merge groups joined by local links from several files on each side (``MERGE_FILES``): a
    picture's cropped or reframed copies that hash-link among themselves, found again and again
    by local features. A shared caption bar or watermark joins one file to one file."""
    group_of = {pk: i for i, g in enumerate(groups) for pk in g}
    ends: dict[tuple[int, int], tuple[set[int], set[int]]] = {}
    for (a, b), p in links.items():
        ga, gb = group_of.get(a), group_of.get(b)
        if ga is None or gb is None or ga == gb or is_hash_link(p):
            continue
        key, (x, y) = ((ga, gb), (a, b)) if ga < gb else ((gb, ga), (b, a))
        left, right = ends.setdefault(key, (set(), set()))
        left.add(x)
        right.add(y)
    edges = [k for k, (left, right) in ends.items() if min(len(left), len(right)) >= MERGE_FILES]
    if not edges:
        return groups
    merged = components(list(range(len(groups))), edges)
    used = {i for m in merged for i in m}
    return [sum((groups[i] for i in m), []) for m in merged] + [g for i, g in enumerate(groups) if i not in used]


def is_hash_link(p: StoredPair) -> bool:
    """Whether pair ``p`` is a hash link (see ``link_groups``)."""
    if p.verdict in (Verdict.IDENTICAL, Verdict.SAME_PIXELS) or p.by_person:
        return True
    # a verdict that rests on local features is local evidence however close the pHashes: two
    # screenshots of different pictures in the same window share the frame and most pHash bits
    return not p.by_local_features and p.phash_bits is not None and p.phash_bits <= HASH_LINK_BITS
