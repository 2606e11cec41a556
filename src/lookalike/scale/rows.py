"""The client's view of a run's files as compact columns, so that it holds no Python object per file.

A run of millions of files cannot keep a dict entry, a path string and a fingerprint per file on
the client (that was about 8 KB a file). Here the listing is an Arrow table (``listed_table``),
every fingerprinted row is a position in ``RunRows`` (paths in one Arrow string array, the rest
4-byte NumPy columns: its part, its row there and its index row), and only the rows that end up
in the printed answer (``linked``: rows of a pair, or with several paths) are read back as the
Python objects ``scan.grouping.groups_of_links`` takes (``keepers.gather``).

Rows with the same bytes are one index row (``pk``), numbered from 1 in order of first bytes in
path order, as ``find`` numbers them; a row is read and checked under its first path in path order
(``first``), whichever partition holds it (a grown source's partitions interleave).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lookalike.scale.memory import give_back
from lookalike.scale.schema import MANIFEST
from lookalike.scale.storage import Listed

__all__ = ["RunRows", "listed_table", "plan_column"]

I32 = npt.NDArray[np.int32]
#: files turned into one Arrow batch at a time while listing
_BATCH = 4_096


def listed_table(listed: Iterable[Listed]) -> pa.Table:
    """``listed`` as a ``schema.MANIFEST`` table sorted by url, a url listed twice kept once (its
    last listing), built a batch at a time so that no list of every file is held."""
    batches: list[pa.Table] = []
    it = iter(listed)
    while chunk := list(islice(it, _BATCH)):
        batches.append(pa.table({n: [getattr(x, n) for x in chunk] for n in MANIFEST.names}, schema=MANIFEST))
        del chunk
    table = pa.concat_tables(batches) if batches else MANIFEST.empty_table()
    table = table.take(pc.sort_indices(table.column("url")))  # stable: the last of equal urls stays last
    if table.num_rows < 2:
        return table.combine_chunks()
    urls = table.column("url").combine_chunks()
    last = pc.not_equal(urls.slice(0, len(urls) - 1), urls.slice(1)).to_numpy(zero_copy_only=False)
    keep = np.append(last, True)
    table = table.filter(pa.array(keep)).combine_chunks()
    give_back()
    return table


def plan_column(names: list[str], counts: list[int]) -> pa.Array:
    """A string column holding ``names[i]`` ``counts[i]`` times each, made in Arrow (no list of every row)."""
    indices = np.repeat(np.arange(len(names), dtype=np.int32), np.asarray(counts, np.int64))
    dictionary = pa.array(names, pa.string())
    return pa.DictionaryArray.from_arrays(pa.array(indices), dictionary).cast(pa.string())


@dataclass(frozen=True, slots=True)
class RunRows:
    """Every fingerprinted row of a run (error rows left out), in path order: its ``urls`` (Arrow),
    its fingerprint ``part`` (index in the run's list of parts) and ``row`` there, its index row
    ``pk`` (from 1), and whether it is its index row's ``first`` path."""

    urls: pa.ChunkedArray
    part: I32
    row: I32
    pk: I32
    first: npt.NDArray[np.bool_]

    @classmethod
    def read(cls, part_paths: list[str]) -> RunRows:
        """The rows of the fingerprint files ``part_paths``, each read once (url and digest only).

        The digests go straight into one array of the run's rows (32 bytes a row) and the paths
        are sorted only when the parts are not already in path order together (a fresh run's
        are): at a million rows the lists, concatenations and sorted copies of both had peaked at
        200 MB on the client."""
        counts = [pq.ParquetFile(path).metadata.num_rows for path in part_paths]
        words = np.empty((sum(counts), 4), ">u8")
        urls: list[pa.StringArray] = []
        part, row = [], []
        filled, in_order = 0, True
        for i, path in enumerate(part_paths):
            t = pq.read_table(path, columns=["url", "sha256"])
            ok = pc.is_valid(t.column("sha256")).to_numpy(zero_copy_only=False)
            # copied whole in this thread: the filtered columns as they come (their buffers among
            # the Parquet reader's freed ones) held 46 MB where the same rows held 26 at 300,000 rows
            url = t.column("url").filter(pa.array(ok)).combine_chunks()
            sha = t.column("sha256").filter(pa.array(ok)).combine_chunks()
            del t
            words[filled : filled + len(sha)] = _words(sha)
            filled += len(sha)
            if len(url):
                in_order = in_order and _ascending(url) and (not urls or _before(urls[-1], url))
                urls.append(url)
            part.append(np.full(len(url), i, np.int32))
            row.append(np.flatnonzero(ok).astype(np.int32))
        if not urls:
            z = np.zeros(0, np.int32)
            return cls(pa.chunked_array([], pa.string()), z, z, z, np.zeros(0, np.bool_))
        url = pa.chunked_array(urls, pa.string())  # not concatenated: that held the paths twice
        del urls
        words = words[:filled]
        parts, rows_at = np.concatenate(part), np.concatenate(row)
        if not in_order:
            order = pc.sort_indices(url).to_numpy()
            url, words, parts, rows_at = url.take(pa.array(order)), words[order], parts[order], rows_at[order]
            del order
        pk = _numbered_by_first(words)
        del words
        _, first_at = np.unique(pk, return_index=True)
        first = np.zeros(len(pk), np.bool_)
        first[first_at] = True
        give_back()
        return cls(url, parts, rows_at, pk, first)

    def __len__(self) -> int:
        return len(self.pk)

    @property
    def rows(self) -> int:
        """Index rows (distinct bytes)."""
        return int(self.pk.max()) if len(self.pk) else 0

    def owned(self, parts: int) -> Iterator[tuple[I32, I32]]:
        """For each part in turn, the (rows, pks) it checks: the index rows whose first path it holds,
        in its row order (int32 arrays: as lists, a million rows' tasks held 70 MB of ints)."""
        at = np.flatnonzero(self.first)
        at = at[np.lexsort((self.row[at], self.part[at]))]
        bounds = np.searchsorted(self.part[at], np.arange(parts + 1, dtype=np.int32))
        for i in range(parts):
            sel = at[bounds[i] : bounds[i + 1]]
            yield self.row[sel], self.pk[sel]

    def with_pks(self, wanted: npt.NDArray[np.bool_]) -> npt.NDArray[np.intp]:
        """The positions (path order) of the rows whose index row ``pk`` has ``wanted[pk]``."""
        return np.flatnonzero(wanted[self.pk])

    def shared(self) -> npt.NDArray[np.bool_]:
        """Per index row (position ``pk``), whether it has more than one path."""
        return np.bincount(self.pk, minlength=self.rows + 1) > 1


def _words(digests: pa.FixedSizeBinaryArray) -> npt.NDArray[np.uint64]:
    """The 32-byte ``digests`` (none null) as rows of four big-endian 8-byte words (a view)."""
    n = len(digests)
    words = np.frombuffer(digests.buffers()[1], dtype=">u8", count=4 * (n + digests.offset))
    return words[4 * digests.offset :].reshape(-1, 4)


def _ascending(urls: pa.StringArray) -> bool:
    """Whether ``urls`` are in strictly increasing order."""
    return len(urls) < 2 or bool(pc.all(pc.less(urls.slice(0, len(urls) - 1), urls.slice(1))).as_py())


def _before(earlier: pa.StringArray, later: pa.StringArray) -> bool:
    """Whether every url of ``earlier`` comes before every url of ``later`` (each ascending)."""
    return bool(earlier[len(earlier) - 1].as_py() < later[0].as_py())


def _numbered_by_first(words: npt.NDArray[np.uint64]) -> I32:
    """Each row of ``words`` (digests as four 8-byte words a row) numbered from 1 in order of its
    first appearance, equal digests one number: by a sort of their words, compared a word at a time
    (Arrow's ``dictionary_encode`` built a 50 MB hash table at 300,000 rows and grew faster than
    the rows; a sorted copy of the words would be another 32 bytes a row)."""
    n = len(words)
    if not n:
        return np.zeros(0, np.int32)
    order = np.lexsort(words.T[::-1])  # stable: each run of equal digests starts at its first appearance
    starts = np.ones(n, np.bool_)
    starts[1:] = False
    for column in range(words.shape[1]):
        sorted_column = words[order, column]
        starts[1:] |= sorted_column[1:] != sorted_column[:-1]
        del sorted_column
    run = np.cumsum(starts, dtype=np.int32) - 1
    firsts = order[starts]
    number = np.empty(len(firsts), np.int32)
    number[np.argsort(firsts, kind="stable")] = np.arange(1, len(firsts) + 1, dtype=np.int32)
    pk = np.empty(n, np.int32)
    pk[order] = number[run]
    return pk
