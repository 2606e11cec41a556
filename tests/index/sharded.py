"""``ShardedDescriptorIndex``: the crop tier's descriptor index split into shards by owner (tests only).

Owner ``o`` (a stored file) lives in shard ``o % shards``; a query asks every
shard for each query code's nearest candidate and keeps the nearest, ties to
the lower owner. Each shard applies ``DescriptorIndex``'s candidate rule (one
table's key equal to the query's) with the key length of the whole index
(``key_bits`` of all shards' codes), so the merged answer is the one a single
index over all the codes gives: votes do not depend on the number of shards.

A test helper, not the product's: that the rule is a function of the codes
alone (so that a split never changes a vote) is what lets a scale-out run answer
from its own vote table (``scale.votes``) as one machine's index does.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError
from lookalike.index.search.descriptors import TABLES, DescriptorIndex, DescriptorVoter, key_bits

__all__ = ["ShardedDescriptorIndex", "merge_nearest"]

U8 = npt.NDArray[np.uint8]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.int64]


def merge_nearest(best: tuple[I32, I64], other: tuple[I32, I64]) -> tuple[I32, I64]:
    """Two shards' (owner, distance) answers for the same query codes merged: the nearer, ties to
    the lower owner (-1: none), as one index over both shards' codes answers."""
    best_owner, best_dist = best
    owner, dist = other
    closer = (owner >= 0) & ((dist < best_dist) | ((dist == best_dist) & (owner < best_owner)))
    return np.where(closer, owner, best_owner).astype(np.int32), np.where(closer, dist, best_dist).astype(np.int64)


class ShardedDescriptorIndex(DescriptorVoter):
    """``DescriptorIndex`` (same methods, same answers) over ``shards`` indexes, owner ``o`` in shard
    ``o % shards``. Raises ConfigError unless ``shards`` >= 1 (and for bad ``tables``, as the index)."""

    def __init__(self, shards: int, *, tables: int = TABLES) -> None:
        if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
            raise ConfigError(f"shards must be an int >= 1, got {shards!r}")
        self._shards = [DescriptorIndex(tables=tables) for _ in range(shards)]

    def __len__(self) -> int:
        """Descriptors held by all shards (including those of removed owners not yet compacted away)."""
        return sum(len(s) for s in self._shards)

    def nbytes(self) -> int:
        """Bytes held in arrays by all shards."""
        return sum(s.nbytes() for s in self._shards)

    def add(self, owner: int, descriptors: U8) -> None:
        """File descriptors under ``owner`` in its shard (see ``DescriptorIndex.add``; ConfigError on
        bad owners or shapes)."""
        if isinstance(owner, bool) or not isinstance(owner, int | np.integer):
            raise ConfigError(f"owner must be an int in [0, 2**31 - 1), got {owner!r}")
        self._shards[int(owner) % len(self._shards)].add(owner, descriptors)

    def remove(self, owners: npt.ArrayLike) -> None:
        """Forget every descriptor of these owners."""
        gone = np.asarray(owners, dtype=np.int64).reshape(-1)
        gone = gone[gone >= 0]
        for i, shard in enumerate(self._shards):
            shard.remove(gone[gone % len(self._shards) == i])

    def flush(self) -> None:
        """Sort every shard's recent additions into its parts (after a bulk load)."""
        for shard in self._shards:
            shard.flush()

    def nearest(self, descriptors: U8) -> tuple[I32, I64]:
        """For each query descriptor, the owner of its nearest stored candidate in any shard (-1:
        none) and the distance in bits; ties go to the lower owner. Raises ConfigError unless
        ``descriptors`` is uint8 (k, 32)."""
        bits = key_bits(sum(s.live_codes() for s in self._shards))  # the whole index's key, in every shard
        best = self._shards[0].nearest(descriptors, bits=bits)
        for shard in self._shards[1:]:
            best = merge_nearest(best, shard.nearest(descriptors, bits=bits))
        return best
