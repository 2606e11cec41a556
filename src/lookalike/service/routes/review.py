"""``/v1/review``: pairs of the tenant's images judged ``similar``, and a person's decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from lookalike.index import Decision
from lookalike.service.auth import State, Tenant
from lookalike.service.schemas import DecisionIn, ReviewPairOut

router = APIRouter(prefix="/v1/review", tags=["review"])


@router.get("")
def pending(tenant: Tenant, state: State) -> list[ReviewPairOut]:
    """Pairs waiting for a decision, best score first."""
    return [ReviewPairOut.of(p) for p in state.index.review(scope=tenant)]


@router.post("/{pair_id}")
def decide(
    tenant: Tenant,
    state: State,
    pair_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The pair's id (a 64-bit row id)")],
    body: DecisionIn,
) -> ReviewPairOut:
    """Record ``duplicate`` or ``not_duplicate``; later checks honour it. 404 for another tenant's pair."""
    return ReviewPairOut.of(state.index.decide(pair_id, Decision(body.decision), scope=tenant))
