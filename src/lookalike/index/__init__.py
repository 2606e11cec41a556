"""Finding stored images: the ``Index`` collection, in three wings.

* ``index.store``: the storage wing, what is kept on disk (SQLite or PostgreSQL, one set of
  statements over two dialects) and the narrow roles its callers read and write it through;
* ``index.search``: the in-memory search engines (Hamming codes, local descriptors) that an
  ``Index`` builds from the store when it opens and keeps in step with the store's change log;
* the collection, here: ``Index`` (``collection``) composes the two, runs the check cascade
  (``cascade``), decides what adding a copy does (``policy``), fuses the learned tier
  (``semantic``), checks many files with every core (``parallel``) and answers in ``results``.

``Index`` and ``HammingIndex`` load on first use: the Hamming kernels need
numba, whose import costs a noticeable part of a second that commands which
never search (``hash``, ``compare``) should not pay.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lookalike.index.store.records import (
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
    from lookalike.index.results import AddOutcome, AddResult, CheckMatch, CheckResult, Outcome
    from lookalike.index.search.hamming import HammingIndex
    from lookalike.index.store.sqlite import SQLiteStore

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
    "HammingIndex": "lookalike.index.search.hamming",
    "SQLiteStore": "lookalike.index.store.sqlite",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'lookalike.index' has no attribute {name!r}")
