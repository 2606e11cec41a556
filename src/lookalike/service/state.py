"""What one worker process holds while it serves: the index, the file storage, the fetcher, the
rate limiter, the keys seen lately, and the gates that bound the expensive work (decoding and
fingerprinting pictures, fetching URLs) with fair queuing across tenants."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from starlette.concurrency import run_in_threadpool

from lookalike.index import Index
from lookalike.service.admission import FairGate
from lookalike.service.fetch import SafeFetcher
from lookalike.service.keycache import KeyCache
from lookalike.service.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from lookalike.service.settings import ServiceSettings
from lookalike.service.storage import FileStorage

__all__ = ["ServiceState"]

T = TypeVar("T")


@dataclass
class ServiceState:
    """One per app. ``index`` is thread-safe and holds its own lock only while it reads or updates
    its in-memory structures; ``pictures`` and ``fetches`` bound the work in flight."""

    settings: ServiceSettings
    index: Index
    storage: FileStorage
    fetcher: SafeFetcher
    limiter: Limiter
    keys: KeyCache
    pictures: FairGate
    fetches: FairGate

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
            pictures=FairGate(
                "picture", settings.picture_slots, max_waiting=settings.max_waiting,
                max_waiting_per_tenant=settings.max_waiting_per_tenant,
            ),
            fetches=FairGate(
                "URL fetch", settings.fetch_slots, max_waiting=settings.max_waiting,
                max_waiting_per_tenant=settings.max_waiting_per_tenant,
            ),
        )  # fmt: skip

    async def run_picture(self, tenant: str, work: Callable[[], T]) -> T:
        """Run ``work`` (decoding and fingerprinting a picture: tens of milliseconds of CPU, up to
        ``max_decode_bytes`` of memory) in a worker thread once the tenant's turn for one of the
        picture slots comes. Raises ``RateLimited`` or ``Busy`` when the queue is full."""
        async with self.pictures.slot(tenant):
            return await run_in_threadpool(work)

    def close(self) -> None:
        """Close the database, the rate limiter and the fetcher's resolver threads."""
        self.fetcher.close()
        self.limiter.close()
        self.index.close()
