"""Bounded work with fair turns: a tenant with many requests waiting waits behind its own, a full
queue answers 429 or 503 with Retry-After, and a request that goes away gives its turn back."""

from __future__ import annotations

import asyncio

import pytest

from lookalike.service.admission import FairGate
from lookalike.service.errors import Busy, RateLimited


def test_a_freed_slot_goes_to_the_tenants_in_turn() -> None:
    async def scenario() -> list[str]:
        gate = FairGate("picture", 1, max_waiting=10, max_waiting_per_tenant=10)
        order: list[str] = []
        release = asyncio.Event()

        async def job(tenant: str, hold: bool = False) -> None:
            async with gate.slot(tenant):
                order.append(tenant)
                if hold:
                    await release.wait()

        first = asyncio.create_task(job("greedy", hold=True))
        await asyncio.sleep(0)
        tasks = [asyncio.create_task(job("greedy")) for _ in range(3)]
        await asyncio.sleep(0)
        tasks.append(asyncio.create_task(job("modest")))  # arrives after three of greedy's
        await asyncio.sleep(0)
        release.set()
        await asyncio.gather(first, *tasks)
        return order

    assert asyncio.run(scenario()) == ["greedy", "greedy", "modest", "greedy", "greedy"]


def test_full_queues_are_refused_with_a_time_to_come_back() -> None:
    async def scenario() -> None:
        gate = FairGate("picture", 1, max_waiting=3, max_waiting_per_tenant=2)
        release = asyncio.Event()

        async def job(tenant: str) -> None:
            async with gate.slot(tenant):
                await release.wait()

        tasks = [asyncio.create_task(job("a")) for _ in range(3)]  # one holds the slot, two wait
        await asyncio.sleep(0)
        with pytest.raises(RateLimited) as per_tenant:
            async with gate.slot("a"):
                pass
        assert per_tenant.value.retry_after_s >= 1
        tasks.append(asyncio.create_task(job("b")))
        await asyncio.sleep(0)
        with pytest.raises(Busy) as full:
            async with gate.slot("c"):
                pass
        assert full.value.retry_after_s >= 1
        release.set()
        await asyncio.gather(*tasks)
        assert gate.waiting == 0

    asyncio.run(scenario())


def test_a_request_that_goes_away_gives_its_turn_back() -> None:
    async def scenario() -> None:
        gate = FairGate("picture", 1, max_waiting=10, max_waiting_per_tenant=10)
        release = asyncio.Event()

        async def job() -> None:
            async with gate.slot("a"):
                await release.wait()

        holder = asyncio.create_task(job())
        await asyncio.sleep(0)
        gone = asyncio.create_task(job())
        await asyncio.sleep(0)
        gone.cancel()
        await asyncio.sleep(0)
        assert gate.waiting == 0
        release.set()
        await holder
        async with gate.slot("b"):  # free again
            pass

    asyncio.run(scenario())
