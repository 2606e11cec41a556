"""``/v1/images``: store (check first), list, read, download, delete, and find look-alikes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Annotated, BinaryIO
from urllib.parse import quote

from fastapi import APIRouter, File, Form, Path, Query, Response, UploadFile
from fastapi.responses import StreamingResponse

from lookalike.errors import NotFound
from lookalike.index.store.records import OnDuplicate, rendition_name
from lookalike.service.auth import State, Tenant
from lookalike.service.schemas import (
    ID_PATTERN,
    FromUrlIn,
    ImageOut,
    ImagePage,
    MatchOut,
    UploadOut,
    error_responses,
)
from lookalike.service.uploads import Stored, analyse_upload, remove_image, store_upload

router = APIRouter(prefix="/v1/images", tags=["images"], responses=error_responses(401, 422, 429))

ImageId = Annotated[str, Form(pattern=ID_PATTERN, description="Image id; assigned when absent")]
#: an image id in a path: as long as an id may be
PathId = Annotated[str, Path(max_length=200)]


def _created(stored: Stored, response: Response) -> UploadOut:
    response.status_code = 201
    response.headers["Location"] = f"/v1/images/{quote(stored.record.image_id, safe='')}"
    return UploadOut(
        image=ImageOut.of(stored.record), verdict=stored.check.verdict,
        matches=[MatchOut.of(m) for m in stored.check.matches], review=stored.reviewed, replaced=stored.replaced,
    )  # fmt: skip


#: what an operation that stores a picture may answer besides 201
_STORING = error_responses(400, 409, 413, 415, 503)


@router.post("", status_code=201, responses=_STORING)
async def upload(
    tenant: Tenant,
    state: State,
    response: Response,
    file: Annotated[UploadFile, File(description="The picture")],
    id: Annotated[str | None, Form(pattern=ID_PATTERN, description="Image id; assigned when absent")] = None,
    rendition: Annotated[str, Form(pattern=ID_PATTERN)] = "original",
    on_duplicate: Annotated[OnDuplicate, Form()] = OnDuplicate.REJECT,
) -> UploadOut:
    """Store a picture unless the tenant has it already (409 names the stored image). Giving the
    ``id`` of a stored image adds a rendition to it. ``on_duplicate``: ``reject`` (409), ``store``
    anyway, ``review`` (store and list the pair), or ``replace``: the upload takes the place of the
    stored copy's file (or, with ``id``, of that image's ``rendition``), which keeps its id, other
    renditions and review pairs."""

    def work() -> Stored:
        # read inside the slot: the parsed upload waits on disk (spooled past 1 MB), not in memory
        analysis = analyse_upload(state, file.file.read())
        return store_upload(state, tenant, analysis, image_id=id, rendition=rendition, on_duplicate=on_duplicate)

    return _created(await state.run_picture(tenant, work), response)


@router.post("/from-url", status_code=201, responses=_STORING)
async def upload_from_url(tenant: Tenant, state: State, response: Response, body: FromUrlIn) -> UploadOut:
    """Fetch a picture from a public http(s) URL, then store it like an upload."""
    # the fetch slot is held until the picture is stored: fetched bodies in memory stay within
    # ``fetch_slots`` per worker, instead of piling up while they wait for a picture slot
    async with state.fetches.slot(tenant):
        source = await state.fetcher.fetch(body.url)

        def work() -> Stored:
            analysis = analyse_upload(state, source.data)
            return store_upload(
                state, tenant, analysis, image_id=body.id, rendition=body.rendition, on_duplicate=body.on_duplicate
            )

        return _created(await state.run_picture(tenant, work), response)


@router.get("")
def list_images(
    tenant: Tenant,
    state: State,
    after: Annotated[str, Query(max_length=200, description="The `next` of the previous page")] = "",
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ImagePage:
    """The tenant's images ordered by id, a page at a time."""
    records = state.index.images(scope=tenant, after=after, limit=limit + 1)
    page = records[:limit]
    return ImagePage(images=[ImageOut.of(r) for r in page], next=page[-1].image_id if len(records) > limit else None)


@router.get("/{image_id}", responses=error_responses(404))
def get_image(tenant: Tenant, state: State, image_id: PathId) -> ImageOut:
    """One image with its files."""
    return ImageOut.of(state.index.get(image_id, scope=tenant))


@router.get(
    "/{image_id}/file",
    response_class=Response,
    responses={200: {"content": {"image/*": {}}}, **error_responses(404)},
)
def get_file(
    tenant: Tenant,
    state: State,
    image_id: PathId,
    rendition: Annotated[str | None, Query(max_length=200, description="Default: the first file stored")] = None,
) -> Response:
    """The bytes of one of the image's files."""
    record = state.index.get(image_id, scope=tenant)
    files = [f for f in record.files if rendition in (None, f.rendition, rendition_name(f.rendition))]
    if not files:
        raise NotFound(f"image {image_id} has no rendition {rendition!r}")
    f = files[0]
    fh = state.storage.open(f.source)
    size = os.fstat(fh.fileno()).st_size
    return StreamingResponse(
        _chunks(fh),
        media_type=f.fingerprint.mime,
        headers={
            "ETag": f'"{f.fingerprint.sha256.hex()}"', "Cache-Control": "private, max-age=3600",
            "Content-Length": str(size),
        },
    )  # fmt: skip


#: bytes read from storage and handed to the connection at a time. The server writes a chunk only
#: once the connection's buffer has drained below its high-water mark (64 KB), so a download holds
#: at most about two chunks and that buffer in memory, whatever the file's size and however slowly
#: the client reads (a client that never reads holds about 200 KB, not the file)
DOWNLOAD_CHUNK_BYTES = 64 * 1024


def _chunks(fh: BinaryIO) -> Iterator[bytes]:
    """The file's bytes, a chunk at a time (read in a worker thread: Starlette iterates a plain
    iterator off the event loop); the file is closed at the end or when the client goes away."""
    with fh:
        while chunk := fh.read(DOWNLOAD_CHUNK_BYTES):
            yield chunk


@router.delete("/{image_id}", status_code=204, responses=error_responses(404))
def delete_image(tenant: Tenant, state: State, image_id: PathId) -> Response:
    """Delete the image, all its files and its review pairs."""
    remove_image(state, tenant, image_id)
    return Response(status_code=204)


@router.get("/{image_id}/similar", responses=error_responses(404))
def similar(
    tenant: Tenant, state: State, image_id: PathId, top: Annotated[int, Query(ge=1, le=100)] = 10
) -> list[MatchOut]:
    """The tenant's other images that match this one, best first; with the learned tier, then its
    semantic neighbours apart (``"semantic": true``: a burst shot, the same scene re-shot), best first."""
    matches = state.index.similar(image_id, scope=tenant, top=top)
    return [MatchOut.of(m) for m in matches]
