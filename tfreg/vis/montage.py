"""Slice montages: one row per image (e.g. moving, warped, fixed), one column per slice."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from tfreg.vis import slices as sl
from tfreg.vis._figure import new_figure, save_figure


def map_index(index: int, size_from: int, size_to: int) -> int:
    """Slice ``index`` of an axis of ``size_from`` slices at the same relative position on ``size_to`` slices.

    ``round(index * (size_to - 1) / (size_from - 1))``: the first and last slices map onto each other.
    Lets a montage show a moving image whose grid differs from the fixed one at matching depths.
    """
    if size_from == size_to or size_from == 1:
        return min(index, size_to - 1)
    return int(round(index * (size_to - 1) / (size_from - 1)))


def plot_montage(
    volumes: Sequence[np.ndarray],
    out: str,
    spacings: Optional[Sequence[Sequence[float]]] = None,
    names: Optional[Sequence[str]] = None,
    axis: int = 2,
    slices: Optional[Sequence[int]] = None,
    num_slices: int = 5,
    reference: int = -1,
    dpi: int = 100,
    title: Optional[str] = None,
    figsize: Optional[Sequence[float]] = None,
) -> str:
    """Write a PNG montage: row r shows ``volumes[r]``, column c slice ``slices[c]``.

    Args:
        volumes: scalar images ``(i, j[, k])`` (all 2-D or all 3-D); shapes may differ (a moving image on
            its own grid), slice indices are then mapped by relative depth (:func:`map_index`).
        out: PNG path (parent folders are created).
        spacings: voxel size in mm per image (default 1 mm): pixels are drawn in physical aspect.
        names: row labels (default ``image 0``, ``image 1``, ...).
        axis: slicing axis of 3-D volumes.
        slices: slice indices on ``volumes[reference]``'s grid; default ``num_slices`` indices spread over
            the slices where the reference image is not background (:func:`slices.evenly_spaced`).
        num_slices: number of default slices.
        reference: which volume the indices refer to (default the last: the fixed image).
        dpi: resolution; the PNG is ``figsize * dpi`` pixels.
        title: figure title.
        figsize: ``(width, height)`` in inches (default from the panels' physical aspect).

    Returns:
        ``out``.
    """
    if not volumes:
        raise ValueError("montage: give at least one image")
    ndims = {v.ndim for v in volumes}
    if len(ndims) != 1 or ndims.pop() not in (2, 3):
        raise ValueError(f"montage: images must all be 2-D or all 3-D, got shapes {[v.shape for v in volumes]}")
    ndim = volumes[0].ndim
    spacings = [tuple(s) for s in spacings] if spacings is not None else [(1.0,) * ndim] * len(volumes)
    names = list(names) if names is not None else [f"image {r}" for r in range(len(volumes))]
    if len(spacings) != len(volumes) or len(names) != len(volumes):
        raise ValueError("montage: give one spacing and one name per image")
    axis = sl.check_axis(axis, ndim)
    ref = volumes[reference]
    if ndim == 2:
        slices = [0]
    elif slices is None:
        start, stop = sl.foreground_range(ref, axis)
        slices = sl.evenly_spaced(ref.shape[axis], num_slices, start, stop)
    else:
        slices = [sl.check_index(k, ref.shape[axis], "--slices") for k in slices]
    if not slices:
        raise ValueError("--slices: give at least one slice index")

    panels = [sl.panel_size(v.shape, s, axis, width=2.2) for v, s in zip(volumes, spacings)]
    col_w = max(w for w, _ in panels)
    if figsize is None:
        figsize = (0.5 + col_w * len(slices), 0.45 + sum(h for _, h in panels) + (0.35 if title else 0.0))
    fig = new_figure(figsize, dpi)
    grid = fig.add_gridspec(len(volumes), len(slices), height_ratios=[h for _, h in panels])
    for r, (volume, spacing, name) in enumerate(zip(volumes, spacings, names)):
        window = sl.intensity_limits(volume)
        aspect = sl.pixel_aspect(spacing, axis)
        for c, k in enumerate(slices):
            ax = fig.add_subplot(grid[r, c])
            kk = k if ndim == 2 else map_index(k, ref.shape[axis], volume.shape[axis])
            sl.show_slice(ax, sl.take_slice(volume, axis, kk), aspect, vmin=window[0], vmax=window[1])
            if r == 0 and ndim == 3:
                ax.set_title(f"slice {k}", fontsize=9)
            if c == 0:
                ax.set_ylabel(name, fontsize=9)
            if ndim == 3 and kk != k:
                # this image's grid differs from the reference: say which of its slices is shown
                ax.text(0.02, 0.02, f"k={kk}", transform=ax.transAxes, color="yellow", fontsize=7, va="bottom")
    if title:
        fig.suptitle(title, fontsize=10)
    elif ndim == 3:
        fig.suptitle(f"slices along axis {axis}", fontsize=9)
    return save_figure(fig, out, dpi)


__all__ = ["map_index", "plot_montage"]
