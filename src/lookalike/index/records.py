"""Values that come out of a store: images, their files (renditions) and review pairs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from lookalike.fingerprints import Fingerprint

__all__ = [
    "DEFAULT_SCOPE",
    "ApiKey",
    "Decision",
    "ImageRecord",
    "ReviewPair",
    "StoreStats",
    "StoredFile",
    "automatic_image_id",
]


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


class Decision(StrEnum):
    """A person's word on a potential-duplicate pair. Values are stored: never rename one."""

    PENDING = "pending"
    DUPLICATE = "duplicate"
    NOT_DUPLICATE = "not_duplicate"


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


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key of the service as stored: its public id, its scope (tenant), never the key itself."""

    key_id: str
    scope: str
    name: str
    created_at: float
    revoked_at: float | None = None
