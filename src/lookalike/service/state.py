"""What one worker process holds while it serves: the index, the file storage, the fetcher, the
rate limiter, and the lock that keeps the in-memory index to one thread at a time."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from lookalike.index import Index
from lookalike.service.fetch import SafeFetcher
from lookalike.service.ratelimit import RateLimiter
from lookalike.service.settings import ServiceSettings
from lookalike.service.storage import FileStorage

__all__ = ["ServiceState"]


@dataclass
class ServiceState:
    """One per app. ``index`` is not safe to search while it refreshes: ``searching()`` serialises
    its use within the process (fingerprinting happens outside it)."""

    settings: ServiceSettings
    index: Index
    storage: FileStorage
    fetcher: SafeFetcher
    limiter: RateLimiter
    _index_lock: threading.RLock = field(default_factory=threading.RLock)

    @classmethod
    def open(cls, settings: ServiceSettings) -> ServiceState:
        """Open the database and the storage folder. Raises ``StoreError``."""
        storage = FileStorage(settings.storage)
        index = Index(settings.db, limits=settings.limits, fetch=settings.fetch)
        return cls(
            settings=settings,
            index=index,
            storage=storage,
            fetcher=SafeFetcher(settings.fetch, allow_hosts=settings.allow_url_hosts),
            limiter=RateLimiter(settings.rate_per_s, settings.burst),
        )

    @contextmanager
    def searching(self) -> Iterator[Index]:
        """The index, to this thread alone."""
        with self._index_lock:
            yield self.index

    def close(self) -> None:
        """Close the database."""
        self.index.close()
