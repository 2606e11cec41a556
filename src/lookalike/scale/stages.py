"""The stages of a scale-out run as plain functions: Arrow tables and NumPy arrays in and out,
nothing of Dask, so the same code runs in this process, a process pool or on a cluster.

manifest (``storage.list_sources``) -> ``fingerprint_rows`` -> ``exact_groups`` ->
``build_index`` -> ``verify_rows`` -> ``spectrum_rows`` (only the files that may be enlargements
of a copy they are linked to) -> grouping (``lookalike.scan.grouping.groups_from_links``, the
same function ``find`` ends with; keepers by ``lookalike.scan.evidence.source_order``).

Verification is ``Index.check_query``, the cascade ``check`` and ``find`` run (hashes under every
flip and turn, pixel digest, local features, decisions), against the run's index: each worker
opens it once (its in-memory pHash and descriptor indexes are rebuilt from the file) and checks
the rows of one partition against every other image.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.config import DecodeLimits, Thresholds
from lookalike.decode import decode_image, file_facts
from lookalike.errors import InputError
from lookalike.fingerprints import Fingerprint, fingerprint_from_bytes, fingerprint_to_bytes, full_pixel_digest
from lookalike.fingerprints.local import LocalFeatures, local_features
from lookalike.fingerprints.provenance import decoded_alike
from lookalike.index import Index
from lookalike.index.records import NewFile, StoredFile
from lookalike.match import Query, Verdict, worth_pixel_digest
from lookalike.scale.schema import FINGERPRINTS, PAIRS, SPECTRA, pack_turns, turned_fingerprints
from lookalike.scale.storage import is_local, kept_mtime_ns, read_bytes
from lookalike.scan.provenance import analyse_with_facts
from lookalike.scan.source import spectrum_profile

__all__ = [
    "build_index",
    "exact_groups",
    "fingerprint_rows",
    "spectrum_rows",
    "verify_rows",
    "write_atomically",
]


def write_atomically(table: pa.Table, path: str) -> None:
    """Write ``table`` as Parquet to ``path`` through a temporary name and a rename, so that a file
    at ``path`` is always complete (a run killed meanwhile leaves only a ``.tmp`` file)."""
    tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)


def fingerprint_rows(manifest: pa.Table, *, limits: DecodeLimits, storage_options: Mapping[str, Any]) -> pa.Table:
    """Read, decode and fingerprint each source of ``manifest`` (``schema.MANIFEST``): a
    ``schema.FINGERPRINTS`` table, one row per source in order; a source that cannot be read or
    decoded is a row with its error."""
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


def build_index(
    db: str, parts: Iterable[pa.Table], *, scope: str, limits: DecodeLimits, thresholds: Thresholds
) -> dict[str, int]:
    """Add every fingerprinted row of ``parts`` (``schema.FINGERPRINTS``, in manifest order) to a
    new index at ``db``, as ``find`` adds them: rows with the same bytes share one index row.
    Returns each path's row (``file_pk``)."""
    pk_of: dict[str, int] = {}
    with Index(db, limits=limits, thresholds=thresholds) as index:
        for part in parts:
            good = part.filter(pc.is_valid(part.column("sha256")))
            urls = good.column("url").to_pylist()
            items = [
                NewFile(fingerprint=fingerprint_from_bytes(fp), scope=scope, source=url, local=local)
                for url, fp, local in zip(
                    urls, good.column("fingerprint").to_pylist(), good.column("local").to_pylist()
                )
            ]
            for url, (f, _) in zip(urls, index.add_files(items)):
                pk_of[url] = f.pk
    return pk_of


_open_indexes = threading.local()


def _index(db: str, limits: DecodeLimits, thresholds: Thresholds) -> Index:
    """The index at ``db``, opened once per worker thread (SQLite connections stay in their thread)."""
    cache: dict[tuple[str, int], Index] = getattr(_open_indexes, "cache", None) or {}
    _open_indexes.cache = cache
    key = (db, os.stat(db).st_ino)
    if key not in cache:
        cache[key] = Index(db, limits=limits, thresholds=thresholds, create=False)
    return cache[key]


def verify_rows(
    part: pa.Table,
    pks: Mapping[str, int],
    *,
    db: str,
    scope: str,
    top: int,
    limits: DecodeLimits,
    thresholds: Thresholds,
    storage_options: Mapping[str, Any],
) -> pa.Table:
    """Check each index row first fingerprinted in ``part`` (the rows whose path is in ``pks``)
    against every other image of ``scope`` by ``Index.check_query``: a ``schema.PAIRS`` table of
    its matches (``different`` ones left out), ``top`` at most a row, in the order of the check."""
    index = _index(db, limits, thresholds)
    index.refresh()
    cols: dict[str, list[Any]] = {name: [] for name in PAIRS.names}
    wanted = part.filter(pc.is_in(part.column("url"), value_set=pa.array(list(pks), pa.string())))
    for url, turns, lossless in zip(*(wanted.column(n).to_pylist() for n in ("url", "turns", "lossless"))):
        f = index.files([pks[url]])[0]
        fp = f.fingerprint
        data = _bytes_if_unchanged(url, fp.sha256, limits, storage_options) if is_local(url) else b""
        pixels = _SamePixels(url, fp.sha256, data, bool(lossless), limits, storage_options)
        query = Query.with_turns(fp, turned_fingerprints(fp, turns), data)
        stored = index.local_features([f.pk]).get(f.pk)
        local = LocalFeatures.from_bytes(stored) if stored else _no_features(fp.width / max(1, fp.height))
        matches = index.check_query(query, local, scope=scope, exclude_image=f.image_pk)
        rank = 0
        for m in matches[:top]:
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


def _no_features(aspect: float) -> LocalFeatures:
    return LocalFeatures(
        points=np.zeros((0, 2), np.float32), descriptors=np.zeros((0, 32), np.uint8), aspect=aspect or 1.0
    )
