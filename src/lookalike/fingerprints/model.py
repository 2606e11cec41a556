"""The ``Fingerprint`` value object: every signal of one image, computed from one decode."""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from enum import StrEnum
from typing import Any, TypedDict

from lookalike.fingerprints.bits import hamming_bytes, hamming_int

__all__ = ["FINGERPRINT_VERSION", "Fingerprint", "FingerprintDict", "Hash64", "PerceptualSignals", "Signal"]

#: bumped whenever any stored signal would come out differently.
#: 2 (2026-12-02): the grid, the DCTs and the statistics are computed without BLAS, in a fixed order
#: of operations, so every CPU gives the same bits; tied cells (a plain margin) now always give 0,
#: where version 1 decided them by the CPU's rounding. Version-1 rows still match (they differ at
#: most in such tie bits); ``lookalike stats`` counts them.
FINGERPRINT_VERSION = 2


_NOT_A_NUMBER = "subtracting hashes gives their Hamming distance, not a number: use int(hash) for arithmetic"


class Hash64(int):
    """A 64-bit hash: an ``int`` (stored, XORed, formatted as before) that subtracts and prints as
    imagehash's ``ImageHash`` does. ``a.phash - b.phash`` is the Hamming distance in bits, not the
    difference of two numbers; subtracting a plain number raises ``TypeError`` (as imagehash does),
    so arithmetic that meant numbers fails loudly: use ``int(h)`` for it. ``str(h)`` is its 16 hex
    digits, in imagehash's order; ``+``, ``^``, ``<<`` and the rest give plain ``int``s."""

    __slots__ = ()

    def __sub__(self, other: object) -> int:
        if isinstance(other, Hash64):
            return (int(self) ^ int(other)).bit_count()
        if isinstance(other, int):
            raise TypeError(
                "hash - number: subtracting hashes gives their Hamming distance; use int(hash) for arithmetic"
            )
        return NotImplemented

    def __rsub__(self, other: object) -> int:
        if isinstance(other, int):
            raise TypeError(
                "number - hash: subtracting hashes gives their Hamming distance; use int(hash) for arithmetic"
            )
        return NotImplemented

    def __str__(self) -> str:
        return f"{int(self):016x}"

    def __repr__(self) -> str:
        return f"Hash64(0x{int(self):016x})"


class Signal(StrEnum):
    """The binary perceptual hashes a fingerprint carries. Names are stored: never rename one."""

    PHASH = "phash"
    DHASH = "dhash"
    AHASH = "ahash"
    WHASH = "whash"
    PDQ = "pdq"

    @property
    def bits(self) -> int:
        """Length of this hash in bits."""
        return 256 if self is Signal.PDQ else 64


class FingerprintDict(TypedDict):
    """JSON form of a fingerprint (hashes as lowercase hex)."""

    version: int
    name: str
    mime: str
    byte_size: int
    width: int
    height: int
    has_alpha: bool
    sha256: str
    pixel_digest: str | None
    phash: str
    phash_variants: list[str]
    dhash: str
    ahash: str
    whash: str
    pdq: str
    pdq_quality: int
    thumbnail: str
    colour: list[float]


@dataclass(frozen=True, slots=True, kw_only=True)
class PerceptualSignals:
    """The part of a fingerprint computed from the pixels (``fingerprints.grid_signals``): what a
    flipped or turned picture changes, and all a comparison of two pictures reads of them.

    Hashes: ``dhash``/``ahash``/``whash`` are 64-bit integers (``Hash64``),
    ``pdq`` 32 bytes; ``phash_variants[k]`` is the pHash of the picture under
    ``Dihedral(k)`` (index 0 is the picture as it is). ``thumbnail`` is 16 x 16
    luminance bytes, ``colour`` (mean Y, Cb, Cr, std Y, Cb, Cr).
    """

    phash_variants: tuple[int, ...]
    dhash: int
    ahash: int
    whash: int
    pdq: bytes
    pdq_quality: int
    thumbnail: bytes
    colour: tuple[float, ...]

    def __post_init__(self) -> None:
        for name in ("dhash", "ahash", "whash"):
            value = getattr(self, name)
            if type(value) is not Hash64:
                object.__setattr__(self, name, Hash64(value))

    def signal_fields(self) -> dict[str, Any]:
        """The signals as keyword arguments (``Fingerprint(**signals.signal_fields(), ...)``)."""
        return {f.name: getattr(self, f.name) for f in fields(PerceptualSignals)}


