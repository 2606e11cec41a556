"""lookalike: have I already got this image?

The public API; everything else is private to its module.
"""

from lookalike.config import DecodeLimits, FetchLimits
from lookalike.errors import (
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
from lookalike.match import Comparison, Verdict, compare

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "ConfigError",
    "CorruptImage",
    "DecodeLimits",
    "Dihedral",
    "FetchError",
    "FetchLimits",
    "Fingerprint",
    "FingerprintError",
    "InputError",
    "LookalikeError",
    "NotAnImage",
    "NotFound",
    "NotRegularFile",
    "Signal",
    "StoreError",
    "TooLarge",
    "TruncatedImage",
    "UnsupportedFormat",
    "Verdict",
    "compare",
    "fingerprint",
    "fingerprint_bytes",
    "fingerprint_from_bytes",
    "fingerprint_from_text",
    "fingerprint_to_bytes",
    "fingerprint_to_text",
]
