"""lookalike: have I already got this image?

The public API; everything else is private to its module.

Names load on first use (PEP 562): ``import lookalike`` and the command line's ``--help`` do not
pay for NumPy, numba, OpenCV and Pillow until a function that needs them is called.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from lookalike.config import DecodeLimits, FetchLimits, Thresholds
from lookalike.errors import (
    AlreadyExists,
    ConfigError,
    CorruptImage,
    FetchError,
    FingerprintError,
    InputError,
    LookalikeError,
    NotAnImage,
    NotFound,
    NotRegularFile,
    StoreError,
    TooLarge,
    TruncatedImage,
    UnsupportedFormat,
)

if TYPE_CHECKING:
    from lookalike.fingerprints import (
        Dihedral,
        Fingerprint,
        Signal,
        fingerprint,
        fingerprint_bytes,
        fingerprint_from_bytes,
        fingerprint_from_text,
        fingerprint_to_bytes,
        fingerprint_to_text,
    )
    from lookalike.fingerprints.reference import reference_pdq
    from lookalike.index import AddOutcome, CheckMatch, CheckResult, Decision, Index, OnDuplicate, Outcome
    from lookalike.match import Comparison, Verdict, compare
    from lookalike.scan import FindOptions, FindResult
    from lookalike.scan.oneshot import find_duplicates


def _version() -> str:
    """The installed distribution's version (``pip show lookalike``); the source tree's when not installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lookalike")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0+unknown"


__version__: str

_LAZY = {
    "Dihedral": "lookalike.fingerprints",
    "Fingerprint": "lookalike.fingerprints",
    "Signal": "lookalike.fingerprints",
    "fingerprint": "lookalike.fingerprints",
    "fingerprint_bytes": "lookalike.fingerprints",
    "fingerprint_from_bytes": "lookalike.fingerprints",
    "fingerprint_from_text": "lookalike.fingerprints",
    "fingerprint_to_bytes": "lookalike.fingerprints",
    "fingerprint_to_text": "lookalike.fingerprints",
    "reference_pdq": "lookalike.fingerprints.reference",
    "Comparison": "lookalike.match",
    "Verdict": "lookalike.match",
    "compare": "lookalike.match",
    "CheckMatch": "lookalike.index",
    "CheckResult": "lookalike.index",
    "Decision": "lookalike.index",
    "Index": "lookalike.index",
    "AddOutcome": "lookalike.index",
    "OnDuplicate": "lookalike.index",
    "Outcome": "lookalike.index",
    "FindResult": "lookalike.scan",
    "FindOptions": "lookalike.scan",
    "find_duplicates": "lookalike.scan.oneshot",
}


def __getattr__(name: str) -> Any:
    if name == "__version__":
        value: Any = _version()
    elif name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
    else:
        raise AttributeError(f"module 'lookalike' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    # the public surface only: the helpers this module imports for itself are not part of it
    return sorted({*__all__, "__version__", *(n for n in globals() if n.startswith("__"))})


__all__ = [
    "AddOutcome",
    "AlreadyExists",
    "CheckMatch",
    "CheckResult",
    "Comparison",
    "ConfigError",
    "CorruptImage",
    "Decision",
    "DecodeLimits",
    "Dihedral",
    "FetchError",
    "FetchLimits",
    "FindOptions",
    "FindResult",
    "Fingerprint",
    "FingerprintError",
    "Index",
    "InputError",
    "LookalikeError",
    "NotAnImage",
    "NotFound",
    "NotRegularFile",
    "OnDuplicate",
    "Outcome",
    "Signal",
    "StoreError",
    "Thresholds",
    "TooLarge",
    "TruncatedImage",
    "UnsupportedFormat",
    "Verdict",
    "compare",
    "find_duplicates",
    "fingerprint",
    "fingerprint_bytes",
    "fingerprint_from_bytes",
    "fingerprint_from_text",
    "fingerprint_to_bytes",
    "fingerprint_to_text",
    "reference_pdq",
]
