"""``GET /healthz``: for load balancers and process managers (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.service.auth import State
from lookalike.service.schemas import HealthOut

router = APIRouter(tags=["health"])


@router.get("/healthz")
def health(state: State) -> HealthOut:
    """200 when the service and its database answer."""
    state.index.store.last_change()
    return HealthOut(status="ok")
