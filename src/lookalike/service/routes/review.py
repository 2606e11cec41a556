"""``/v1/review``: pairs of the tenant's images judged ``similar``, and a person's decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from lookalike.index import Decision
from lookalike.service.auth import State, Tenant
from lookalike.service.errors import BadRequest
from lookalike.service.schemas import DecisionIn, ReviewPage, ReviewPairOut, error_responses

router = APIRouter(prefix="/v1/review", tags=["review"], responses=error_responses(401, 422, 429))

#: ``next`` of a review page: the last pair's exact score and its id (pairs come best score first,
#: then by id), so a page follows on where the last ended even when pairs were decided in between
_CURSOR = r"^[0-9.eE+-]{1,32}/[0-9]{1,19}$"


def _position(cursor: str) -> tuple[float, int]:
    score, pk = cursor.split("/")
    try:
        return -float(score), int(pk)
    except ValueError:
        raise BadRequest(f"after: {cursor!r} is not the `next` of a review page") from None


@router.get("", responses=error_responses(400))
def pending(
    tenant: Tenant,
    state: State,
    after: Annotated[str | None, Query(pattern=_CURSOR, description="The `next` of the previous page")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ReviewPage:
    """Pairs waiting for a decision, best score first, a page at a time."""
    pairs = state.index.review(scope=tenant)
    if after is not None:
        start = _position(after)
        pairs = [p for p in pairs if (-p.score, p.pk) > start]
    page = pairs[:limit]
    cursor = f"{page[-1].score!r}/{page[-1].pk}" if len(pairs) > limit else None
    return ReviewPage(pairs=[ReviewPairOut.of(p) for p in page], next=cursor)


@router.post("/{pair_id}", responses=error_responses(400, 404, 413, 415))
def decide(
    tenant: Tenant,
    state: State,
    pair_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The pair's id (a 64-bit row id)")],
    body: DecisionIn,
) -> ReviewPairOut:
    """Record ``duplicate`` or ``not_duplicate``; later checks honour it. 404 for another tenant's pair."""
    return ReviewPairOut.of(state.index.decide(pair_id, Decision(body.decision), scope=tenant))
