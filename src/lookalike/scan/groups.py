"""Duplicate pairs to groups: connected components, or cliques for ``--strict``.

Both work on integer node ids and an edge list, in memory linear in nodes plus edges.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence

import numpy as np

__all__ = ["cliques", "components"]


def components(nodes: Sequence[int], edges: Iterable[tuple[int, int]]) -> list[list[int]]:
    """Connected components with at least two nodes, each sorted, in order of their smallest node.

    Union-find with path halving over a NumPy parent array (4-8 bytes a node)."""
    ids = np.asarray(sorted(set(nodes)), dtype=np.int64)
    parent = np.arange(len(ids), dtype=np.int64)

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = int(parent[i])
        return i

    for a, b in edges:
        ia, ib = int(np.searchsorted(ids, a)), int(np.searchsorted(ids, b))
        if ia >= len(ids) or ib >= len(ids) or ids[ia] != a or ids[ib] != b:
            continue  # an edge to a node outside the set
        ra, rb = find(ia), find(ib)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = np.fromiter((find(i) for i in range(len(ids))), dtype=np.int64, count=len(ids))
    members: dict[int, list[int]] = defaultdict(list)
    for i, r in enumerate(roots.tolist()):
        members[r].append(int(ids[i]))
    return [sorted(m) for _, m in sorted(members.items()) if len(m) > 1]


def cliques(
    nodes: Sequence[int], edges: Iterable[tuple[int, int]], *, order: Sequence[int] | None = None
) -> list[list[int]]:
    """Groups in which every member is linked to every other (``--strict``).

    Greedy within each connected component: nodes are taken in ``order`` (best keeper
    candidates first, by default ascending id) and each joins the first group whose every member
    it is linked to, else starts a group. Groups of one are dropped. Exact maximum cliques are
    NP-hard; this is the usual, deterministic approximation, and every group it returns is a
    true clique."""
    edge_list = [(min(a, b), max(a, b)) for a, b in edges if a != b]
    linked: dict[int, set[int]] = defaultdict(set)
    for a, b in edge_list:
        linked[a].add(b)
        linked[b].add(a)
    rank = {n: i for i, n in enumerate(order)} if order is not None else {}
    out: list[list[int]] = []
    for comp in components(nodes, edge_list):
        groups: list[list[int]] = []
        for n in sorted(comp, key=lambda x: (rank.get(x, len(rank)), x)):
            for g in groups:
                if all(m in linked[n] for m in g):
                    g.append(n)
                    break
            else:
                groups.append([n])
        out.extend(sorted(g) for g in groups if len(g) > 1)
    return sorted(out)
