"""``GET /healthz``: for load balancers and process managers (no key needed)."""

from __future__ import annotations

from fastapi import APIRouter

from lookalike.service.auth import State
from lookalike.service.schemas import HealthOut, error_responses

router = APIRouter(tags=["health"])


@router.get("/healthz", responses=error_responses(503))
def health(state: State) -> HealthOut:
    """200 when the service and its database answer."""
    state.index.last_change()
    return HealthOut(status="ok")
