"""What one worker process holds while it serves: the index, the file storage, the fetcher, the
rate limiter, the keys seen lately, and the gates that bound the expensive work (decoding and
fingerprinting pictures, fetching URLs) with fair queuing across tenants."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from lookalike.config import ServiceSettings
from lookalike.index import Index
from lookalike.learned import requested_embedder
from lookalike.service.admission import FairGate
from lookalike.service.decoding import PictureDecoder
from lookalike.service.fetch import SafeFetcher
from lookalike.service.keycache import KeyCache
from lookalike.service.pairids import PairIds
from lookalike.service.ratelimit import Limiter, RateLimiter, SharedRateLimiter
from lookalike.service.storage import FileStorage

__all__ = ["ServiceState"]

T = TypeVar("T")

#: how much lower than the event loop's the picture threads' CPU priority is (Linux ``nice``, per
#: thread): a core the kernel shares between a decode and the event loop gives the event loop about
#: three times the decode's share, so hash checks and health checks are answered while pictures
#: decode (a hash check's p99 had gone from 13 ms alone to 118 ms beside four big PNG checks)
PICTURE_NICENESS = 5


def _lower_priority() -> None:
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), PICTURE_NICENESS)
    except (OSError, AttributeError):
        pass  # not Linux, or not allowed: the threads keep the process's priority


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
    decoder: PictureDecoder
    pair_ids: PairIds
    #: the learned tier's encoder (model and weights' hash) when it is on
    learned_model: str | None = None
    _picture_threads: ThreadPoolExecutor = field(init=False)

    def __post_init__(self) -> None:
        self._picture_threads = ThreadPoolExecutor(
            self.pictures.slots, thread_name_prefix="lookalike-picture", initializer=_lower_priority
        )

    @classmethod
    def open(cls, settings: ServiceSettings) -> ServiceState:
        """Open the database and the storage folder (and, with the learned tier, its encoder: this
        process searches and fuses the vectors its decoding processes compute). Raises
        ``StoreError`` or ``ConfigError`` (the learned tier without its extra, naming it)."""
        storage = FileStorage(settings.storage)
        tier = settings.learned
        embedder = requested_embedder(tier.on, tier.model)
        index = Index(
            settings.db, limits=settings.limits, fetch=settings.fetch, thresholds=settings.thresholds,
            shared_codes=settings.shared_index_dir, embedder=embedder,
        )  # fmt: skip
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
            keys=KeyCache(index.api_key_scope),
            pictures=FairGate(
                "picture", settings.picture_slots, max_waiting=settings.max_waiting,
                max_waiting_per_tenant=settings.max_waiting_per_tenant,
            ),
            fetches=FairGate(
                "URL fetch", settings.fetch_slots, max_waiting=settings.max_waiting,
                max_waiting_per_tenant=settings.max_waiting_per_tenant,
            ),
            pair_ids=PairIds.for_storage(settings.storage),
            learned_model=None if embedder is None else embedder.name,
            decoder=PictureDecoder(
                settings.limits, budget_s=settings.decode_timeout_s, slots=settings.picture_slots, learned=tier
            ),
        )  # fmt: skip

    async def run_picture(self, tenant: str, work: Callable[[], T]) -> T:
        """Run ``work`` (a picture's check or upload: its decode and fingerprint go to the thread's
        budgeted worker process, ``decoder``; the rest, the search, runs here) in one of the picture
        threads (a thread per slot, at a lower CPU priority than the event loop) once the tenant's
        turn for a slot comes. Raises ``RateLimited`` or ``Busy`` when the queue is full."""
        async with self.pictures.slot(tenant):
            return await asyncio.get_running_loop().run_in_executor(self._picture_threads, work)

    def close(self) -> None:
        """Close the database, the rate limiter, the picture threads and their decoding processes,
        and the fetcher's resolver threads."""
        self._picture_threads.shutdown(wait=True)
        self.decoder.close()
        self.fetcher.close()
        self.limiter.close()
        self.index.close()
