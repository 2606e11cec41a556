"""Finding stored images: the Hamming index, the stores and the ``Index`` collection."""

from lookalike.index.collection import DEFAULT_SCOPE, AddResult, CheckMatch, CheckResult, Index
from lookalike.index.hamming import HammingIndex
from lookalike.index.records import Decision, ImageRecord, ReviewPair, StoredFile, StoreStats
from lookalike.index.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_SCOPE",
    "AddResult",
    "CheckMatch",
    "CheckResult",
    "Decision",
    "HammingIndex",
    "ImageRecord",
    "Index",
    "ReviewPair",
    "SQLiteStore",
    "StoreStats",
    "StoredFile",
]
