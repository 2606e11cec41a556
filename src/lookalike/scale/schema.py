"""The Parquet files of a scale-out run, and the per-turn signals that replace the colour grid.

A run folder (``RUN_DIR``) holds::

    manifest.parquet              every source: url, size, version (mtime or ETag), mtime (``MANIFEST``)
    fingerprints/part-NNNNN-D.parquet   one per partition of the manifest (``FINGERPRINTS``)
    matching/codes-NNNNN-D.parquet  the codes each part's index rows are found by (``CODES``)
    matching/codes-NNNNN-D.rows     those rows' fingerprints and local features, read by offset (``part_rows``)
    matching/stored-D/            every row's pHash, PDQ and codes part (NumPy files), for the join
    matching/plan-D.parquet       each part's codes, fingerprints and vote shard
    pairs/part-NNNNN-D.parquet    one per partition of the index rows (``PAIRS``)
    checks/checks-P-D.parquet     each row's check, kept for a grown run (``reuse.CHECKED``; P: its fingerprint part)
    spectra/part-L-D.parquet      spectrum profiles the keeper choice asked for, by content key (``SPECTRA``)
    groups.parquet                one row per group member, largest group first (``GROUPS``)
    answer-pairs.parquet          the answer's linked pairs as paths, in ``find``'s order (``ANSWER_PAIRS``)
    embeddings/part-D.parquet     with ``--similar``: each content of a fingerprint part and its embedding
    similar/                      every row's vector (NumPy files), each partition's nearest neighbours
    similar.parquet               the semantic neighbours, best first (``embed_stage.SIMILAR``)

``NNNNN`` is the partition number and ``D`` the first 12 hex digits of the SHA-256 of what the
partition was made from (its manifest rows, or its rows and the index's digest), so a finished
file is reused by ``--resume`` exactly when its inputs are unchanged. Every file is written to a
temporary name and renamed, so a file that exists is complete.

``turns`` (in ``FINGERPRINTS``) holds, for each flip or turn k = 1..7 (``Dihedral``), what the
picture's signals are under that turn: ``TURN_BYTES`` bytes each, big-endian: 8 pHash variants
(u64), dHash, aHash, wHash (u64), PDQ (32 bytes), PDQ quality (u8), the 16 x 16 luminance
thumbnail (256 bytes), colour statistics (6 x f32). That is 2,807 bytes an image instead of
the 98,304-byte grid they are computed from; ``turned_fingerprints`` gives back exactly the
fingerprints ``Query.turned`` computes from the grid (a golden test checks it).

What choosing each group's source (its keeper, ``lookalike.scan.source``) reads of a file is in
its ``FINGERPRINTS`` row (JPEG quality, flat margins and what they frame, modification time; the
fingerprint gives size, colour and alpha), what it reads of a pair in its ``PAIRS`` rows
(``same_pixels``), and in ``SPECTRA`` the spectrum profile of each file the choice asked about
(a group's leading candidate's larger copies: enlargements, or real larger pictures?), computed on
the workers: the client chooses keepers without reading an image.
"""

from __future__ import annotations

import struct
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lookalike.fingerprints import Dihedral, Fingerprint, grid_signals, transform_pixels

__all__ = [
    "CODES",
    "FINGERPRINTS",
    "ANSWER_PAIRS",
    "GROUPS",
    "MANIFEST",
    "PAIRS",
    "SPECTRA",
    "TURN_BYTES",
    "pack_turns",
    "turned_fingerprints",
]

_TURN = struct.Struct(">8Q3Q32sB256s6f")
TURN_BYTES = _TURN.size

MANIFEST = pa.schema(
    [
        ("url", pa.string()),  # a local absolute path, or protocol://bucket/key
        ("size", pa.int64()),  # bytes, as listed
        ("version", pa.string()),  # mtime in ns (local) or ETag / mtime (object stores)
        ("mtime_ns", pa.int64()),  # last modified, ns since the epoch (0 when the store does not say)
    ]
)

FINGERPRINTS = pa.schema(
    [
        ("url", pa.string()),
        ("size", pa.int64()),
        ("sha256", pa.binary(32)),  # null for an error row
        ("fingerprint", pa.binary()),  # lookalike.fingerprints codec bytes (format 1)
        ("turns", pa.binary()),  # 7 x TURN_BYTES: the signals under Dihedral 1..7
        ("local", pa.binary()),  # LocalFeatures.to_bytes(): ORB keypoints and descriptors
        ("lossless", pa.bool_()),
        ("taken_at", pa.string()),
        ("jpeg_quality", pa.float64()),  # estimated from the quantisation tables; null unless JPEG
        ("padding", pa.float64()),  # share of the area in flat margins (``scan.margins``)
        ("content_aspect", pa.float64()),  # width / height of what the margins frame
        ("colours", pa.int32()),  # distinct colours (``fingerprints.provenance``): 256 or fewer is a palette
        ("grid_step", pa.int32()),  # a JPEG's luminance DC step, or the one a lossless file's pixels show
        ("mtime_ns", pa.int64()),  # from the manifest: the oldest copy may be the source
        ("error_code", pa.string()),  # null unless the file could not be read or decoded
        ("error", pa.string()),
    ]
)

