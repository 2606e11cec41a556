"""The API's request and response models: what clients see, kept apart from the store's rows
(``from_record`` and friends translate, and decide what a client may know)."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

from lookalike.index import CheckMatch, CheckResult, ImageRecord, ReviewPair, StoredFile
from lookalike.index.store.records import OnDuplicate, iso_time, rendition_name

__all__ = [
    "ID_PATTERN",
    "CheckOut",
    "DecisionIn",
    "DuplicateOut",
    "ErrorOut",
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
    "ReviewPage",
    "ReviewPairOut",
    "SettingsOut",
    "ThresholdsOut",
    "error_responses",
    "file_url",
    "UploadOut",
]

#: image ids and rendition names: what fits in a URL path segment unescaped
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:@+=-]{0,199}$"


def file_url(image_id: str, rendition: str) -> str:
    """Where a client downloads one stored file (``GET /v1/images/{id}/file``)."""
    shown = rendition_name(rendition)
    return f"/v1/images/{quote(image_id, safe='')}/file?rendition={quote(shown, safe='')}"


class MatchOut(BaseModel):
    """A stored image that matches: the same keys as a match in a ``lookalike check --json`` line
    (``CheckMatch.to_dict``), ``source`` being the stored file's URL."""

    id: str
    rendition: str
    score: float
    verdict: str
    evidence: str
    source: str = Field(description="URL of the stored file that matched")
    path: str = Field(description="The same as `source` (the key `check --json` lines have always had)")
    semantic: bool = Field(
        default=False,
        description="With the learned tier: a semantic neighbour (a burst shot, the same scene re-shot), similar "
        "by the embedding alone, never a copy",
    )

    @classmethod
    def of(cls, m: CheckMatch) -> MatchOut:
        return cls.model_validate(m.to_dict(source=file_url(m.image_id, m.file.rendition)))


class CheckOut(BaseModel):
    """The verdict on a picture and the stored images it matches, best first (``CheckResult.to_dict``)."""

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
    created_at: str = Field(description="ISO 8601, UTC")
    url: str

    @classmethod
    def of(cls, f: StoredFile) -> FileOut:
        fp = f.fingerprint
        return cls(
            rendition=rendition_name(f.rendition), sha256=fp.sha256.hex(), mime=fp.mime, width=fp.width,
            height=fp.height, bytes=fp.byte_size, phash=f"{fp.phash:016x}", created_at=iso_time(f.created_at),
            url=file_url(f.image_id, f.rendition),
        )  # fmt: skip


class ImageOut(BaseModel):
    """An image: its id and its files."""

    id: str
    created_at: str = Field(description="ISO 8601, UTC")
    files: list[FileOut]

    @classmethod
    def of(cls, r: ImageRecord) -> ImageOut:
        return cls(id=r.image_id, created_at=iso_time(r.created_at), files=[FileOut.of(f) for f in r.files])


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
    replaced: str | None = Field(
        default=None,
        description="With `on_duplicate=replace`: the rendition of `image` whose file this upload took the place of "
        "(the image keeps its id, other renditions and review pairs); null when nothing was replaced",
    )


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
    """Two images judged ``similar``, waiting for (or carrying) a person's decision: the shape of a
    ``lookalike review --json`` line (``ReviewPair.to_dict``)."""

    pair_id: int = Field(description="The pair's id, for this tenant (ids of different tenants' pairs are unrelated)")
    scope: str
    a: str
    b: str
    score: float
    verdict: str
    evidence: str
    decision: str
    created_at: str = Field(description="ISO 8601, UTC")
    decided_at: str | None = Field(description="ISO 8601, UTC; null while pending")
    a_source: str | None = Field(description="Where image a's file is stored (its URL or path)")
    b_source: str | None = Field(description="Where image b's file is stored (its URL or path)")

    @classmethod
    def of(cls, p: ReviewPair, *, pair_id: int) -> ReviewPairOut:
        """The pair as its tenant sees it: ``pair_id`` is its public id (``service.pairids``)."""
        return cls.model_validate({**p.to_dict(), "pair_id": pair_id})


class ReviewPage(BaseModel):
    """A page of review pairs, best score first; pass ``next`` as ``after`` for the following page."""

    pairs: list[ReviewPairOut]
    next: str | None


class DecisionIn(BaseModel):
    """A person's word on a review pair."""

    model_config = ConfigDict(extra="forbid")

    decision: Literal["duplicate", "not_duplicate"]


class ErrorDetailOut(BaseModel):
    """What went wrong: a stable ``code`` and one line for a person (``lookalike.errors.ErrorDetail``)."""

    code: str = Field(examples=["not_found"])
    message: str


class ErrorOut(BaseModel):
    """Every error answer: ``{"error": {"code", "message"}}``, as ``--json`` prints errors."""

    error: ErrorDetailOut


class DuplicateDetailOut(ErrorDetailOut):
    """A 409: the stored image the upload is a copy of (or whose rendition exists already)."""

    id: str
    verdict: str
    score: float
    evidence: str


class DuplicateOut(BaseModel):
    """A 409 answer: the error, naming the stored image."""

    error: DuplicateDetailOut


_ERRORS: dict[int, tuple[type[BaseModel], str]] = {
    400: (ErrorOut, "The body cannot be parsed (malformed JSON or multipart)"),
    401: (ErrorOut, "No API key, or one that is not valid: send `Authorization: Bearer KEY`"),
    404: (ErrorOut, "Nothing of that id for this key's tenant"),
    409: (DuplicateOut, "A copy of a stored image, which the error names"),
    413: (ErrorOut, "The body, or the picture's size or decoding memory, is over the server's limits"),
    415: (ErrorOut, "The body is not of the media type this operation reads, or the picture's format is refused"),
    422: (ErrorOut, "A parameter or field is missing or invalid, or the picture cannot be decoded"),
    429: (ErrorOut, "This key's request budget or share of the queue is spent: retry after `Retry-After` seconds"),
    503: (ErrorOut, "The server's queue is full or its database unavailable: retry after `Retry-After` seconds"),
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for these error statuses, each with the service's error body."""
    return {status: {"model": _ERRORS[status][0], "description": _ERRORS[status][1]} for status in statuses}


class HealthOut(BaseModel):
    """The service answers and its database too."""

    status: Literal["ok"]


class ThresholdsOut(BaseModel):
    """Score cut-offs (scores in [0, 1]): at or above ``near_duplicate`` a match is a near duplicate,
    at or above ``similar`` it is similar (worth a person's look)."""

    near_duplicate: float = Field(ge=0, le=1)
    similar: float = Field(ge=0, le=1)


class SettingsOut(BaseModel):
    """What this service judges with and accepts: the thresholds every verdict is judged by (the
    settings file ``lookalike serve`` was given, else the built-in ones), the matches a check
    lists, and the largest upload and picture it reads."""

    thresholds: ThresholdsOut
    top: int = Field(description="Matches a check or upload lists at most")
    max_upload_bytes: int
    max_pixels: int = Field(description="The largest picture decoded, by the size its header declares")
    learned: str | None = Field(
        default=None, description="The learned tier's encoder (model and weights' hash) when it is on, else null"
    )