@dataclass(frozen=True, slots=True, kw_only=True)
class Fingerprint(PerceptualSignals):
    """What lookalike knows of one image: its ``PerceptualSignals`` and the facts of its file.

    ``phash`` is ``phash_variants[0]``. ``pixel_digest`` (SHA-256 of the canonical
    full-resolution pixels) is ``None`` until a comparison needed it.
    """

    sha256: bytes
    width: int
    height: int
    byte_size: int
    mime: str
    name: str = ""
    has_alpha: bool = False
    pixel_digest: bytes | None = None
    version: int = FINGERPRINT_VERSION

    @property
    def phash(self) -> Hash64:
        """The 64-bit DCT hash of the picture as it is (``a.phash - b.phash``: bits apart)."""
        return Hash64(self.phash_variants[0])

    def __sub__(self, other: object) -> int:
        """``fp1 - fp2``: how many bits their pHashes differ in, as imagehash's ``phash(a) - phash(b)``
        (pictures as they are; ``dihedral_distance_bits`` also tries the seven flips and turns)."""
        if not isinstance(other, Fingerprint):
            return NotImplemented
        return hamming_int(self.phash_variants[0], other.phash_variants[0])

    def same_picture_signals(self, other: Fingerprint) -> bool:
        """True when every perceptual signal and the size agree: what equality means for two
        fingerprints of the same pixels that did not come from the same bytes (a file and its
        decoded pixels, a PNG and a lossless WebP of it). ``==`` compares every field,
        ``sha256``, ``byte_size``, ``mime`` and ``name`` included."""
        return (
            self.phash_variants == other.phash_variants
            and (self.dhash, self.ahash, self.whash, self.pdq) == (other.dhash, other.ahash, other.whash, other.pdq)
            and (self.pdq_quality, self.thumbnail, self.colour) == (other.pdq_quality, other.thumbnail, other.colour)
            and (self.width, self.height, self.has_alpha) == (other.width, other.height, other.has_alpha)
        )

    def code(self, signal: Signal) -> int:
        """The hash named by ``signal`` as a non-negative integer."""
        if signal is Signal.PDQ:
            return int.from_bytes(self.pdq, "big")
        value: int = getattr(self, signal.value)
        return value

    def distance_bits(self, other: Fingerprint, signal: Signal = Signal.PHASH) -> int:
        """Hamming distance between the two images' ``signal`` hashes, in bits."""
        if signal is Signal.PDQ:
            return hamming_bytes(self.pdq, other.pdq)
        return hamming_int(self.code(signal), other.code(signal))

    def dihedral_distance_bits(self, other: Fingerprint) -> tuple[int, int]:
        """(smallest pHash distance in bits over the eight flips/turns of ``self``, which turn).

        The turn is a ``Dihedral`` value: what, done to ``self``, makes it look like ``other``.
        """
        best = min(range(len(self.phash_variants)), key=lambda k: hamming_int(self.phash_variants[k], other.phash))
        return hamming_int(self.phash_variants[best], other.phash), best

    def with_pixel_digest(self, digest: bytes) -> Fingerprint:
        """A copy that carries ``digest``."""
        return replace(self, pixel_digest=digest)

    def to_dict(self) -> FingerprintDict:
        """JSON-ready form."""
        return FingerprintDict(
            version=self.version,
            name=self.name,
            mime=self.mime,
            byte_size=self.byte_size,
            width=self.width,
            height=self.height,
            has_alpha=self.has_alpha,
            sha256=self.sha256.hex(),
            pixel_digest=self.pixel_digest.hex() if self.pixel_digest else None,
            phash=f"{self.phash:016x}",
            phash_variants=[f"{v:016x}" for v in self.phash_variants],
            dhash=f"{self.dhash:016x}",
            ahash=f"{self.ahash:016x}",
            whash=f"{self.whash:016x}",
            pdq=self.pdq.hex(),
            pdq_quality=self.pdq_quality,
            thumbnail=self.thumbnail.hex(),
            colour=[round(v, 4) for v in self.colour],
        )
