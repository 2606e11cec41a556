"""Analysing many files in worker processes: the same answers as in one, and what the workers
inherit from the process that forks them."""

from __future__ import annotations

import multiprocessing
import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from lookalike.fingerprints import analyse_files
from tests.images import photo, save

#: the process that "loaded the model" of ``_embed_noting_the_loader``, in this process
_loaded_in: int | None = None


def _embed_noting_the_loader(pixels: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
    """A stand-in encoder that loads once per process: (the process that loaded it, this process)."""
    global _loaded_in
    if _loaded_in is None:
        _loaded_in = os.getpid()
    return np.array([_loaded_in, os.getpid()], np.float64)


def _pixels_shape(pixels: npt.NDArray[np.uint8]) -> tuple[int, ...]:
    return pixels.shape


@pytest.mark.skipif(multiprocessing.get_start_method() != "fork", reason="workers inherit only when forked")
def test_forked_workers_use_what_was_loaded_before_them_and_answer_as_one_process_does(tmp_path: Path) -> None:
    files = [save(photo(160 + 8 * i, 120, seed=i), tmp_path / f"p{i}.jpg") for i in range(6)]
    one = list(analyse_files(files, jobs=1, local=True))
    two = list(
        analyse_files(files, jobs=2, local=True, embed=_embed_noting_the_loader, query=_pixels_shape, pixels=False)  # type: ignore[arg-type]
    )
    assert [r.fingerprint for r in two] == [r.fingerprint for r in one]
    for a, b in zip(one, two, strict=True):
        assert a.analysis is not None and b.analysis is not None and b.analysis.local is not None
        assert np.array_equal(a.analysis.local.descriptors, b.analysis.local.descriptors)
        # the steps saw the decoded pixels; only their results came back
        assert b.query_local == a.analysis.image.pixels.shape and b.analysis.image.pixels.size == 0
    loaders = {int(r.vector[0]) for r in two if r.vector is not None}
    workers = {int(r.vector[1]) for r in two if r.vector is not None}
    # the encoder was loaded here, once, and every worker embedded with that copy
    assert loaders == {os.getpid()}
    assert os.getpid() not in workers
