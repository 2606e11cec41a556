"""Check-then-store: the heart of ``POST /v1/images``.

Fingerprinting (the expensive part) happens before any lock. Then, holding
the tenant's lock (``Index.scope_lock``: a file lock beside an SQLite
database, an advisory lock in PostgreSQL, so it spans worker processes):
check against what the tenant has, decide, write the file, commit the row
(``Index.add_checked``, which writes the file through its ``before_storing``).
Two uploads of one picture (the same bytes or an edited copy) can therefore
never both be judged new. The file is durable on disk before the row
commits, and a failed commit removes a file this upload wrote: every row has
its file, whatever moment a crash picks. An upload that replaces a stored file
(``on_duplicate=replace``) deletes the old file only once the new row has
committed: until then the old row and its file stand as they were.
"""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.index import CheckMatch, CheckResult, ImageRecord
from lookalike.index.results import Outcome
from lookalike.index.store.records import OnDuplicate, rendition_name
from lookalike.service.decoding import Analysed
from lookalike.service.errors import Duplicate
from lookalike.service.state import ServiceState

__all__ = ["Stored", "analyse_upload", "remove_image", "store_upload"]


@dataclass(frozen=True, slots=True)
class Stored:
    """What an upload became: the image with all its files, the check before storing, review pairs
    added, and the rendition whose file it replaced (None unless it replaced one)."""

    record: ImageRecord
    check: CheckResult
    reviewed: int
    replaced: str | None = None


def analyse_upload(state: ServiceState, data: bytes) -> Analysed:
    """Every signal of an upload, local features and the full-resolution pixel digest included
    (the bytes are not read again later), and with the learned tier its embedding, computed in the
    thread's budgeted decoding process. Raises ``InputError`` subclasses (``DecodeTimeout`` past
    the budget)."""
    return state.decoder.analyse(data, storing=True)


def _details(m: CheckMatch) -> dict[str, object]:
    return {"id": m.image_id, "verdict": m.verdict.value, "score": round(m.score, 4), "evidence": m.explanation}


def store_upload(
    state: ServiceState,
    tenant: str,
    analysed: Analysed,
    *,
    image_id: str | None,
    rendition: str,
    on_duplicate: OnDuplicate,
) -> Stored:
    """Store an analysed upload (with its embedding, in the same transaction) for ``tenant`` unless
    it is a copy. Raises ``Duplicate``."""
    analysis, vector = analysed
    index = state.index
    fp = analysis.fingerprint
    key = state.storage.key(tenant, fp.sha256, fp.mime)
    written = False

    def write_file() -> None:  # once the upload is to be stored, before its rows commit
        nonlocal written
        written = state.storage.put(key, analysis.data)

    with index.scope_lock(tenant):
        try:
            done = index.add_checked(
                analysis, key, scope=tenant, on_duplicate=on_duplicate, image_id=image_id, rendition=rendition,
                top=state.settings.top, before_storing=write_file, embedding=vector,
            )  # fmt: skip
        except BaseException:
            if written and not index.files_by_sha(fp.sha256, scope=tenant):
                state.storage.delete(key)
            raise
        best = done.because
        if done.outcome is Outcome.RENDITION_TAKEN:
            raise Duplicate(
                f"image {image_id} has a rendition {rendition!r} already",
                details={"id": image_id, "verdict": "rendition_exists", "score": 0.0, "evidence": ""},
            )
        if done.outcome is Outcome.REJECTED and best is not None:
            raise Duplicate(
                f"a copy of stored image {best.image_id} ({best.verdict.value}, score {best.score:.2f})",
                details=_details(best),
            )
        if done.outcome is Outcome.PRESENT and best is not None:
            raise Duplicate(f"these exact bytes are stored already, as image {best.image_id}", details=_details(best))
        old = done.replaced
        if old is not None and old.source != key and not index.files_by_sha(old.fingerprint.sha256, scope=tenant):
            state.storage.delete(old.source)  # its row is gone: the new one committed
        # added, or present because the same bytes were stored between the check and the write (no match
        # to show: the check saw none), so the upload answers with the image that holds them
        record = index.get(str(done.image_id), scope=tenant)
    return Stored(record, done.check, done.review, None if old is None else rendition_name(old.rendition))


def remove_image(state: ServiceState, tenant: str, image_id: str) -> None:
    """Delete an image: its rows first, then its files, under the tenant's lock. Raises ``NotFound``."""
    index = state.index
    with index.scope_lock(tenant):
        record = index.get(image_id, scope=tenant)
        state.index.remove(image_id, scope=tenant)
        for f in record.files:
            state.storage.delete(f.source)
