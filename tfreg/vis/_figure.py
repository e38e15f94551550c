"""Figure helpers shared by the plotting modules (private)."""

from __future__ import annotations

import os
from typing import Sequence

from matplotlib.figure import Figure


def new_figure(figsize: Sequence[float], dpi: int) -> Figure:
    """A constrained-layout ``Figure`` not registered with pyplot (nothing to close, nothing leaks).

    Raises:
        ValueError: ``dpi`` or a ``figsize`` side is not positive.
    """
    if int(dpi) <= 0:
        raise ValueError(f"--dpi: must be a positive integer, got {dpi}")
    if len(figsize) != 2 or min(figsize) <= 0:
        raise ValueError(f"figsize must be (width, height) in inches, both > 0, got {tuple(figsize)}")
    return Figure(figsize=snap_size(figsize, dpi), dpi=int(dpi), layout="constrained")


def snap_size(figsize: Sequence[float], dpi: int) -> tuple:
    """``figsize`` (inches) moved to whole pixels at ``dpi``: ``round(side * dpi)`` pixels per side.

    matplotlib truncates ``side * dpi`` to an int, so 3.2 in at 100 dpi computed as 3.1999... would give
    319 pixels; a thousandth of a pixel on top makes the truncation land on the rounded value.
    """
    return tuple((round(float(side) * int(dpi)) + 1e-3) / int(dpi) for side in figsize)


def save_figure(fig: Figure, out: str, dpi: int) -> str:
    """Write ``fig`` to ``out`` (format from the suffix, parent folders created) and return ``out``.

    No tight bounding box: the image is exactly ``figsize * dpi`` pixels, which callers rely on.
    """
    folder = os.path.dirname(str(out))
    if folder:
        os.makedirs(folder, exist_ok=True)
    fig.savefig(str(out), dpi=int(dpi))
    return str(out)
