"""Bounded concurrency with fair queuing across tenants, for the routes that cost a worker much: a
picture's decode and fingerprint, and a URL's fetch.

A ``FairGate`` has a few slots. A request that finds one free takes it; otherwise it waits in its
tenant's queue, and a slot that frees goes to the tenants with waiting requests in turn (round
robin), not to whoever came first: a tenant that sends a hundred pictures at once waits behind its
own, while another tenant's one picture goes next. Queues are bounded: a tenant with
``max_waiting_per_tenant`` requests waiting is answered 429, and a full gate 503, both with
``Retry-After``; a bounded queue also bounds the memory that requests waiting for a slot hold.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from lookalike.service.errors import Busy, RateLimited

__all__ = ["FairGate"]


class FairGate:
    """``slots`` at a time, waiting requests served round robin across tenants (see the module
    docstring). For one event loop; not thread-safe (it needs no lock: asyncio runs one task at a
    time)."""

    def __init__(self, name: str, slots: int, *, max_waiting: int, max_waiting_per_tenant: int) -> None:
        self.name = name
        self.slots = slots
        self.max_waiting = max_waiting
        self.max_waiting_per_tenant = max_waiting_per_tenant
        self._free = slots
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()
        self._waiting = 0
        #: seconds a slot was held lately (an exponential average), for Retry-After
        self._held_s = 1.0

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot."""
        return self._waiting

    def _retry_after_s(self) -> float:
        return max(1.0, self._held_s * (self._waiting + 1) / self.slots)

    @asynccontextmanager
    async def slot(self, tenant: str) -> AsyncIterator[None]:
        """Hold one slot for ``tenant`` while the block runs. Raises ``RateLimited`` (this tenant has
        too many requests waiting) or ``Busy`` (the gate's queue is full)."""
        if self._free > 0 and not self._waiting:
            self._free -= 1
        else:
            queue = self._queues.get(tenant)
            if queue is not None and len(queue) >= self.max_waiting_per_tenant:
                raise RateLimited(
                    f"{len(queue)} of your {self.name} requests are waiting already: send fewer at once",
                    retry_after_s=self._retry_after_s(),
                )
            if self._waiting >= self.max_waiting:
                raise Busy(f"the server is busy with {self.name} requests", retry_after_s=self._retry_after_s())
            turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            if queue is None:
                queue = self._queues[tenant] = deque()
            queue.append(turn)
            self._waiting += 1
            try:
                await turn
            except asyncio.CancelledError:
                if turn.done() and not turn.cancelled():
                    self._release()  # the slot was handed over as the request went away
                else:
                    self._forget(tenant, turn)
                raise
        started = asyncio.get_running_loop().time()
        try:
            yield
        finally:
            self._held_s = 0.8 * self._held_s + 0.2 * (asyncio.get_running_loop().time() - started)
            self._release()

    def _forget(self, tenant: str, turn: asyncio.Future[None]) -> None:
        queue = self._queues.get(tenant)
        if queue is not None and turn in queue:
            queue.remove(turn)
            self._waiting -= 1
            if not queue:
                del self._queues[tenant]

    def _release(self) -> None:
        """Hand the slot to the next tenant in turn, or free it."""
        while self._queues:
            tenant, queue = next(iter(self._queues.items()))
            turn = queue.popleft()
            self._waiting -= 1
            if queue:
                self._queues.move_to_end(tenant)  # its next request waits for the other tenants
            else:
                del self._queues[tenant]
            if not turn.done():
                turn.set_result(None)
                return
        self._free += 1
