"""Every decode of a request, in a worker process with a wall-time budget.

A picture's decode runs in C (libjpeg, libpng, libwebp, libheif) where no Python code can stop it,
and the limits checked before decoding (bytes, declared pixels, a JPEG's scans) bound its cost
only for the ways of being costly that someone has thought of. So each picture thread of a worker
hands its decodes to a process of its own (``processes.BudgetedWorker``, running
``fingerprints.isolated``): a decode and fingerprint
that runs past ``decode_timeout_s`` is answered 422 ``decode_timeout``, its process is killed and
another started, and the picture slot is free again at once, while other tenants' checks go on in
the other slots. The worker computes everything of the upload that needs its pixels (hashes,
the full-resolution pixel digest, local features for storing), so no decode happens in the
server's own process; the bytes go to the worker and the analysis comes back (without the bytes)
over a pipe: about 1 ms for a 1,000-pixel JPEG. With the learned tier on (``serve --learned``),
the same call embeds the decoded pixels too (``learned.isolated``): the encoder runs in the worker,
within the same budget, and its vector comes back with the analysis.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from dataclasses import replace
from functools import partial

import numpy as np
import numpy.typing as npt

from lookalike.config import DecodeLimits, LearnedSettings
from lookalike.errors import CorruptImage, DecodeTimeout
from lookalike.fingerprints import Analysis
from lookalike.fingerprints.isolated import analyse_for_check, analyse_for_storing, warm_up
from lookalike.processes import BudgetedWorker, WorkerDied

#: an upload's analysis and, with the learned tier, its embedding
Analysed = tuple[Analysis, npt.NDArray[np.float16] | None]

__all__ = ["PictureDecoder"]


class PictureDecoder:
    """``slots`` budgeted worker processes, one for each picture slot (so a free slot always finds
    an idle worker). Each is spawned at its first picture, or all at once by ``start``."""

    def __init__(
        self, limits: DecodeLimits, *, budget_s: float, slots: int, learned: LearnedSettings | None = None
    ) -> None:
        self.limits = limits
        self.budget_s = budget_s
        #: the encoder the workers embed with (``LearnedSettings.model``), or None without the tier
        self._learned = learned if learned is not None and learned.on else None
        warm: Callable[[], object] = warm_up
        if self._learned is not None:
            from lookalike.learned.isolated import warm_up_with  # the tier's workers load the encoder

            warm = partial(warm_up_with, self._learned.model)
        self._workers = [BudgetedWorker(warm=warm) for _ in range(slots)]
        self._idle: queue.SimpleQueue[BudgetedWorker] = queue.SimpleQueue()
        for worker in self._workers:
            self._idle.put(worker)

    def start(self) -> None:
        """Start every worker now (they warm up in the background), so the first pictures do not
        wait for a process to start (about 2 s of CPU: importing NumPy, Pillow and OpenCV)."""
        for worker in self._workers:
            worker.start()

    def analyse(self, data: bytes, *, storing: bool) -> Analysed:
        """The analysis of an upload (``storing``: with local features, as ``add_checked`` keeps
        them) and, with the learned tier, the embedding of its pixels (else None). Raises the
        ``InputError`` subclasses of ``analyse``, ``DecodeTimeout`` past the budget, and
        ``CorruptImage`` when the decoder's process dies on the picture."""
        worker = self._idle.get()
        try:
            if self._learned is not None:
                from lookalike.learned.isolated import analyse_and_embed

                args = (self.limits, storing, self._learned.model)
                analysis, vector = worker.call(analyse_and_embed, data, *args, budget_s=self.budget_s)
            else:
                work = analyse_for_storing if storing else analyse_for_check
                analysis, vector = worker.call(work, data, self.limits, budget_s=self.budget_s), None
        except TimeoutError:
            raise DecodeTimeout(
                f"upload: decoding and fingerprinting the picture took over {self.budget_s:g} s, "
                f"the limit for one picture"
            ) from None
        except WorkerDied:
            raise CorruptImage("upload: the decoder stopped on this picture (damaged or hostile data?)") from None
        finally:
            self._idle.put(worker)
        return replace(analysis, data=data), vector

    def close(self) -> None:
        """Stop every worker process."""
        for worker in self._workers:
            worker.close()
