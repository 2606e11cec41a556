"""Memory of a scale-out run's processes: Arrow on glibc's allocator, and freed memory handed back
to the system, on a worker after each task and on the client after each step of a run that read
or wrote a run-sized table.

Arrow's default pool (mimalloc) keeps the pages of freed Parquet reads and writes, by thread, and
releases few of them when asked: a process's memory then climbs with the work it did, not with
what it holds. Measured on runs of 2,000 and 16,000 small photos (benchmarks/scale_memory.py),
reading a run's pairs and rows on the client grew by 16 MB between the two sizes on mimalloc and
by 6 MB on glibc; a worker's anonymous memory at the peak of a match task by 38 MB on mimalloc
and by 7 MB on glibc. ``use_system_allocator`` makes glibc the pool of a run's processes, and
``give_back`` returns what glibc's arenas keep (Dask's own advice is ``malloc_trim``).

That switches the pool of pyarrow's own calls only. Arrow's C++ code (Parquet's reader threads)
allocates from the C++ default pool, which pyarrow picks once, when it is imported, from
``ARROW_DEFAULT_MEMORY_POOL``: ``lookalike find --cluster`` sets it to ``system`` before then
(``cli.scale``), and a program that runs ``Pipeline`` itself should too.
"""

from __future__ import annotations

from functools import cache
from typing import Any

__all__ = ["client_memory", "give_back", "use_system_allocator"]

#: glibc's ``M_MMAP_THRESHOLD`` (``mallopt``), and the client's: blocks from 128 KiB up are mapped
#: on their own and unmapped when freed
_M_MMAP_THRESHOLD = -3
_CLIENT_MMAP_BYTES = 128 * 1024


def client_memory() -> None:
    """This process is the client of a run: Arrow on glibc (``use_system_allocator``), and every
    block of 128 KiB or more mapped on its own, so that freeing it returns it. glibc otherwise
    raises that threshold after the first such block is freed and carves later ones from its
    heap, where they stay: writing a 16,000-row manifest left 15 MB held against 7 with the
    threshold fixed (6 at 2,000 rows). Not on workers, whose tasks allocate large arrays often."""
    use_system_allocator()
    mallopt = _libc_function("mallopt")
    if mallopt is not None:
        mallopt(_M_MMAP_THRESHOLD, _CLIENT_MMAP_BYTES)


def use_system_allocator() -> None:
    """Make glibc's allocator (``pyarrow.system_memory_pool``) Arrow's default pool in this
    process, for the rest of its life: the client of a run, or a worker, reads and writes
    run-sized Parquet tables whose freed pages mimalloc would keep."""
    import pyarrow as pa

    if pa.default_memory_pool().backend_name != "system":
        pa.set_memory_pool(pa.system_memory_pool())


def give_back() -> None:
    """Return this process's freed memory to the system (Arrow's pool, then glibc's arenas)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _libc_function("malloc_trim")
    if trim is not None:
        trim(0)


@cache
def _libc_function(name: str) -> Any:
    """glibc's function ``name``, or None (another C library)."""
    import ctypes

    try:
        return getattr(ctypes.CDLL("libc.so.6"), name, None)
    except OSError:
        return None
