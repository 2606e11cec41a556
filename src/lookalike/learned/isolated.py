"""What a service's decoding process runs with the learned tier on (``service.decoding``): the
analysis of ``fingerprints.isolated`` and the embedding of the same decoded pixels, in one call of
the budgeted worker process, so that the server's own process neither decodes nor runs the
encoder. Each worker loads the encoder once, at its warm-up (``warm_up_with``)."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits
from lookalike.fingerprints import Analysis
from lookalike.fingerprints.isolated import analyse_for_check, analyse_for_storing, warm_up
from lookalike.learned.model import Embedder, load_embedder

__all__ = ["analyse_and_embed", "embed_pixels", "warm_up_with"]

_loaded: dict[str | None, Embedder] = {}


def _embedder(model: str | None) -> Embedder:
    if model not in _loaded:
        _loaded[model] = load_embedder(model)
    return _loaded[model]


def analyse_and_embed(
    data: bytes, limits: DecodeLimits, storing: bool, model: str | None
) -> tuple[Analysis, npt.NDArray[np.float16]]:
    """``analyse_for_storing`` (``storing``) or ``analyse_for_check`` of ``data``, and the embedding
    of its decoded pixels by ``model``'s encoder (None: the built-in one), as ``Index`` would
    compute it. Raises the analysis's ``InputError`` subclasses and ``ConfigError``."""
    analysis = (analyse_for_storing if storing else analyse_for_check)(data, limits)
    vector: npt.NDArray[np.float16] = _embedder(model).embed_pixels([analysis.image.pixels])[0]
    return analysis, vector


def warm_up_with(model: str | None) -> None:
    """``warm_up``, then load ``model``'s encoder and run it once (a first run allocates its buffers)."""
    warm_up()
    _embedder(model).embed_pixels([np.zeros((32, 32, 3), np.uint8)])


def embed_pixels(pixels: npt.NDArray[np.uint8], model: str | None) -> npt.NDArray[np.float16]:
    """The embedding of decoded pixels by ``model``'s encoder (None: the built-in one), loaded once
    per process: what ``index --learned`` hands ``analyse_files`` (as a ``functools.partial``), so
    that each file is embedded in the worker process that decoded it."""
    vector: npt.NDArray[np.float16] = _embedder(model).embed_pixels([pixels])[0]
    return vector