PAIRS = pa.schema(
    [
        ("file_pk", pa.int64()),  # the row checked
        ("peer_pk", pa.int64()),  # a row of another image it matches
        ("rank", pa.int32()),  # the match's place in the check's answer (0 = best)
        ("score", pa.float64()),
        ("verdict", pa.string()),
        ("evidence", pa.string()),
        ("phash_bits", pa.int32()),  # under the best flip or turn
        ("by_local_features", pa.bool_()),
        # for a near duplicate of the same size, one file lossless and the other lossy: whether their
        # full-resolution pixels are the same (``scan.evidence.settled_verdict``); else null
        ("same_pixels", pa.bool_()),
        # for such a pair whose pixels are not the same: whether they differ by a level at most
        # (``fingerprints.provenance.decoded_alike``: a JPEG's decode by another decoder); else null
        ("decoded_pixels", pa.bool_()),
    ]
)

CODES = pa.schema(
    [
        ("pk", pa.int64()),  # the index row (rows with the same bytes are one), numbered from 1
        ("row", pa.int64()),  # its row in the fingerprint part
        ("key", pa.uint64()),  # the first 8 bytes of the SHA-256 of its bytes: the row in every run (``reuse``)
        ("phash", pa.uint64()),
        ("pdq", pa.binary(32)),
        ("variants", pa.binary(64)),  # the pHash under each flip or turn 0..7 (native u64)
        ("turned_pdq", pa.binary(256)),  # the PDQ under each flip or turn 0..7
        ("descriptors", pa.binary()),  # the ``LOCAL_CODES`` strongest descriptors: the crop tier's keys
        ("at", pa.int64()),  # its record's offset in the part's row file (``part_rows.write_rows``)
        ("size", pa.int64()),  # and the record's size in bytes
    ]
)

SPECTRA = pa.schema(
    [
        ("file_pk", pa.int64()),  # an index row larger than a copy it is linked to (of the run's index)
        ("spectrum", pa.binary()),  # ``scan.source.spectrum_profile``, float64; null when unreadable
    ]
)

ANSWER_PAIRS = pa.schema([("a", pa.string()), ("b", pa.string()), ("score", pa.float64()), ("verdict", pa.string())])

GROUPS = pa.schema(
    [
        ("group", pa.int32()),  # 0 = the largest group; ties by keeper path (independent of order)
        ("keeper", pa.string()),
        ("path", pa.string()),
        ("keep", pa.bool_()),
        ("score", pa.float64()),
        ("verdict", pa.string()),
        ("evidence", pa.string()),
        ("match", pa.string()),
        ("width", pa.int32()),
        ("height", pa.int32()),
        ("bytes", pa.int64()),
        ("mime", pa.string()),
        ("taken_at", pa.string()),
        # what an action may touch (``scan.results.Member``), and the evidence as data
        # (``scan.results.Evidence``): a group read back from the file is the group found
        ("eligible", pa.bool_()),
        ("eligibility", pa.string()),
        ("excluded", pa.bool_()),
        ("sha256", pa.string()),
        ("reason_kind", pa.string()),
        ("reason_detail", pa.string()),
        ("reason_facts", pa.string()),
        ("reason_same_picture", pa.bool_()),
        ("reason_kept_in_folder", pa.bool_()),
    ]
)


def pack_turns(grid: npt.NDArray[np.float64]) -> bytes:
    """The signals of the picture under each flip or turn 1..7, from its 64 x 64 x 3 colour grid."""
    out = []
    for k in range(1, 8):
        s = grid_signals(np.ascontiguousarray(transform_pixels(grid, Dihedral(k))))
        out.append(
            _TURN.pack(
                *s.phash_variants,
                s.dhash,
                s.ahash,
                s.whash,
                s.pdq,
                s.pdq_quality,
                s.thumbnail,
                *s.colour,
            )  # fmt: skip
        )
    return b"".join(out)


def turned_fingerprints(fp: Fingerprint, turns: bytes) -> dict[Dihedral, Fingerprint]:
    """The fingerprints of the picture under each flip or turn, from ``pack_turns`` output."""
    if len(turns) != 7 * TURN_BYTES:
        raise ValueError(f"turned signals are {len(turns)} bytes, expected {7 * TURN_BYTES}")
    out: dict[Dihedral, Fingerprint] = {Dihedral.IDENTITY: fp}
    for k in range(1, 8):
        f = _TURN.unpack_from(turns, (k - 1) * TURN_BYTES)
        out[Dihedral(k)] = replace(
            fp,
            pixel_digest=None,
            phash_variants=tuple(f[0:8]),
            dhash=f[8],
            ahash=f[9],
            whash=f[10],
            pdq=f[11],
            pdq_quality=f[12],
            thumbnail=f[13],
            colour=tuple(f[14:20]),
        )
    return out
