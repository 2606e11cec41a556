"""The per-turn signals kept in Parquet instead of the colour grid give exactly the fingerprints
that a query turned from its grid has."""

from __future__ import annotations

import pytest
from PIL import Image

from lookalike.fingerprints import Dihedral, analyse
from lookalike.match import Query
from lookalike.scale.schema import TURN_BYTES, pack_turns, turned_fingerprints
from tests.images import encode, flat, photo, stamp


@pytest.mark.parametrize(
    "image",
    [photo(320, 240, seed=3), stamp(180, seed=4), flat((40, 90, 200))],
    ids=["photo", "stamp-with-alpha", "flat"],
)
def test_turned_fingerprints_equal_what_the_turned_query_computes(image: Image.Image) -> None:
    a = analyse(encode(image, "PNG"))
    packed = pack_turns(a.grid)
    assert len(packed) == 7 * TURN_BYTES < a.grid.nbytes // 30
    from_parquet = turned_fingerprints(a.fingerprint, packed)
    from_grid = Query.of(a)
    for k in Dihedral:
        assert from_parquet[k] == from_grid.turned(k), k


def test_damaged_turns_are_refused() -> None:
    a = analyse(encode(photo(seed=1), "PNG"))
    with pytest.raises(ValueError, match="bytes"):
        turned_fingerprints(a.fingerprint, pack_turns(a.grid)[:-1])
