"""One frozen part of a ``HammingIndex`` in files that every process on a host maps, not copies.

The workers of one ``lookalike serve`` each load the same codes from the database. Rather than
each holding its own copy of the tables (about 32 bytes a code: 32 MB at a million codes, 3.2 GB
at a hundred million), the first to get there writes the built part as plain ``.npy`` files in a
folder named by a digest of its ids and codes, and every process, the writer too, maps those
files (copy-on-write, never written): the kernel keeps one copy of the pages in its page cache,
shared by all. Processes that loaded a different state of the database (a worker started later)
get a folder of their own. A folder is written under a temporary name and renamed into place, so
a reader never sees half of one; of two writers racing, the second finds the folder there and
uses it.
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lookalike.errors import StoreError

__all__ = ["shared_arrays"]

#: the arrays of a part, by name (``key_bits`` as an int64 array)
Arrays = dict[str, npt.NDArray[np.generic]]
_NAMES = ("ids", "codes", "sorter", "perm", "offs", "keys", "key_bits")
_VERSION = "1"


def _digest(ids: npt.NDArray[np.int64], codes: npt.NDArray[np.uint64]) -> str:
    h = hashlib.sha256(_VERSION.encode())
    h.update(np.ascontiguousarray(ids).tobytes())
    h.update(np.ascontiguousarray(codes).tobytes())
    return h.hexdigest()[:32]


def _mapped(folder: Path) -> Arrays:
    """The arrays of a published part, each a plain ndarray over a private, read-only-in-practice
    mapping (``mmap_mode="c"``: writable arrays, so numba compiles no second set of kernels).
    Every page is read once here, so that queries find them mapped (no page faults on the first
    queries of a worker) and the memory a process reports includes its share of them."""
    arrays = {name: np.asarray(np.load(folder / f"{name}.npy", mmap_mode="c")) for name in _NAMES}
    for array in arrays.values():
        if array.nbytes:
            int(array.reshape(-1).view(np.uint8)[:: mmap.PAGESIZE].sum())
    return arrays


def shared_arrays(
    directory: str | os.PathLike[str],
    ids: npt.NDArray[np.int64],
    codes: npt.NDArray[np.uint64],
    build: Callable[[], Arrays],
) -> Arrays:
    """The part of these ``ids`` and ``codes`` mapped from ``directory``: published there first
    (from ``build()``) unless a process has done so already. Raises StoreError when the folder
    cannot be written or read."""
    root = Path(directory)
    folder = root / f"hamming-{_digest(ids, codes)}"
    try:
        if not folder.is_dir():
            root.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=".hamming-", dir=root))
            try:
                for name, array in build().items():
                    np.save(tmp / f"{name}.npy", np.ascontiguousarray(array), allow_pickle=False)
                os.rename(tmp, folder)
            except OSError:
                if not folder.is_dir():  # not the race a second writer loses: a real failure
                    raise
            finally:
                with contextlib.suppress(OSError):
                    shutil.rmtree(tmp)
        return _mapped(folder)
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot share the Hamming index through {root}: {e}") from e
