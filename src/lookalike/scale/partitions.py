"""How a run's partition files are named and kept: by the digest of their inputs (``digest``), so a
finished file is reused exactly when its inputs are unchanged, and the files of inputs that changed
are removed (``drop_others``)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os

__all__ = ["digest", "drop_others"]


def digest(*parts: object) -> str:
    """The first 12 hex digits of the SHA-256 of ``parts`` in a canonical JSON form (sets sorted,
    dataclasses as dicts), the same in every process: ``repr`` of a frozenset is not."""

    def canonical(o: object) -> object:
        if dataclasses.is_dataclass(o) and not isinstance(o, type):
            return {f.name: getattr(o, f.name) for f in dataclasses.fields(o)}
        if isinstance(o, set | frozenset):
            return sorted(o, key=repr)
        if isinstance(o, bytes):
            return o.hex()
        raise TypeError(f"cannot digest {type(o).__name__}")

    text = json.dumps(parts, default=canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def drop_others(folder: str, keep: set[str]) -> None:
    """Remove the partition files of ``folder`` that this run does not use (its inputs changed)."""
    for name in os.listdir(folder):
        if os.path.join(folder, name) not in keep:
            os.remove(os.path.join(folder, name))
