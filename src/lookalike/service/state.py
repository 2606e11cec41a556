"""What one worker process holds while it serves: the index, the file storage, the fetcher, the
rate limiter, the keys seen lately, the lock that keeps the in-memory index to one thread at a
time, and the queue of picture checks."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from lookalike.index import Index
from lookalike.service.fetch import SafeFetcher
from lookalike.service.keycache import KeyCache
from lookalike.service.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from lookalike.service.settings import ServiceSettings
from lookalike.service.storage import FileStorage

__all__ = ["ServiceState"]

T = TypeVar("T")

#: picture checks one worker works on at once: one can decode and fingerprint while another holds
#: the index; more would only wait for the index (or the GIL) in threads, in no particular order
CHECK_SLOTS = 2


@dataclass
class ServiceState:
    """One per app. ``index`` is not safe to search while it refreshes: ``searching()`` serialises
    its use within the process (fingerprinting happens outside it)."""

    settings: ServiceSettings
    index: Index
    storage: FileStorage
    fetcher: SafeFetcher
    limiter: Limiter
    keys: KeyCache
    _index_lock: threading.RLock = field(default_factory=threading.RLock)
    _check_slots: asyncio.Semaphore = field(default_factory=lambda: asyncio.Semaphore(CHECK_SLOTS))

    @classmethod
    def open(cls, settings: ServiceSettings) -> ServiceState:
        """Open the database and the storage folder. Raises ``StoreError`` or ``ConfigError``."""
        storage = FileStorage(settings.storage)
        index = Index(settings.db, limits=settings.limits, fetch=settings.fetch)
        return cls(
            settings=settings,
            index=index,
            storage=storage,
            fetcher=SafeFetcher(settings.fetch, allow_hosts=settings.allow_url_hosts),
            limiter=(
                RateLimiter(settings.rate_per_s, settings.burst)
                if settings.rate_file is None
                else SharedRateLimiter(settings.rate_file, settings.rate_per_s, settings.burst)
            ),
            keys=KeyCache(index.store.api_key_scope),
        )

    @contextmanager
    def searching(self) -> Iterator[Index]:
        """The index, to this thread alone."""
        with self._index_lock:
            yield self.index

    async def run_quick(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a few look-ups by key, under a millisecond) on the event loop when the index
        is free, which spares two thread switches per request; in a worker thread when another
        thread holds the index (a check's cascade), so that the event loop never waits for it."""
        if self._index_lock.acquire(blocking=False):
            try:
                return work()
            finally:
                self._index_lock.release()
        return await run_in_threadpool(work)

    async def run_check(self, work: Callable[[], T]) -> T:
        """Run ``work`` (a picture check: tens of milliseconds of CPU) in a worker thread once one of
        ``CHECK_SLOTS`` is free. Checks waiting for a slot start in order of arrival, so under load
        every answer takes about as long as the others, not some many times the median."""
        async with self._check_slots:
            return await run_in_threadpool(work)

    def close(self) -> None:
        """Close the database and the rate limiter."""
        self.limiter.close()
        self.index.close()
