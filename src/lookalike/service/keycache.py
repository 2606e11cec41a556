"""API keys a worker has seen lately, so that a busy key costs one database look-up a second, not
one per request (on PostgreSQL a round trip that took a quarter of a hash check's time).

Only valid keys are remembered, and for ``ttl_s``: a new key works at once, and a revoked one
stops working within ``ttl_s`` on every worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["KEY_TTL_S", "KeyCache"]

#: how long a valid key is taken on trust before it is looked up again
KEY_TTL_S = 1.0


class KeyCache:
    """Key hash to scope (tenant) for ``ttl_s`` seconds; at most ``max_keys`` remembered.

    Thread-safe without a lock: a dict's get and set are atomic, and a race only costs a look-up.
    """

    def __init__(self, lookup: Callable[[bytes], str | None], *, ttl_s: float = KEY_TTL_S, max_keys: int = 10_000):
        self._lookup = lookup
        self.ttl_s = ttl_s
        self.max_keys = max_keys
        self._known: dict[bytes, tuple[str, float]] = {}

    def scope(self, key_hash: bytes) -> str | None:
        """The scope of the live key with this hash, or None (unknown or revoked). Raises ``StoreError``."""
        now = time.monotonic()
        known = self._known.get(key_hash)
        if known is not None and known[1] > now:
            return known[0]
        scope = self._lookup(key_hash)
        if scope is None:
            self._known.pop(key_hash, None)
            return None
        if len(self._known) >= self.max_keys:
            self._known.clear()  # many keys at once: start over rather than track ages
        self._known[key_hash] = (scope, now + self.ttl_s)
        return scope
