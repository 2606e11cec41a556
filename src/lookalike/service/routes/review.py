"""``/v1/review``: pairs of the tenant's images judged ``similar``, and a person's decisions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from lookalike.errors import NotFound
from lookalike.index import Decision
from lookalike.service.auth import State, Tenant
from lookalike.service.errors import BadRequest
from lookalike.service.schemas import DecisionIn, ReviewPage, ReviewPairOut, error_responses
from lookalike.service.state import ServiceState

router = APIRouter(prefix="/v1/review", tags=["review"], responses=error_responses(401, 422, 429))

#: ``next`` of a review page: the last pair's exact score and its id (pairs come best score first,
#: then by id), so a page follows on where the last ended even when pairs were decided in between
_CURSOR = r"^[0-9.eE+-]{1,32}/[0-9]{1,19}$"


def _position(state: ServiceState, tenant: str, cursor: str) -> tuple[float, int]:
    score, pair_id = cursor.split("/")
    try:
        pk = state.pair_ids.private(tenant, int(pair_id))
        if pk is None:
            raise ValueError(pair_id)
        return -float(score), pk
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
        start = _position(state, tenant, after)
        pairs = [p for p in pairs if (-p.score, p.pk) > start]
    page = pairs[:limit]
    public = state.pair_ids.public
    cursor = f"{page[-1].score!r}/{public(tenant, page[-1].pk)}" if len(pairs) > limit else None
    return ReviewPage(pairs=[ReviewPairOut.of(p, pair_id=public(tenant, p.pk)) for p in page], next=cursor)


@router.post("/{pair_id}", responses=error_responses(400, 404, 413, 415))
def decide(
    tenant: Tenant,
    state: State,
    pair_id: Annotated[int, Path(ge=1, le=2**63 - 1, description="The pair's id (as the review list gives it)")],
    body: DecisionIn,
) -> ReviewPairOut:
    """Record ``duplicate`` or ``not_duplicate``; later checks honour it. 404 for another tenant's pair."""
    pk = state.pair_ids.private(tenant, pair_id)
    try:
        if pk is None:
            raise NotFound(pair_id)
        decided = state.index.decide(pk, Decision(body.decision), scope=tenant)
    except NotFound:
        # in the tenant's own words: the store's message names the row, which other tenants share
        raise NotFound(f"no review pair {pair_id}") from None
    return ReviewPairOut.of(decided, pair_id=pair_id)
