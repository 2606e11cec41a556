"""Work bounds that a file's size and declared pixels do not give: counted from the bytes before
any pixel is decoded.

A progressive JPEG codes its picture in scans, each refining some coefficients of the whole
picture, and libjpeg(-turbo) revisits every coefficient block of the picture at each scan: the
decode costs pixels times scans, not bytes. One 76-byte AC scan repeated 12,000 times makes a
1.1 MB file of a 7000 x 7000 picture that took 279-309 s to decode. The attack is in Cure53's
2019 audit of libjpeg-turbo (https://cure53.de/pentest-report_libjpeg-turbo.pdf); the library
leaves the limit to applications (its ``djpeg`` and ``jpegtran`` take ``-maxscans``), and
NVIDIA's nvImageCodec sets 256. ``DecodeLimits.max_scans`` is 100 by default, counted here from the
marker segments before the decoder sees the file.
An ordinary progressive JPEG has about 10 scans, a baseline one 1 (3 when its components are
coded in separate scans).
"""

from __future__ import annotations

import re

from lookalike.errors import TooManyScans

__all__ = ["check_jpeg_scans", "count_jpeg_scans"]

_SOI, _EOI, _SOS = 0xD8, 0xD9, 0xDA
#: markers that stand alone (no length field): TEM, RST0-7, SOI, EOI
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8), _SOI, _EOI})
#: the next marker inside entropy-coded data: 0xFF followed by anything but a stuffed zero, a
#: restart marker (which stays inside the scan) or another 0xFF (a fill byte)
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")


def count_jpeg_scans(data: bytes, *, stop_after: int) -> int:
    """The scans (SOS segments) of the first image of a JPEG stream, counted by walking its marker
    segments (a thumbnail inside an APP1 segment is skipped with its segment), up to
    ``stop_after + 1``: counting stops as soon as the limit is passed. A stream that ends early
    counts what it has (the decoder reports the damage)."""
    n = len(data)
    if n < 4 or data[0] != 0xFF or data[1] != _SOI:
        return 0
    pos, scans = 2, 0
    while pos + 1 < n:
        if data[pos] != 0xFF:
            pos += 1  # garbage between segments: libjpeg skips it too (with a warning)
            continue
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker == _EOI:
            break
        if marker in _STANDALONE:
            pos += 2
            continue
        if pos + 3 >= n:
            break
        end = pos + 2 + (data[pos + 2] << 8 | data[pos + 3])
        if marker != _SOS:
            pos = end
            continue
        scans += 1
        if scans > stop_after:
            break
        found = _MARKER_IN_SCAN.search(data, end)
        if found is None:
            break
        pos = found.start()
    return scans


def check_jpeg_scans(data: bytes, *, max_scans: int) -> None:
    """Refuse a JPEG with more than ``max_scans`` scans. Raises ``TooManyScans``."""
    scans = count_jpeg_scans(data, stop_after=max_scans)
    if scans > max_scans:
        raise TooManyScans(
            f"JPEG has more than {max_scans:,} scans, over the limit of {max_scans:,} "
            "(its decode would cost its pixels that many times over: a progressive scan bomb?)"
        )
