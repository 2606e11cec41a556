"""A query image analysed once, with its signals under each flip or turn computed on demand."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from lookalike.fingerprints import Analysis, Dihedral, Fingerprint, grid_signals, transform_pixels

__all__ = ["Query"]


class Query:
    """A fingerprint, and the colour grid it came from when that is at hand.

    ``turned(k)`` is the fingerprint of the picture under ``Dihedral(k)``. Only
    pHash has its variants in the fingerprint itself; the other signals of a
    turned picture come from the turned 64 x 64 grid, so they are computed the
    first time a candidate needs them, and kept. Without the grid (a stored
    fingerprint), only the unturned signals exist.
    """

    def __init__(
        self, fingerprint: Fingerprint, grid: npt.NDArray[np.float64] | None = None, data: bytes = b""
    ) -> None:
        self.fingerprint = fingerprint
        self.grid = grid
        self.data = data
        self._turned: dict[Dihedral, Fingerprint] = {Dihedral.IDENTITY: fingerprint}

    @classmethod
    def of(cls, analysis: Analysis) -> Query:
        """The query for an analysed image (grid and bytes kept)."""
        return cls(analysis.fingerprint, analysis.grid, analysis.data)

    @classmethod
    def with_turns(cls, fingerprint: Fingerprint, turned: Mapping[Dihedral, Fingerprint], data: bytes = b"") -> Query:
        """A query whose turned fingerprints were computed elsewhere (from the grid, when it was at
        hand: the scale-out pipeline keeps them in its Parquet files instead of the 98 KB grid)."""
        query = cls(fingerprint, None, data)
        query._turned.update(turned)
        query._turned[Dihedral.IDENTITY] = fingerprint
        return query

    def turned(self, which: Dihedral) -> Fingerprint | None:
        """Fingerprint of the query picture flipped or turned as ``which`` names (None without a grid)."""
        if which not in self._turned:
            if self.grid is None:
                return None
            fp = self.fingerprint
            grid = np.ascontiguousarray(transform_pixels(self.grid, which))
            self._turned[which] = replace(fp, pixel_digest=None, **grid_signals(grid).signal_fields())
        return self._turned[which]

    def best_turn(self, stored: Fingerprint) -> Dihedral:
        """The flip/turn of the query whose pHash is closest to ``stored``'s."""
        _, k = self.fingerprint.dihedral_distance_bits(stored)
        return Dihedral(k)
