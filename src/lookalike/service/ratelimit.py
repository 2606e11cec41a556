"""Per-key request budgets: a token bucket for each key, in each worker process."""

from __future__ import annotations

import threading
import time

__all__ = ["RateLimiter"]


class RateLimiter:
    """``rate_per_s`` requests a second on average, ``burst`` at once, per key. Thread-safe.

    Buckets live in the process: with N workers a key can reach N times the
    rate in total (the load spreads over the workers' connections).
    """

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
            tokens = min(self.burst, tokens + (now - last) * self.rate_per_s)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate_per_s
