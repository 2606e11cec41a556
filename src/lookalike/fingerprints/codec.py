"""Compact, versioned serialisation of ``Fingerprint``: bytes and a text form.

Bytes (all integers big-endian)::

    b"LKF" | format version u8 | sha256 32 | 8 pHash variants 8x u64 |
    dHash u64 | aHash u64 | wHash u64 | PDQ 32 | PDQ quality u8 |
    thumbnail 256 | colour 6x f32 | width u32 | height u32 | byte_size u64 |
    fingerprint version u16 | flags u8 (1: has alpha, 2: pixel digest follows) |
    [pixel digest 32] | mime u8-length utf-8 | name u32-length utf-8

Text: ``lkfp1.`` followed by the bytes in unpadded URL-safe base64.
Round trips are exact: colour statistics are float32 values already.
"""

from __future__ import annotations

import base64
import binascii
import struct

from lookalike.errors import FingerprintError
from lookalike.fingerprints.model import Fingerprint

__all__ = [
    "VERSION_OFFSET", "fingerprint_from_bytes", "fingerprint_from_text", "fingerprint_to_bytes", "fingerprint_to_text",
]  # fmt: skip

_MAGIC = b"LKF"
_FORMAT = 1
_TEXT_PREFIX = "lkfp1."
_FIXED = struct.Struct(">3sB32s8Q3Q32sB256s6fIIQHB")
_HAS_ALPHA = 1
#: byte offset of the fingerprint version (u16, big-endian) in the serialised bytes, so that a store
#: can count outdated rows without reading them back
VERSION_OFFSET = _FIXED.size - 3
_HAS_DIGEST = 2


def fingerprint_to_bytes(fp: Fingerprint) -> bytes:
    """Serialise ``fp`` (see the module docstring for the layout)."""
    flags = (_HAS_ALPHA if fp.has_alpha else 0) | (_HAS_DIGEST if fp.pixel_digest else 0)
    head = _FIXED.pack(
        _MAGIC, _FORMAT, fp.sha256, *fp.phash_variants, fp.dhash, fp.ahash, fp.whash,
        fp.pdq, fp.pdq_quality, fp.thumbnail, *fp.colour, fp.width, fp.height, fp.byte_size,
        fp.version, flags,
    )  # fmt: skip
    mime = fp.mime.encode()
    name = fp.name.encode(errors="surrogateescape")  # file names need not be valid UTF-8
    return b"".join(
        [head, fp.pixel_digest or b"", struct.pack(">B", len(mime)), mime, struct.pack(">I", len(name)), name]
    )


def fingerprint_from_bytes(data: bytes) -> Fingerprint:
    """Read back ``fingerprint_to_bytes`` output. Raises ``FingerprintError`` on anything else."""
    try:
        fields = _FIXED.unpack_from(data, 0)
    except struct.error as exc:
        raise FingerprintError("serialised fingerprint is too short") from exc
    magic, fmt = fields[0], fields[1]
    if magic != _MAGIC:
        raise FingerprintError("not a serialised lookalike fingerprint")
    if fmt != _FORMAT:
        raise FingerprintError(f"fingerprint format {fmt} is not supported (this version reads {_FORMAT})")
    sha, variants = fields[2], tuple(fields[3:11])
    dh, ah, wh, pdq, quality, thumb = fields[11:17]
    colour = tuple(fields[17:23])
    width, height, byte_size, version, flags = fields[23:28]
    pos = _FIXED.size
    try:
        digest = None
        if flags & _HAS_DIGEST:
            digest = data[pos : pos + 32]
            if len(digest) != 32:
                raise FingerprintError("serialised fingerprint is truncated")
            pos += 32
        (mlen,) = struct.unpack_from(">B", data, pos)
        mime = data[pos + 1 : pos + 1 + mlen].decode()
        pos += 1 + mlen
        (nlen,) = struct.unpack_from(">I", data, pos)
        name = data[pos + 4 : pos + 4 + nlen].decode(errors="surrogateescape")
        if pos + 4 + nlen != len(data):
            raise FingerprintError("serialised fingerprint has the wrong length")
    except (struct.error, UnicodeDecodeError) as exc:
        raise FingerprintError("serialised fingerprint is truncated or damaged") from exc
    return Fingerprint(
        sha256=sha, phash_variants=variants, dhash=dh, ahash=ah, whash=wh, pdq=pdq, pdq_quality=quality,
        thumbnail=thumb, colour=colour, width=width, height=height, byte_size=byte_size, mime=mime,
        name=name, has_alpha=bool(flags & _HAS_ALPHA), pixel_digest=digest, version=version,
    )  # fmt: skip


def fingerprint_to_text(fp: Fingerprint) -> str:
    """``lkfp1.`` + unpadded URL-safe base64 of the bytes form."""
    return _TEXT_PREFIX + base64.urlsafe_b64encode(fingerprint_to_bytes(fp)).rstrip(b"=").decode()


def fingerprint_from_text(text: str) -> Fingerprint:
    """Read back ``fingerprint_to_text`` output. Raises ``FingerprintError`` on anything else."""
    if not text.startswith(_TEXT_PREFIX):
        raise FingerprintError("not a lookalike fingerprint string (expected the prefix 'lkfp1.')")
    body = text[len(_TEXT_PREFIX) :]
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except (binascii.Error, ValueError) as exc:
        raise FingerprintError("fingerprint string is not valid base64") from exc
    return fingerprint_from_bytes(raw)
