"""``/v1/check``: is this picture already stored? Stores nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool

from lookalike.service.auth import State, Tenant
from lookalike.service.lookup import check_hashes
from lookalike.service.schemas import (
    CheckOut,
    HashBatchIn,
    HashBatchOut,
    HashCheckBody,
    HashCheckOut,
    error_responses,
)

router = APIRouter(prefix="/v1/check", tags=["check"], responses=error_responses(401, 422, 429))


@router.post("", responses=error_responses(400, 413, 415, 503))
async def check(tenant: Tenant, state: State, file: Annotated[UploadFile, File(description="The picture")]) -> CheckOut:
    """The verdict and the matching stored images of the key's tenant, best first."""

    def work() -> CheckOut:
        # read inside the slot: the parsed upload waits on disk (spooled past 1 MB), not in memory.
        # Decoded in the thread's budgeted process with the pixel digest (the one signal that
        # would need another decode later); the cascade computes local features itself, from the
        # working-size pixels, when a candidate calls for them. With the learned tier, the same process
        # embeds the pixels, and the check fuses that vector in as ``check --learned`` does
        analysis, vector = state.decoder.analyse(file.file.read(), storing=False)
        found = state.index.check_analysis(analysis, scope=tenant, top=state.settings.top, embedding=vector)
        return CheckOut.of(found)

    return await state.run_picture(tenant, work)


#: batches up to this many items are answered on the event loop: a few look-ups by key, under a
#: millisecond, quicker than two thread switches; larger batches go to a worker thread
_QUICK_ITEMS = 4


@router.post("/hash", responses=error_responses(400, 413, 415))
async def check_hash(tenant: Tenant, state: State, body: HashCheckBody) -> HashCheckOut | HashBatchOut:
    """A pre-upload check from hashes: exact by ``sha256``, near by ``phash`` (hashes only). A batch
    (``{"items": [{"sha256", "phash"}, ...]}``) gets ``{"results": [...]}``, one answer per item."""
    if isinstance(body, HashBatchIn):
        items = body.items

        def answer_all() -> HashBatchOut:
            return HashBatchOut(results=[check_hashes(state, tenant, item) for item in items])

        if len(items) > _QUICK_ITEMS:
            return await run_in_threadpool(answer_all)
        return answer_all()
    return check_hashes(state, tenant, body)
