"""PyTorch state dicts read into NumPy without torch and without running arbitrary pickles.

A ``.pth`` file is a pickle whose tensors point, by "persistent id", at raw
storages kept beside it. Two layouts exist: the legacy one (PyTorch < 1.6: a
magic number, a protocol version and system info pickled one after another,
then the state dict, then the list of storage keys, then each storage as an
int64 element count and its bytes) and the zip one (``archive/data.pkl`` and
one ``archive/data/KEY`` file per storage). Both are read here.

The unpickler is restricted to an allow-list: an ordered dict, the tensor
rebuilding function and the storage type names. Anything else in the pickle
(a class that would run code when loaded) raises ``ConfigError``: a weights
file must hold data only.
"""

from __future__ import annotations

import io
import pickle
import zipfile
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from lookalike.errors import ConfigError

__all__ = ["read_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_DTYPES: dict[str, np.dtype[Any]] = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True, slots=True)
class _StorageRef:
    key: str
    dtype: np.dtype[Any]


@dataclass(frozen=True, slots=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _rebuild_tensor(
    storage: _StorageRef, offset: int, shape: tuple[int, ...], strides: tuple[int, ...], *_: Any
) -> _TensorRef:
    return _TensorRef(storage, int(offset), tuple(int(s) for s in shape), tuple(int(s) for s in strides))


class _Unpickler(pickle.Unpickler):
    """Resolves only the names a state dict needs (see the module docstring)."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor
        if module == "torch" and name in _DTYPES:
            return name
        raise ConfigError(f"weights file refers to {module}.{name}, which a plain state dict never does")

    def persistent_load(self, pid: Any) -> _StorageRef:
        if not (isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and pid[1] in _DTYPES):
            raise ConfigError(f"weights file has a storage reference lookalike cannot read: {pid!r:.80}")
        return _StorageRef(str(pid[2]), _DTYPES[pid[1]])


def _materialise(refs: Any, storage: Callable[[_StorageRef], npt.NDArray[Any]]) -> dict[str, npt.NDArray[Any]]:
    if not isinstance(refs, dict):
        raise ConfigError("weights file does not hold a state dict (a mapping of names to tensors)")
    out: dict[str, npt.NDArray[Any]] = {}
    for name, t in refs.items():
        if not isinstance(t, _TensorRef):
            raise ConfigError(f"weights file: {name!r} is not a tensor")
        flat = storage(t.storage)
        item = flat.dtype.itemsize
        needed = t.offset + sum((n - 1) * s for n, s in zip(t.shape, t.strides, strict=True)) + 1 if all(t.shape) else 0
        if needed > flat.size:
            raise ConfigError(f"weights file: {name!r} reaches past the end of its storage")
        view = np.lib.stride_tricks.as_strided(
            flat[t.offset :], shape=t.shape, strides=tuple(s * item for s in t.strides), writeable=False
        )
        out[str(name)] = np.array(view, order="C")  # a contiguous copy that owns its memory
    return out


def _read_legacy(f: IO[bytes]) -> dict[str, npt.NDArray[Any]]:
    header = _Plain(f)
    if header.load() != _LEGACY_MAGIC:
        raise ConfigError("not a PyTorch weights file (no legacy magic number, not a zip archive)")
    header.load()  # protocol version
    info = header.load()
    if not (isinstance(info, dict) and info.get("little_endian", False)):
        raise ConfigError("weights file is big-endian or carries no system info")
    refs = _Unpickler(f).load()
    keys = pickle.Unpickler(f).load()
    storages: dict[str, npt.NDArray[Any]] = {}
    dtypes = {r.storage.key: r.storage.dtype for r in refs.values() if isinstance(r, _TensorRef)}
    for key in keys:
        count = int(np.frombuffer(f.read(8), "<i8")[0])
        dtype = dtypes.get(str(key), np.dtype("u1"))
        data = f.read(count * dtype.itemsize)
        if len(data) != count * dtype.itemsize:
            raise ConfigError("weights file is truncated")
        storages[str(key)] = np.frombuffer(data, dtype)
    return _materialise(refs, lambda s: _lookup(storages, s.key))


def _read_zip(path: Path) -> dict[str, npt.NDArray[Any]]:
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        pkl = next((n for n in names if n.endswith("/data.pkl") or n == "data.pkl"), None)
        if pkl is None:
            raise ConfigError(f"{path}: a zip archive without data.pkl is not a PyTorch weights file")
        prefix = pkl[: -len("data.pkl")]
        refs = _Unpickler(io.BytesIO(z.read(pkl))).load()

        def storage(s: _StorageRef) -> npt.NDArray[Any]:
            try:
                return np.frombuffer(z.read(f"{prefix}data/{s.key}"), s.dtype)
            except KeyError as exc:
                raise ConfigError(f"{path}: storage {s.key} is missing") from exc

        return _materialise(refs, storage)


def _lookup(storages: dict[str, npt.NDArray[Any]], key: str) -> npt.NDArray[Any]:
    try:
        return storages[key]
    except KeyError as exc:
        raise ConfigError(f"weights file: storage {key} is missing") from exc


class _Plain(pickle.Unpickler):
    """The legacy header: plain numbers and dicts, no class at all."""

    def find_class(self, module: str, name: str) -> Any:
        raise ConfigError(f"weights file header refers to {module}.{name}")


def read_state_dict(path: str | Path) -> dict[str, npt.NDArray[Any]]:
    """The tensors of a PyTorch state dict file as NumPy arrays, by name.

    Raises ``ConfigError`` when the file is missing, is not a state dict, or
    would need anything beyond plain tensors to load.
    """
    p = Path(path)
    try:
        if zipfile.is_zipfile(p):
            return _read_zip(p)
        with p.open("rb") as f:
            return _read_legacy(f)
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the weights file ({exc})") from exc
    except (pickle.UnpicklingError, EOFError, ValueError, IndexError, TypeError, AttributeError) as exc:
        raise ConfigError(f"{p}: not a readable PyTorch state dict ({type(exc).__name__}: {exc})") from exc
