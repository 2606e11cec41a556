"""Reference-exact hashes for exchanging hash lists with other tools.

lookalike's own 256-bit hash (``Fingerprint.pdq``) runs PDQ's stages on lookalike's 64 x 64
area-averaged grid, not on PDQ's Jarosz-filtered full-resolution luminance: it is *PDQ-like*,
typically 10 to 20 of 256 bits away from Meta's reference hash for the same picture. That costs
nothing inside lookalike (both sides of every comparison use the same hash), but a list shared
with ThreatExchange, StopNCII or any system matching reference PDQ at its 31-bit threshold would
spend up to two thirds of that budget on the difference.

``reference_pdq`` computes the real thing with ``pdqhash`` (Meta's C++ reference code, the
``lookalike[pdq]`` extra) on the same upright, alpha-flattened, full-resolution pixels lookalike
decodes, and writes it as ThreatExchange's python tools do: 64 hex digits, the hash vector's first
bit most significant.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lookalike.config import DecodeLimits, FetchLimits
from lookalike.decode import decode_image, read_source
from lookalike.errors import ConfigError

__all__ = ["ReferencePdq", "reference_pdq", "reference_pdq_bytes"]


@dataclass(frozen=True, slots=True)
class ReferencePdq:
    """A reference PDQ hash: 256 bits as 64 hex digits (ThreatExchange's order) and its quality (0..100;
    Meta advises not to trust matches below 50)."""

    hex: str
    quality: int

    def distance_bits(self, other: ReferencePdq) -> int:
        """Hamming distance in bits (reference PDQ calls two pictures a match at 31 or fewer)."""
        return (int(self.hex, 16) ^ int(other.hex, 16)).bit_count()


def reference_pdq_bytes(data: bytes, *, limits: DecodeLimits | None = None) -> ReferencePdq:
    """Reference PDQ of an image held in memory. Raises ``ConfigError`` without the ``pdq`` extra and
    the decoder's ``InputError`` subclasses for unreadable images."""
    try:
        import pdqhash
    except ImportError as exc:
        raise ConfigError("reference PDQ needs the pdq extra: pip install 'lookalike[pdq]'") from exc
    pixels = np.ascontiguousarray(decode_image(data, limits=limits).pixels)
    vector, quality = pdqhash.compute(pixels)
    bits = "".join("1" if b else "0" for b in np.asarray(vector).ravel())
    return ReferencePdq(hex=f"{int(bits, 2):064x}", quality=int(quality))


def reference_pdq(
    src: str | os.PathLike[str] | bytes, *, limits: DecodeLimits | None = None, fetch: FetchLimits | None = None
) -> ReferencePdq:
    """Reference PDQ (Meta's ``pdqhash``) of an image at a path, an http(s) URL, or in bytes.

    Raises ``ConfigError`` without the ``pdq`` extra, ``FetchError``, ``TooLarge`` and the
    decoder's ``InputError`` subclasses."""
    limits = limits or DecodeLimits()
    return reference_pdq_bytes(read_source(src, max_bytes=limits.max_bytes, fetch=fetch).data, limits=limits)
