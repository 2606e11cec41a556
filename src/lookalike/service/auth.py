"""Who is asking: the tenant of the request's API key (``Authorization: Bearer KEY``), within its
rate limit. Every route that touches images depends on ``Tenant``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from lookalike.index.keys import key_hash
from lookalike.service.errors import RateLimited, Unauthorized
from lookalike.service.state import ServiceState

__all__ = ["State", "Tenant", "service_state", "tenant"]


# Dependencies are coroutines so that FastAPI runs them on the event loop instead of handing each
# to a worker thread; what they do (a key look-up by primary key) is quicker than that hand-over.


async def service_state(request: Request) -> ServiceState:
    """The app's state (see ``create_app``)."""
    state: ServiceState = request.app.state.service
    return state


State = Annotated[ServiceState, Depends(service_state)]


async def tenant(request: Request, state: State) -> str:
    """The tenant (index scope) of the request's key. Raises ``Unauthorized`` or ``RateLimited``."""
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise Unauthorized("send an API key as `Authorization: Bearer KEY` (`lookalike keys create` makes one)")
    digest = key_hash(key.strip())
    scope = state.keys.scope(digest)
    if scope is None:
        raise Unauthorized("this API key is not valid (unknown or revoked)")
    wait_s = state.limiter.take(digest)
    if wait_s > 0:
        raise RateLimited(f"rate limit of {state.settings.rate_per_s:g} requests/s reached", retry_after_s=wait_s)
    return scope


Tenant = Annotated[str, Depends(tenant)]
