"""Values that go into a store and come out of it: files to add, images, their files (renditions),
review pairs, API keys; and the 64-bit conversions every dialect stores hashes with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # a type only: records load without NumPy, for the command line's start-up
    from lookalike.fingerprints import Fingerprint

__all__ = [
    "DEFAULT_RENDITION",
    "DEFAULT_SCOPE",
    "LOCAL_CODES",
    "ApiKey",
    "CodeRow",
    "Decision",
    "ImageRecord",
    "NewFile",
    "OnDuplicate",
    "ReviewPair",
    "StoreStats",
    "StoredFile",
    "automatic_image_id",
    "iso_time",
    "rendition_name",
    "signed64",
    "unsigned64",
]

#: descriptors per file kept for retrieval (the ``local_codes`` table)
LOCAL_CODES = 64

#: the rendition a file is shown under when it was stored without a name (the command line's
#: ``index`` stores ``""``; the service names it ``original``): one name in every JSON answer
DEFAULT_RENDITION = "original"


def rendition_name(stored: str) -> str:
    """The rendition as every JSON answer shows it: ``DEFAULT_RENDITION`` for an unnamed one."""
    return stored or DEFAULT_RENDITION


def iso_time(epoch_s: float) -> str:
    """A stored time (seconds since the epoch) as every JSON answer shows it: ISO 8601 in UTC,
    to the millisecond, e.g. ``2026-12-02T08:00:00.000Z``."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def automatic_image_id(sha256: bytes, taken: Callable[[str], bool]) -> str:
    """The id an image stored without one gets: the first 16 hex digits of its SHA-256, or more of
    them when another image of the scope holds that id already (a client may have chosen it for a
    different picture, which must not silently gain this one as a rendition)."""
    digits = sha256.hex()
    for n in (16, 24, 32, 64):
        if not taken(digits[:n]):
            return digits[:n]
    n = 2
    while taken(f"{digits}-{n}"):
        n += 1
    return f"{digits}-{n}"


#: the scope of images added without one
DEFAULT_SCOPE = "default"


class OnDuplicate(StrEnum):
    """What adding does with a copy of a stored image (``index.policy``). Values are typed on the
    command line and sent over HTTP: never rename one."""

    REJECT = "reject"  #: leave it out (HTTP: 409 with the stored image)
    STORE = "store"  #: store it anyway (the same bytes are still never stored twice)
    REVIEW = "review"  #: store it and put the pair on the review list
    #: store it in place of the stored copy's file: the copy's image id, other renditions and review
    #: pairs stay (HTTP: 201 with that image)
    REPLACE = "replace"


class Decision(StrEnum):
    """A person's word on a potential-duplicate pair. Values are stored: never rename one."""

    PENDING = "pending"
    DUPLICATE = "duplicate"
    NOT_DUPLICATE = "not_duplicate"

    @property
    def duplicate(self) -> bool | None:
        """The person's word as ``lookalike.match.decision`` takes it: None while pending."""
        return None if self is Decision.PENDING else self is Decision.DUPLICATE


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One stored file: a rendition of an image, with its fingerprint.

    ``pk`` is the file's row number, the key the Hamming indexes use;
    ``image_pk`` the row of the image it belongs to.
    """

    pk: int
    image_pk: int
    image_id: str
    scope: str
    rendition: str
    source: str
    fingerprint: Fingerprint
    created_at: float


@dataclass(frozen=True, slots=True)
class ImageRecord:
    """An image as the user knows it: an id in a scope, and its files."""

    pk: int
    image_id: str
    scope: str
    created_at: float
    files: tuple[StoredFile, ...]


@dataclass(frozen=True, slots=True)
class ReviewPair:
    """Two images of one scope judged ``similar``, and what a person decided."""

    pk: int
    scope: str
    a_id: str
    b_id: str
    a_pk: int
    b_pk: int
    score: float
    verdict: str
    evidence: str
    decision: Decision
    created_at: float
    decided_at: float | None
    a_source: str = ""
    b_source: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form shared by ``lookalike review --json`` and the service's ``/v1/review``, times in
        ISO 8601: its shape is the service's ``ReviewPairOut`` (declared there once; the CLI's JSON is
        tested against it)."""
        return dict(
            pair_id=self.pk, scope=self.scope, a=self.a_id, b=self.b_id, score=round(self.score, 4),
            verdict=self.verdict, evidence=self.evidence, decision=self.decision.value,
            created_at=iso_time(self.created_at),
            decided_at=None if self.decided_at is None else iso_time(self.decided_at),
            a_source=self.a_source or None, b_source=self.b_source or None,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoreStats:
    """Counts for ``lookalike stats``."""

    scopes: int
    images: int
    files: int
    review_pending: int
    review_decided: int
    bytes_on_disk: int
    #: files whose stored fingerprint is older than ``FINGERPRINT_VERSION``
    outdated_fingerprints: int = 0

    def to_dict(self) -> dict[str, int]:
        """JSON form (``lookalike stats --json``)."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key of the service as stored: its public id, its scope (tenant), never the key itself."""

    key_id: str
    scope: str
    name: str
    created_at: float
    revoked_at: float | None = None


def signed64(value: int) -> int:
    """An unsigned 64-bit hash as a signed 64-bit SQL integer (SQLite's INTEGER, PostgreSQL's bigint)."""
    value = int(value)  # a ``Hash64`` subtracts as a Hamming distance: plain integer arithmetic here
    return value - (1 << 64) if value >= 1 << 63 else value


def unsigned64(value: int) -> int:
    """Back from ``signed64``."""
    return value + (1 << 64) if value < 0 else value


@dataclass(frozen=True, slots=True)
class NewFile:
    """A file to add: its fingerprint, where it came from, and which image it belongs to."""

    fingerprint: Fingerprint
    scope: str
    source: str = ""
    image_id: str | None = None
    rendition: str = ""
    local: bytes | None = None
    #: the learned tier's (model name, float16 vector bytes), stored with the file when asked for
    embedding: tuple[str, bytes] | None = None

    @property
    def local_codes(self) -> bytes:
        """The first ``LOCAL_CODES`` descriptors of ``local`` (each region's strongest: ``spread_order``;
        empty without local features)."""
        if self.local is None:
            return b""
        from lookalike.fingerprints.local import LocalFeatures  # NumPy: only for a file that has features

        return LocalFeatures.from_bytes(self.local).descriptors[:LOCAL_CODES].tobytes()


@dataclass(frozen=True, slots=True)
class CodeRow:
    """What the in-memory indexes keep of a file."""

    pk: int
    scope_pk: int
    phash: int
    local_codes: bytes = b""
