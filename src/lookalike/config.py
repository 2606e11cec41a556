"""Frozen settings objects. Nothing here reads the environment or a file:
callers build settings explicitly and pass them down."""

from __future__ import annotations

from dataclasses import dataclass, field

from lookalike.errors import ConfigError

__all__ = [
    "ALL_FORMATS",
    "DEFAULT_BURST",
    "DEFAULT_RATE_PER_S",
    "PIXEL_CEILING",
    "DecodeLimits",
    "FetchLimits",
    "Thresholds",
]

#: each API key's request budget when not told otherwise (``lookalike serve`` and ``ServiceSettings``).
#: A 2-core server answers about 40 picture checks a second (decode, hash, search): 50 per second
#: with bursts of 100 lets one client use the whole server briefly, while hash-only checks (~1 ms
#: each) are batched by clients anyway.
DEFAULT_RATE_PER_S = 50.0
DEFAULT_BURST = 100

#: Image formats lookalike decodes, by Pillow's format name. HEIF needs the
#: optional ``heif`` extra (pillow-heif).
ALL_FORMATS: frozenset[str] = frozenset({"JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF"})


#: Pillow's own decompression-bomb error threshold (2 x its default
#: MAX_IMAGE_PIXELS): larger images are refused by Pillow, whatever we allow.
PIXEL_CEILING = 2 * 89_478_485


@dataclass(frozen=True, slots=True, kw_only=True)
class DecodeLimits:
    """What the decoder accepts.

    ``max_pixels`` is checked against the size the file's header declares,
    before any pixel is decoded, so a decompression bomb costs nothing. It
    cannot exceed ``PIXEL_CEILING``, where Pillow refuses images process-wide.
    ``max_decode_bytes``: when set, the memory a decode is expected to need
    (the declared pixels times what the format's decoder was measured to need
    a pixel, see ``decode.image.DECODE_BYTES_PER_PIXEL``) must stay within it,
    checked at the same time; a server uses it to bound memory per request.
    """

    max_bytes: int = 100 * 1024 * 1024
    max_pixels: int = 178_000_000
    max_decode_bytes: int | None = None
    formats: frozenset[str] = field(default=ALL_FORMATS)

    def __post_init__(self) -> None:
        if self.max_bytes <= 0 or self.max_pixels <= 0:
            raise ConfigError("max_bytes and max_pixels must be positive")
        if self.max_decode_bytes is not None and self.max_decode_bytes <= 0:
            raise ConfigError("max_decode_bytes must be positive (or None for no memory estimate)")
        if self.max_pixels > PIXEL_CEILING:
            raise ConfigError(f"max_pixels cannot exceed {PIXEL_CEILING:,} (Pillow refuses larger images)")
        unknown = set(self.formats) - ALL_FORMATS
        if unknown:
            raise ConfigError(f"unknown image formats in allow-list: {', '.join(sorted(unknown))}")


@dataclass(frozen=True, slots=True, kw_only=True)
class FetchLimits:
    """How an http(s) URL is fetched: timeouts in seconds, a byte cap and a redirect cap."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 20.0
    max_bytes: int = 100 * 1024 * 1024
    max_redirects: int = 3

    def __post_init__(self) -> None:
        if self.connect_timeout_s <= 0 or self.read_timeout_s <= 0 or self.max_bytes <= 0:
            raise ConfigError("fetch timeouts and max_bytes must be positive")
        if self.max_redirects < 0:
            raise ConfigError("max_redirects must not be negative")


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """Score cut-offs (scores are in [0, 1]) that turn a score into a verdict.

    ``near_duplicate``: at or above, the same picture edited; ``similar``: at or
    above, worth a person's look. ``lookalike calibrate`` measures them for a
    precision the user asks for. The defaults were measured so, on the public
    benchmark corpus's 556 originals (``lookalike calibrate ../shared/bench/corpus
    --precision 0.99``: near_duplicate 0.6239 at precision 0.99, where 90.1% of
    its edited copies were found; similar 0.3047 at precision 0.5), rounded down.
    """

    near_duplicate: float = 0.62
    similar: float = 0.30

    def __post_init__(self) -> None:
        if not 0.0 <= self.similar <= self.near_duplicate <= 1.0:
            raise ConfigError("thresholds must satisfy 0 <= similar <= near_duplicate <= 1")
