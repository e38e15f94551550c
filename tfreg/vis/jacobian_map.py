"""Colour maps of the Jacobian determinant of a DDF, with folding highlighted.

``det J`` comes from :func:`tfreg.metrics.jacobian_determinant` (voxel-unit DDF, central differences),
computed on the whole field and then sliced, so the values are those of the 3-D transform. The colour
map is diverging around 1 (blue: compression, white: volume kept, red: expansion); voxels with
``det J <= 0`` (the transform folds there) are painted in a separate colour, and the folding fraction
of the whole field and of the slice is printed in the title.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
from matplotlib.colors import ListedColormap, TwoSlopeNorm
from matplotlib.patches import Patch

from tfreg.metrics.jacobian import jacobian_determinant
from tfreg.vis import slices as sl
from tfreg.vis._figure import new_figure, save_figure

FOLD_COLOUR = "#00e000"


def folded_index(det: np.ndarray, axis: int) -> int:
    """Slice along ``axis`` with the most folded voxels (``det <= 0``); the middle slice when none fold."""
    counts = np.count_nonzero(det <= 0, axis=tuple(d for d in range(det.ndim) if d != axis))
    return int(np.argmax(counts)) if counts.max() > 0 else sl.middle_index(det.shape[axis])


def plot_jacobian(
    ddf: np.ndarray,
    out: str,
    spacing: Optional[Sequence[float]] = None,
    axis: int = 2,
    index: Optional[int] = None,
    vmax: Optional[float] = None,
    cmap: str = "RdBu_r",
    fold_colour: str = FOLD_COLOUR,
    dpi: int = 100,
    title: Optional[str] = None,
    figsize: Optional[Sequence[float]] = None,
) -> str:
    """Write a PNG colour map of det J on one slice, folds in ``fold_colour``.

    Args:
        ddf: ``(*spatial, ndim)`` displacement field in voxels, ndim 2 or 3, component c along axis c.
        out: PNG path.
        spacing: voxel size in mm: sets the physical aspect only (det J of a voxel-unit field does not
            depend on it).
        axis, index: the slice; default the slice with the most folded voxels, or the middle one.
        vmax: upper end of the colour scale (default ``max(2, 99th percentile of det J)``); the scale
            runs from 0 to ``vmax`` with white at 1.
        cmap: diverging matplotlib colour map.
        fold_colour: colour of voxels with ``det J <= 0``.
        dpi, figsize: resolution and size in inches (PNG is ``figsize * dpi`` pixels).
        title: first title line (default names the slice); the folding fractions follow.

    Returns:
        ``out``.
    """
    ndim = ddf.ndim - 1
    if ndim not in (2, 3) or ddf.shape[-1] != ndim:
        raise ValueError(f"jacobian: --ddf must have shape (*spatial, ndim) with ndim 2 or 3, got {ddf.shape}")
    det = jacobian_determinant(ddf)
    spacing = tuple(spacing) if spacing is not None else (1.0,) * ndim
    axis = sl.check_axis(axis, ndim)
    if ndim == 3:
        index = folded_index(det, axis) if index is None else sl.check_index(index, det.shape[axis])
    else:
        index = 0
    plane = sl.take_slice(det, axis, index)
    folded = plane <= 0
    total_fraction = float(np.count_nonzero(det <= 0) / det.size)
    slice_fraction = float(np.count_nonzero(folded) / folded.size)
    if vmax is None:
        vmax = max(2.0, float(np.percentile(det, 99)))
    if vmax <= 1.0:
        raise ValueError(f"--vmax: the colour scale's top must be above 1 (det J = 1 is its centre), got {vmax}")

    w, h = sl.panel_size(det.shape, spacing, axis, width=4.0)
    fig = new_figure(figsize if figsize is not None else (w + 1.3, h + 1.0), dpi)
    ax = fig.add_subplot()
    aspect = sl.pixel_aspect(spacing, axis)
    shown = sl.show_slice(ax, plane, aspect, cmap=cmap, norm=TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=vmax))
    if folded.any():
        # folds on their own layer: a colour outside the map, so they cannot be read as compression
        sl.show_slice(
            ax,
            np.ma.masked_where(~folded, np.ones(folded.shape)),
            aspect,
            cmap=ListedColormap([fold_colour]),
            vmin=0,
            vmax=1,
        )
    colourbar = fig.colorbar(shown, ax=ax, shrink=0.9, extend="both")
    colourbar.set_label("det J")
    ax.legend(
        handles=[Patch(color=fold_colour, label="folding (det J ≤ 0)")], loc="upper right", fontsize=7, framealpha=0.8
    )
    where = "det J" if ndim == 2 else f"det J, axis {axis}, slice {index}"
    folding = f"folding: {100 * total_fraction:.2f}% of the field"
    if ndim == 3:
        folding += f", {100 * slice_fraction:.2f}% of this slice"
    fig.suptitle(f"{title or where}\n{folding}", fontsize=9)
    return save_figure(fig, out, dpi)


__all__ = ["FOLD_COLOUR", "folded_index", "plot_jacobian"]
