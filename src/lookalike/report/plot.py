"""One picture and its duplicates in a PNG, with scores: ``lookalike plot`` (like imagededup's
``plot_duplicates``). Needs matplotlib (the ``report`` extra); drawn with the Agg backend, so no
display is needed."""

from __future__ import annotations

import math
import os
import textwrap

from lookalike.config import DecodeLimits
from lookalike.decode import preview_pixels, read_source
from lookalike.errors import ConfigError, FetchError, InputError
from lookalike.scan import Duplicate

__all__ = ["plot_duplicates"]


def plot_duplicates(
    image: str | os.PathLike[str],
    duplicates: list[Duplicate],
    out: str | os.PathLike[str],
    *,
    columns: int = 4,
    limits: DecodeLimits | None = None,
) -> None:
    """Draw ``image`` (first, titled "query") and each duplicate titled with its score and verdict.

    Raises ``ConfigError`` without matplotlib, ``InputError`` when ``image`` cannot be read,
    ``FetchError`` when ``out`` cannot be written. A duplicate that cannot be read is drawn as a
    blank panel saying so."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ConfigError("lookalike plot needs matplotlib: pip install 'lookalike[report]'") from exc
    max_bytes = (limits or DecodeLimits()).max_bytes
    panels: list[tuple[str, object | None]] = [
        (f"query\n{_short(str(image))}", preview_pixels(read_source(image, max_bytes=max_bytes).data, limits=limits))
    ]
    for d in duplicates:
        try:
            pixels: object | None = preview_pixels(read_source(d.path, max_bytes=max_bytes).data, limits=limits)
        except InputError:
            pixels = None
        panels.append((f"{d.score:.3f} {d.verdict}\n{_short(d.path)}", pixels))
    cols = max(1, min(columns, len(panels)))
    rows = math.ceil(len(panels) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.9 * rows), squeeze=False)
    try:
        for ax in axes.flat:
            ax.axis("off")
        for ax, (title, pixels) in zip(axes.flat, panels):
            if pixels is None:
                ax.text(0.5, 0.5, "cannot read", ha="center", va="center")
            else:
                ax.imshow(pixels)
            ax.set_title(title, fontsize=9)
        if not duplicates:
            fig.suptitle("no duplicates found", fontsize=11)
        fig.tight_layout()
        try:
            fig.savefig(out, format="png", dpi=100)
        except OSError as exc:
            raise FetchError(f"{out}: cannot write the plot ({exc.strerror or exc})") from exc
    finally:
        plt.close(fig)


def _short(path: str, width: int = 34) -> str:
    name = os.path.basename(path)
    return "\n".join(textwrap.wrap(name, width)[:2]) or path
