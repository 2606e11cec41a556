"""``/v1/check``: is this picture already stored? Stores nothing."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, UploadFile
from starlette.concurrency import run_in_threadpool

from lookalike.fingerprints import analyse
from lookalike.service.auth import State, Tenant
from lookalike.service.lookup import check_hashes
from lookalike.service.schemas import CheckOut, HashBatchIn, HashBatchOut, HashCheckBody, HashCheckOut

router = APIRouter(prefix="/v1/check", tags=["check"])


@router.post("")
async def check(tenant: Tenant, state: State, file: Annotated[UploadFile, File(description="The picture")]) -> CheckOut:
    """The verdict and the matching stored images of the key's tenant, best first."""
    data = await file.read()  # parsed into memory already (spooled to disk only past 1 MB)

    def work() -> CheckOut:
        # only what a check needs: the cascade computes local features and the pixel digest itself,
        # when a candidate calls for them (an upload computes both up front, for storing)
        analysis = analyse(data, name="upload", limits=state.settings.limits)
        with state.searching() as index:
            result = index.check_analysis(analysis, scope=tenant, top=state.settings.top)
        return CheckOut.of(result)

    return await state.run_check(work)


#: batches up to this many items are answered on the event loop (see ``ServiceState.run_quick``)
_QUICK_ITEMS = 4


@router.post("/hash")
async def check_hash(tenant: Tenant, state: State, body: HashCheckBody) -> HashCheckOut | HashBatchOut:
    """A pre-upload check from hashes: exact by ``sha256``, near by ``phash`` (hashes only). A batch
    (``{"items": [{"sha256", "phash"}, ...]}``) gets ``{"results": [...]}``, one answer per item."""
    if isinstance(body, HashBatchIn):
        items = body.items

        def answer_all() -> HashBatchOut:
            return HashBatchOut(results=[check_hashes(state, tenant, item) for item in items])

        if len(items) > _QUICK_ITEMS:
            return await run_in_threadpool(answer_all)
        return await state.run_quick(answer_all)
    single = body
    return await state.run_quick(lambda: check_hashes(state, tenant, single))
