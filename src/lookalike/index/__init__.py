"""Finding stored images: the ``Index`` collection, over a store (SQLite or PostgreSQL) and in-memory indexes.

``Index`` and ``HammingIndex`` load on first use: the Hamming kernels need
numba, whose import costs a noticeable part of a second that commands which
never search (``hash``, ``compare``) should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lookalike.index.records import (
    DEFAULT_SCOPE,
    Decision,
    ImageRecord,
    OnDuplicate,
    ReviewPair,
    StoredFile,
    StoreStats,
)

if TYPE_CHECKING:
    from lookalike.index.collection import Index
    from lookalike.index.hamming import HammingIndex
    from lookalike.index.results import AddOutcome, AddResult, CheckMatch, CheckResult, Outcome
    from lookalike.index.sqlite import SQLiteStore

__all__ = [
    "DEFAULT_SCOPE",
    "AddOutcome",
    "AddResult",
    "CheckMatch",
    "CheckResult",
    "Decision",
    "HammingIndex",
    "ImageRecord",
    "Index",
    "OnDuplicate",
    "Outcome",
    "ReviewPair",
    "SQLiteStore",
    "StoreStats",
    "StoredFile",
]

_LAZY = {
    "AddOutcome": "lookalike.index.results",
    "AddResult": "lookalike.index.results",
    "CheckMatch": "lookalike.index.results",
    "CheckResult": "lookalike.index.results",
    "Outcome": "lookalike.index.results",
    "Index": "lookalike.index.collection",
    "HammingIndex": "lookalike.index.hamming",
    "SQLiteStore": "lookalike.index.sqlite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lookalike.index' has no attribute {name!r}")
