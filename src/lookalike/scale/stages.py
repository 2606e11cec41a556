"""The stages of a scale-out run as plain functions: Arrow tables and NumPy arrays in and out,
nothing of Dask, so the same code runs in this process, a process pool or on a cluster.

manifest (``storage.list_sources``) -> ``fingerprint_rows`` -> ``exact_groups`` -> matching
(``scale.matching``: candidates by joins, then ``check_rows``) -> ``spectrum_rows`` (only the
files that may be enlargements of a copy they are linked to) -> grouping
(``lookalike.scan.grouping.groups_of_links``, the same function ``find`` ends with; keepers
by ``lookalike.scan.evidence.source_order``) -> ``scale.answer``.

``check_rows`` runs the cascade ``check`` and ``find`` run (hashes under every flip and turn,
pixel digest, local features) for each row of a partition, given its candidates, and writes
what the keeper choice needs of each pair (``same_pixels``).
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits
from lookalike.decode import decode_image, file_facts
from lookalike.errors import FileError, InputError
from lookalike.fingerprints import Fingerprint, fingerprint_to_bytes, full_pixel_digest
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.fingerprints.provenance import decoded_alike
from lookalike.index.results import CheckMatch
from lookalike.index.store.records import StoredFile
from lookalike.match import Query, Verdict, worth_pixel_digest
from lookalike.scale.schema import FINGERPRINTS, PAIRS, SPECTRA, pack_turns, turned_fingerprints
from lookalike.scale.storage import is_local, kept_mtime_ns, read_bytes
from lookalike.scan.provenance import analyse_with_facts
from lookalike.scan.source import spectrum_profile

__all__ = [
    "FINGERPRINT_GROUP_ROWS",
    "PixelSink",
    "check_rows",
    "error_rows",
    "exact_groups",
    "fingerprint_rows",
    "spectrum_rows",
    "write_atomically",
]


#: what ``fingerprint_rows`` hands each decoded file to: its SHA-256 and working-size pixels
PixelSink = Callable[[bytes, npt.NDArray[np.uint8]], None]

#: rows of a row group of a fingerprint part: the matching stage reads a candidate's fingerprint
#: and local features by its row group, so a check reads about this many rows a candidate, not
#: its whole part (about 12 KB a row, mostly local features)
FINGERPRINT_GROUP_ROWS = 16


def write_atomically(table: pa.Table, path: str, *, row_group_rows: int | None = None) -> None:
    """Write ``table`` as Parquet to ``path`` through a temporary name and a rename, so that a file
    at ``path`` is always complete (a run killed meanwhile leaves only a ``.tmp`` file); in row
    groups of ``row_group_rows`` rows when given."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    pq.write_table(table, tmp, compression="zstd", row_group_size=row_group_rows)
    os.replace(tmp, path)


def fingerprint_rows(
    manifest: pa.Table, *, limits: DecodeLimits, storage_options: Mapping[str, Any], pixels_to: PixelSink | None = None
) -> pa.Table:
    """Read, decode and fingerprint each source of ``manifest`` (``schema.MANIFEST``): a
    ``schema.FINGERPRINTS`` table, one row per source in order; a source that cannot be read or
    decoded is a row with its error. ``pixels_to`` is handed each decoded file's SHA-256 and
    working-size pixels (the learned tier embeds them: ``embed_stage``)."""
    cols: dict[str, list[Any]] = {name: [] for name in FINGERPRINTS.names}
    for url, size, mtime_ns in zip(*(manifest.column(n).to_pylist() for n in ("url", "size", "mtime_ns"))):
        row: dict[str, Any] = dict.fromkeys(FINGERPRINTS.names)
        row["url"], row["size"], row["mtime_ns"] = url, size, mtime_ns
        try:
            data = read_bytes(url, max_bytes=limits.max_bytes, storage_options=storage_options)
            a, keeper = analyse_with_facts(data, name=url, limits=limits, local=True)
            row["mtime_ns"] = kept_mtime_ns(url, storage_options) or mtime_ns
        except InputError as err:
            row["error_code"], row["error"] = err.code, str(err)
        else:
            facts = file_facts(a.data, a.fingerprint.mime)
            row.update(
                sha256=a.fingerprint.sha256, fingerprint=fingerprint_to_bytes(a.fingerprint), turns=pack_turns(a.grid),
                local=(a.local or local_features(a.image.pixels)).to_bytes(), lossless=facts.lossless,
                taken_at=facts.taken_at, jpeg_quality=keeper.jpeg_quality, padding=keeper.padding,
                content_aspect=keeper.content_aspect, colours=keeper.colours, grid_step=keeper.grid_step,
            )  # fmt: skip
            if pixels_to is not None:
                pixels_to(a.fingerprint.sha256, a.image.pixels)
        for name in FINGERPRINTS.names:
            cols[name].append(row[name])
    return pa.table(cols, schema=FINGERPRINTS)


def exact_groups(urls: list[str], sha256: list[bytes | None]) -> dict[bytes, list[str]]:
    """Paths by their bytes' SHA-256, in order of first appearance, each list sorted (error rows,
    whose digest is None, left out)."""
    out: dict[bytes, list[str]] = {}
    for url, sha in zip(urls, sha256):
        if sha is not None:
            out.setdefault(sha, []).append(url)
    for paths in out.values():
        paths.sort()
    return out


