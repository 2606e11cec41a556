"""``lookalike embed``: the learned tier's vectors for files stored without it (an index built
before ``--learned`` was turned on), so that checks with the tier see every stored picture.

Each file is read again from its source (its path; a service's storage key under ``root``) and
embedded from the very pixels a file added with the tier is embedded from: the decode at
``WORKING_SIDE`` that ``analyse`` makes (``decode_image(min_side=WORKING_SIDE)``), so a
back-filled index answers ``check --learned`` as one built with the tier would. Files are taken in
row order, ``batch`` at a time; each batch's vectors are committed together, so an interrupted run
loses at most one batch, and a re-run starts with the files that still have none. A file that can
no longer be read is counted and left without a vector (a check treats it as the cascade alone).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from lookalike.config import DecodeLimits
from lookalike.decode import decode_image, read_file
from lookalike.errors import InputError
from lookalike.fingerprints.compute import WORKING_SIDE
from lookalike.index.store.interface import Store, open_store
from lookalike.learned import Embedder, load_embedder
from lookalike.processes import ordered_map

__all__ = ["BATCH", "Backfill", "embed_stored"]

#: files embedded between two commits: an interrupted run redoes at most this many (~20 ms each)
BATCH = 64

_loaded: dict[str | None, Embedder] = {}


@dataclass(frozen=True, slots=True)
class Backfill:
    """What a back-fill did: files ``embedded`` now, ``failed`` (unreadable, left without a
    vector), and ``already`` embedded before it started; under encoder ``model``."""

    model: str
    embedded: int
    failed: int
    already: int

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {"model": self.model, "embedded": self.embedded, "failed": self.failed, "already": self.already}


def _embedder(model: str | None) -> Embedder:
    if model not in _loaded:
        _loaded[model] = load_embedder(model)
    return _loaded[model]


def _embed_one(item: tuple[int, str], model: str | None, limits: DecodeLimits) -> tuple[int, bytes | None]:
    """(file row, the float16 vector bytes of the picture at its path, as ``Index`` embeds it), the
    vector None when the file cannot be read or decoded."""
    pk, path = item
    try:
        pixels = decode_image(read_file(path, max_bytes=limits.max_bytes), limits=limits, min_side=WORKING_SIDE).pixels
    except InputError:
        return pk, None
    return pk, bytes(_embedder(model).embed_pixels([pixels])[0].tobytes())


def embed_stored(
    location: str | os.PathLike[str],
    *,
    model: str | None = None,
    root: Path | None = None,
    jobs: int = 1,
    batch: int = BATCH,
    limits: DecodeLimits | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> Backfill:
    """Embed every file of the index at ``location`` that has no vector under ``model``'s encoder
    (None: the built-in one), in ``jobs`` processes, committing every ``batch`` files (see the module
    docstring). ``root``: the folder relative sources are read from (a service's ``--storage``).
    ``on_progress(done, total)`` after each batch. Raises ``ConfigError`` without the learned extra,
    ``StoreError`` when the database cannot be used."""
    limits = limits or DecodeLimits()
    embedder = _embedder(model)  # in this process first: a missing extra fails before any work
    store = open_store(location)
    try:
        total = store.count_unembedded(embedder.name)
        already = store.stats().files - total
        embedded = failed = 0
        items = (
            (pk, str(root / src) if root is not None and not Path(src).is_absolute() else src)
            for rows in _batches(store.unembedded, embedder.name, batch)
            for pk, src in rows
        )
        work = partial(_embed_one, model=model, limits=limits)
        pending: list[tuple[int, bytes | None]] = []
        # one pool for the whole run (each process loads the encoder once); commits every ``batch``
        for done in ordered_map(work, items, jobs=jobs) if jobs > 1 else map(work, items):
            pending.append(done)
            if len(pending) >= batch:
                kept = _commit(store, embedder.name, pending)
                embedded, failed, pending = embedded + kept, failed + len(pending) - kept, []
                if on_progress is not None:
                    on_progress(embedded + failed, total)
        kept = _commit(store, embedder.name, pending)
        embedded, failed = embedded + kept, failed + len(pending) - kept
        if on_progress is not None:
            on_progress(embedded + failed, total)
        return Backfill(embedder.name, embedded, failed, already)
    finally:
        store.close()


def _commit(store: Store, model: str, done: Sequence[tuple[int, bytes | None]]) -> int:
    """Keep the vectors of ``done`` in one transaction; how many there were."""
    kept = [(pk, v) for pk, v in done if v is not None]
    store.put_embeddings(model, kept)
    return len(kept)


def _batches(
    unembedded: Callable[..., list[tuple[int, str]]], model: str, batch: int
) -> Iterator[Sequence[tuple[int, str]]]:
    """Successive batches of (file row, source) without a vector, past the last row handed out (so
    that files that fail are not asked for again in this run)."""
    after = 0
    while rows := unembedded(model, after=after, limit=batch):
        yield rows
        after = rows[-1][0]
