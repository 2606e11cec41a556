"""Who is asking: the tenant of the request's API key (``Authorization: Bearer KEY``), within its
rate limit. The key is checked by ``RequestGuard`` (an ASGI middleware) before any byte of the
request's body is read, so a request without a valid key costs its headers and nothing more;
every route that touches images depends on ``Tenant``, which takes what the guard found."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from lookalike.index.store.keys import key_hash
from lookalike.service.errors import RateLimited, Unauthorized
from lookalike.service.state import ServiceState

__all__ = ["TENANT_STATE", "State", "Tenant", "authenticate", "service_state", "tenant"]

#: where ``RequestGuard`` leaves the tenant in the request's state
TENANT_STATE = "lookalike_tenant"


# Dependencies are coroutines so that FastAPI runs them on the event loop instead of handing each
# to a worker thread; what they do is quicker than that hand-over.


async def service_state(request: Request) -> ServiceState:
    """The app's state (see ``create_app``)."""
    state: ServiceState = request.app.state.service
    return state


State = Annotated[ServiceState, Depends(service_state)]


def authenticate(state: ServiceState, authorization: str) -> str:
    """The tenant (index scope) of the key in an ``Authorization`` header, spending one request of
    its budget. Raises ``Unauthorized`` or ``RateLimited``."""
    scheme, _, key = authorization.partition(" ")
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


#: declares the scheme in the OpenAPI document (an "Authorize" button in ``/docs``); the key itself
#: is checked by ``RequestGuard`` (or ``tenant``), not by FastAPI
BEARER = HTTPBearer(
    scheme_name="apiKey", bearerFormat="API key", auto_error=False,
    description="An API key made by `lookalike keys create`, sent as `Authorization: Bearer KEY`",
)  # fmt: skip


async def tenant(
    request: Request,
    state: State,
    _declared: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
) -> str:
    """The tenant of the request's key: as ``RequestGuard`` found it, or checked here for a route
    the guard does not cover. Raises ``Unauthorized`` or ``RateLimited``."""
    found = request.scope.get("state", {}).get(TENANT_STATE)
    if isinstance(found, str):
        return found
    return authenticate(state, request.headers.get("authorization", ""))


Tenant = Annotated[str, Depends(tenant)]