def check_rows(
    part: pa.Table,
    pks: Sequence[int],
    files: Mapping[int, StoredFile],
    features: Sequence[LocalFeatures],
    check: Callable[[int, Query, LocalFeatures], list[CheckMatch]],
    top: int,
    limits: DecodeLimits,
    storage_options: Mapping[str, Any],
) -> pa.Table:
    """Check each index row ``pks`` (its fingerprint in ``files``, its local ``features``, its
    ``url``, ``turns`` and ``lossless`` the rows of ``part``, in order) by ``check`` (the cascade,
    its own image left out): a ``schema.PAIRS`` table of its matches (``different`` ones left out),
    ``top`` at most a row, in the order of the check."""
    cols: dict[str, list[Any]] = {name: [] for name in PAIRS.names}
    for pk, feats, url, turns, lossless in zip(
        pks, features, *(part.column(n).to_pylist() for n in ("url", "turns", "lossless"))
    ):
        f = files[pk]
        fp = f.fingerprint
        data = _bytes_if_unchanged(url, fp.sha256, limits, storage_options) if is_local(url) else b""
        pixels = _SamePixels(url, fp.sha256, data, bool(lossless), limits, storage_options)
        query = Query.with_turns(fp, turned_fingerprints(fp, turns), data)
        rank = 0
        for m in check(pk, query, feats)[:top]:
            if m.verdict is Verdict.DIFFERENT:
                continue
            for name, value in (
                ("file_pk", f.pk), ("peer_pk", m.file.pk), ("rank", rank), ("score", m.score),
                ("verdict", m.verdict.value), ("evidence", m.explanation),
                ("phash_bits", fp.dihedral_distance_bits(m.file.fingerprint)[0]),
                ("by_local_features", m.by_local_features),
                *zip(("same_pixels", "decoded_pixels"), pixels.settle(fp, m.file, m.verdict)),
            ):  # fmt: skip
                cols[name].append(value)
            rank += 1
    return pa.table(cols, schema=PAIRS)


class _SamePixels:
    """Whether a checked file and each of its matches hold the same pixels, for the pairs whose
    verdict ``scan.evidence.settled_verdict`` settles that way: a near duplicate of the same size
    (``worth_pixel_digest``), one file lossless and the other lossy; and when they do not, whether
    they differ by a level at most (``decoded_alike``: the keeper choice reads both). Files are read
    through ``storage.read_bytes``, local or any fsspec protocol alike, and only for such a pair:
    the checked file's bytes once (``data`` when already read) and its digest once."""

    def __init__(
        self, url: str, sha256: bytes, data: bytes, lossless: bool, limits: DecodeLimits, options: Mapping[str, Any]
    ) -> None:
        self._url, self._sha, self._data, self._lossless = url, sha256, data, lossless
        self._limits, self._options = limits, options
        self._digest: bytes | None = None

    def _own(self) -> bytes:
        if not self._data:
            self._data = _bytes_if_unchanged(self._url, self._sha, self._limits, self._options)
        return self._data

    def settle(self, fp: Fingerprint, peer: StoredFile, verdict: Verdict) -> tuple[bool | None, bool | None]:
        """(same pixels, within a level) when the pair is one to settle and both files can be read,
        else (None, None); the second is None when the first is True."""
        other = peer.fingerprint
        if verdict is not Verdict.NEAR_DUPLICATE or not peer.source or not worth_pixel_digest(fp, other):
            return None, None
        data = _bytes_if_unchanged(peer.source, other.sha256, self._limits, self._options)
        if not data or file_facts(data, other.mime).lossless == self._lossless or not self._own():
            return None, None
        if self._digest is None:
            self._digest = fp.pixel_digest or full_pixel_digest(self._data, limits=self._limits)
        if (other.pixel_digest or full_pixel_digest(data, limits=self._limits)) == self._digest:
            return True, None
        try:
            return False, decoded_alike(self._data, data, limits=self._limits)
        except InputError:
            return False, None


def spectrum_rows(rows: pa.Table, *, limits: DecodeLimits, storage_options: Mapping[str, Any]) -> pa.Table:
    """The ``spectrum_profile`` of each file of ``rows`` (``file_pk``, ``url``, ``sha256``), decoded at
    its own resolution: a ``schema.SPECTRA`` table, null for a file that cannot be read or changed."""
    cols: dict[str, list[Any]] = {name: [] for name in SPECTRA.names}
    for pk, url, sha in zip(*(rows.column(n).to_pylist() for n in ("file_pk", "url", "sha256"))):
        data = _bytes_if_unchanged(url, sha, limits, storage_options)
        try:
            shape = spectrum_profile(decode_image(data, limits=limits).pixels).astype(np.float64) if data else None
        except InputError:
            shape = None
        cols["file_pk"].append(pk)
        cols["spectrum"].append(None if shape is None else shape.tobytes())
    return pa.table(cols, schema=SPECTRA)


def _bytes_if_unchanged(url: str, sha256: bytes, limits: DecodeLimits, storage_options: Mapping[str, Any]) -> bytes:
    """The file's bytes when it still holds what was fingerprinted (for the pixel digest), else none."""
    try:
        data = read_bytes(url, max_bytes=limits.max_bytes, storage_options=storage_options)
    except InputError:
        return b""
    return data if hashlib.sha256(data).digest() == sha256 else b""


def error_rows(table: pa.Table) -> list[FileError]:
    """The error rows of a fingerprint table (``url``, ``error_code``, ``error``)."""
    t = table.filter(pc.is_valid(table.column("error_code")))
    return [FileError(u, c, e) for u, c, e in zip(*(t.column(n).to_pylist() for n in ("url", "error_code", "error")))]
