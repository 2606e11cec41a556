"""Per-key request budgets: a token bucket for each key, kept by one process (``RateLimiter``) or
shared by every worker of a server through a small file mapped into memory (``SharedRateLimiter``).

Shared buckets live in ``SLOTS`` fixed slots of the file (key id, tokens, time of the last
request); a key's slot is found by probing a few slots from a place its hash picks, and when all
of those are taken the longest-idle key gives up its slot (it starts again with a full budget).
An exclusive ``flock`` held for the few microseconds of an update keeps processes from
interleaving; ``time.monotonic`` is the same clock in every process of a Linux host.
"""

from __future__ import annotations

import fcntl
import mmap
import os
import struct
import threading
import time
from pathlib import Path
from typing import Protocol

from lookalike.errors import ConfigError

__all__ = ["Limiter", "RateLimiter", "SharedRateLimiter"]


class Limiter(Protocol):
    """Spends requests of a key's budget."""

    def take(self, key: bytes) -> float:
        """Spend one request of ``key``'s budget: 0 when allowed, else seconds until one is available."""
        ...

    def close(self) -> None:
        """Let go of what the limiter holds."""
        ...


def _refill(tokens: float, last: float, now: float, rate_per_s: float, burst: float) -> float:
    return min(burst, tokens + max(0.0, now - last) * rate_per_s)


class RateLimiter:
    """``rate_per_s`` requests a second on average, ``burst`` at once, per key, in this process.
    Thread-safe."""

    def __init__(self, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        self._buckets: dict[bytes, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: bytes) -> float:
        """Spend one request of ``key``'s budget: 0 when allowed, else seconds until one is available."""
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = _refill(tokens, last, now, self.rate_per_s, self.burst)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s

    def close(self) -> None:
        """Nothing to let go of."""


#: keys whose budgets one file holds at once, and the slots looked at for one key
SLOTS = 8192
_PROBES = 8
#: key id (the first 16 bytes of the key's hash), tokens, time of the last request
_SLOT = struct.Struct("<16sdd")


class SharedRateLimiter:
    """``RateLimiter`` whose buckets every process that opens ``path`` shares (the workers of one
    ``lookalike serve``). Thread-safe. Raises ``ConfigError`` when the file cannot be used."""

    def __init__(self, path: Path, rate_per_s: float, burst: int) -> None:
        self.rate_per_s = rate_per_s
        self.burst = float(burst)
        size = SLOTS * _SLOT.size
        try:
            self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            if os.fstat(self._fd).st_size < size:
                os.ftruncate(self._fd, size)  # zeros: every slot free
            self._map = mmap.mmap(self._fd, size)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot share rate limits through it ({exc.strerror or exc})") from exc
        self._lock = threading.Lock()  # flock is per open file, which this process's threads share

    def take(self, key: bytes) -> float:
        """Spend one request of ``key``'s budget: 0 when allowed, else seconds until one is available."""
        ident = key[:16].ljust(16, b"\0")
        first = int.from_bytes(key[16:24] or key[:8], "little") % SLOTS
        with self._lock:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                now = time.monotonic()
                slot, tokens, last = self._find(ident, first, now)
                tokens = _refill(tokens, last, now, self.rate_per_s, self.burst)
                wait_s = 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate_per_s
                _SLOT.pack_into(self._map, slot * _SLOT.size, ident, tokens - 1.0 if wait_s == 0.0 else tokens, now)
                return wait_s
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _find(self, ident: bytes, first: int, now: float) -> tuple[int, float, float]:
        """The slot of ``ident`` with its tokens and last time; a free or the longest-idle slot
        (with a full budget) when it has none."""
        free: int | None = None
        idlest, idlest_last = first, float("inf")
        for i in range(_PROBES):
            slot = (first + i) % SLOTS
            held, tokens, last = _SLOT.unpack_from(self._map, slot * _SLOT.size)
            if held == ident:
                return slot, tokens, min(last, now)  # a later time is from before a reboot
            if held == b"\0" * 16:
                free = slot if free is None else free
            elif last < idlest_last:
                idlest, idlest_last = slot, last
        return (idlest if free is None else free), self.burst, now

    def close(self) -> None:
        """Unmap the file."""
        self._map.close()
        os.close(self._fd)
