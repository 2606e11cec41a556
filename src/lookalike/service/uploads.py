"""Check-then-store: the heart of ``POST /v1/images``.

Fingerprinting (the expensive part) happens before any lock. Then, holding
the tenant's lock (``Store.scope_lock``: a file lock beside an SQLite
database, an advisory lock in PostgreSQL, so it spans worker processes):
check against what the tenant has, decide, write the file, commit the row.
Two uploads of one picture (the same bytes or an edited copy) can therefore
never both be judged new. The file is durable on disk before the row
commits, and a failed commit removes a file this upload wrote: every row has
its file, whatever moment a crash picks.
"""

from __future__ import annotations

from dataclasses import dataclass

from lookalike.errors import NotFound
from lookalike.fingerprints import Analysis, analyse
from lookalike.index import CheckMatch, CheckResult, ImageRecord
from lookalike.index.records import OnDuplicate
from lookalike.match import Verdict
from lookalike.service.errors import Duplicate
from lookalike.service.state import ServiceState

__all__ = ["Stored", "analyse_upload", "remove_image", "store_upload"]


@dataclass(frozen=True, slots=True)
class Stored:
    """What an upload became: the image with all its files, the check before storing, review pairs added."""

    record: ImageRecord
    check: CheckResult
    reviewed: int


def analyse_upload(state: ServiceState, data: bytes) -> Analysis:
    """Every signal of an upload, local features and the full-resolution pixel digest included
    (the bytes are not read again later). Raises ``InputError`` subclasses."""
    return analyse(data, name="upload", limits=state.settings.limits, local=True, with_pixel_digest=True)


def _details(m: CheckMatch) -> dict[str, object]:
    return {"id": m.image_id, "verdict": m.verdict.value, "score": round(m.score, 4), "evidence": m.explanation}


def store_upload(
    state: ServiceState,
    tenant: str,
    analysis: Analysis,
    *,
    image_id: str | None,
    rendition: str,
    on_duplicate: OnDuplicate,
) -> Stored:
    """Store an analysed upload for ``tenant`` unless it is a copy. Raises ``Duplicate``."""
    store = state.index.store
    fp = analysis.fingerprint
    with store.scope_lock(tenant):
        check = state.index.check_analysis(analysis, scope=tenant, top=state.settings.top)
        exact = next((m for m in check.matches if m.verdict is Verdict.IDENTICAL), None)
        if exact is not None:
            raise Duplicate(f"these exact bytes are stored already, as image {exact.image_id}", details=_details(exact))
        if image_id is not None:
            try:
                existing = store.image(tenant, image_id)
            except NotFound:
                pass
            else:
                if any(f.rendition == rendition for f in existing.files):
                    raise Duplicate(
                        f"image {image_id} has a rendition {rendition!r} already",
                        details={"id": image_id, "verdict": "rendition_exists", "score": 0.0, "evidence": ""},
                    )
        # another rendition of the image named by ``id`` is not a duplicate of it
        copies = [m for m in check.matches if m.verdict.is_duplicate and m.image_id != image_id]
        if copies and on_duplicate is OnDuplicate.REJECT:
            best = copies[0]
            raise Duplicate(
                f"a copy of stored image {best.image_id} ({best.verdict.value}, score {best.score:.2f})",
                details=_details(best),
            )
        key = state.storage.key(tenant, fp.sha256, fp.mime)
        written = state.storage.put(key, analysis.data)
        try:
            (added,) = state.index.add_analyses([(analysis, key)], scope=tenant, image_id=image_id, rendition=rendition)
            record = store.image(tenant, added.image_id)
            reviewed = 0
            if on_duplicate is OnDuplicate.REVIEW:
                for m in copies:
                    store.add_review(
                        tenant, m.file.image_pk, record.pk, score=m.score, verdict=m.verdict.value,
                        evidence=m.explanation,
                    )  # fmt: skip
                    reviewed += 1
            reviewed += sum(1 for m in check.matches if m.verdict is Verdict.SIMILAR and m.image_id != image_id)
        except BaseException:
            if written and not store.files_by_sha(tenant, fp.sha256):
                state.storage.delete(key)
            raise
    return Stored(record=record, check=check, reviewed=reviewed)


def remove_image(state: ServiceState, tenant: str, image_id: str) -> None:
    """Delete an image: its rows first, then its files, under the tenant's lock. Raises ``NotFound``."""
    store = state.index.store
    with store.scope_lock(tenant):
        record = store.image(tenant, image_id)
        state.index.remove(image_id, scope=tenant)
        for f in record.files:
            state.storage.delete(f.source)
