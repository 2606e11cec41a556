"""The API's request and response models: what clients see, kept apart from the store's rows
(``from_record`` and friends translate, and decide what a client may know)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from lookalike.index import CheckMatch, CheckResult, ImageRecord, ReviewPair, StoredFile

__all__ = [
    "ID_PATTERN",
    "CheckOut",
    "DecisionIn",
    "FileOut",
    "FromUrlIn",
    "HashBatchIn",
    "HashBatchOut",
    "HashCheckBody",
    "HashCheckIn",
    "HashCheckOut",
    "HealthOut",
    "ImageOut",
    "ImagePage",
    "MatchOut",
    "OnDuplicate",
    "ReviewPairOut",
    "UploadOut",
]

#: image ids and rendition names: what fits in a URL path segment unescaped
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$"


class OnDuplicate(StrEnum):
    """What an upload does when it is a copy of a stored image."""

    REJECT = "reject"  # answer 409 with the stored image
    STORE = "store"  # store it anyway (exact copies of the bytes are never stored twice)
    REVIEW = "review"  # store it and put the pair on the review list


class MatchOut(BaseModel):
    """A stored image that matches, as in a ``lookalike check --json`` line."""

    id: str
    score: float
    verdict: str
    explanation: str
    rendition: str

    @classmethod
    def of(cls, m: CheckMatch) -> MatchOut:
        return cls(
            id=m.image_id, score=round(m.score, 4), verdict=m.verdict.value, explanation=m.explanation,
            rendition=m.file.rendition,
        )  # fmt: skip


class CheckOut(BaseModel):
    """The verdict on a picture and the stored images it matches, best first."""

    verdict: str
    matches: list[MatchOut]

    @classmethod
    def of(cls, result: CheckResult) -> CheckOut:
        return cls(verdict=result.verdict, matches=[MatchOut.of(m) for m in result.matches])


class FileOut(BaseModel):
    """One stored file (rendition) of an image."""

    rendition: str
    sha256: str
    mime: str
    width: int
    height: int
    bytes: int
    phash: str
    created_at: float
    url: str

    @classmethod
    def of(cls, f: StoredFile) -> FileOut:
        fp = f.fingerprint
        return cls(
            rendition=f.rendition, sha256=fp.sha256.hex(), mime=fp.mime, width=fp.width, height=fp.height,
            bytes=fp.byte_size, phash=f"{fp.phash:016x}", created_at=f.created_at,
            url=f"/v1/images/{quote(f.image_id, safe='')}/file?rendition={quote(f.rendition, safe='')}",
        )  # fmt: skip


class ImageOut(BaseModel):
    """An image: its id and its files."""

    id: str
    created_at: float
    files: list[FileOut]

    @classmethod
    def of(cls, r: ImageRecord) -> ImageOut:
        return cls(id=r.image_id, created_at=r.created_at, files=[FileOut.of(f) for f in r.files])


class ImagePage(BaseModel):
    """A page of images ordered by id; pass ``next`` as ``after`` for the following page."""

    images: list[ImageOut]
    next: str | None


class UploadOut(BaseModel):
    """A stored upload: the image (with all its renditions) and what the check found before storing."""

    image: ImageOut
    verdict: str
    matches: list[MatchOut]
    review: int = Field(description="pairs put on the review list by this upload")


class HashCheckIn(BaseModel):
    """Hashes computed by the client before uploading (``lookalike hash --json`` prints both)."""

    model_config = ConfigDict(extra="forbid")

    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$", description="SHA-256 of the file")
    phash: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{16}$", description="lookalike's 64-bit pHash")

    @model_validator(mode="after")
    def _one_hash_at_least(self) -> HashCheckIn:
        if self.sha256 is None and self.phash is None:
            raise ValueError("give sha256, phash or both")
        return self


class HashCheckOut(CheckOut):
    """``upload_needed`` is false when the server holds these exact bytes already."""

    upload_needed: bool


#: the most files one ``POST /v1/check/hash`` may ask about
MAX_HASH_BATCH = 500


class HashBatchIn(BaseModel):
    """Many files' hashes in one request (``{"items": [...]}``): a browser pre-checking a whole selection."""

    model_config = ConfigDict(extra="forbid")

    items: list[HashCheckIn] = Field(min_length=1, max_length=MAX_HASH_BATCH)


def _hash_body_kind(value: Any) -> str:
    return "batch" if isinstance(value, dict) and "items" in value else "single"


#: the body of ``POST /v1/check/hash``: one file's hashes, or a batch; a bad body is reported against
#: the form it was meant as (not against both)
HashCheckBody = Annotated[
    Annotated[HashCheckIn, Tag("single")] | Annotated[HashBatchIn, Tag("batch")], Discriminator(_hash_body_kind)
]


class HashBatchOut(BaseModel):
    """One answer per item, in the order asked."""

    results: list[HashCheckOut]


class FromUrlIn(BaseModel):
    """An image to fetch from the web and store like an upload."""

    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=4096)
    id: str | None = Field(default=None, pattern=ID_PATTERN)
    rendition: str = Field(default="original", pattern=ID_PATTERN)
    on_duplicate: OnDuplicate = OnDuplicate.REJECT


class ReviewPairOut(BaseModel):
    """Two images judged ``similar``, waiting for (or carrying) a person's decision."""

    pair_id: int
    a: str
    b: str
    score: float
    verdict: str
    evidence: str
    decision: str
    created_at: float
    decided_at: float | None

    @classmethod
    def of(cls, p: ReviewPair) -> ReviewPairOut:
        return cls(
            pair_id=p.pk, a=p.a_id, b=p.b_id, score=round(p.score, 4), verdict=p.verdict, evidence=p.evidence,
            decision=p.decision.value, created_at=p.created_at, decided_at=p.decided_at,
        )  # fmt: skip


class DecisionIn(BaseModel):
    """A person's word on a review pair."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["duplicate", "not_duplicate"]


class HealthOut(BaseModel):
    """The service answers and its database too."""

    status: Literal["ok"]
