"""The deformation grid: a regular grid on the fixed image, every point moved by the DDF.

A DDF ``u`` maps fixed voxel ``x`` to ``x + u(x)`` (the moving-image position it samples). The grid
line through fixed voxels ``{(a0, b) : b}`` is drawn through the points ``(a0, b) + u_ab(a0, b)``, where
``u_ab`` are the DDF's two in-plane components; the out-of-plane component of a 3-D field is not shown.
An identity transform draws the regular grid; a constant shift ``s`` moves every line by ``s``; folds
show up as lines crossing each other.
"""

from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.collections import LineCollection

from tfreg.vis import slices as sl
from tfreg.vis._figure import new_figure, save_figure


def grid_positions(size: int, step: int) -> np.ndarray:
    """Voxel positions ``offset, offset + step, ...`` of grid lines along an axis of ``size`` voxels.

    ``offset = ((size - 1) % step) // 2`` centres the lines, so the margins at both ends are equal
    (to within a voxel).
    """
    if step < 1:
        raise ValueError(f"--step: grid spacing must be >= 1 voxel, got {step}")
    return np.arange(((size - 1) % step) // 2, size, step)


def default_step(shape: Sequence[int], lines: int = 20) -> int:
    """A grid spacing in voxels giving about ``lines`` lines along the longer in-plane axis."""
    return max(1, int(round(max(shape) / lines)))


def warped_grid_lines(ddf2d: np.ndarray, step) -> Tuple[List[np.ndarray], List[np.ndarray]]:
    """Polylines of the grid deformed by an in-plane displacement slice.

    Args:
        ddf2d: ``(n_a, n_b, 2)`` in-plane displacement (voxels): ``[..., 0]`` along ``a``, ``[..., 1]``
            along ``b``.
        step: grid spacing in voxels, one int or ``(step_a, step_b)``.

    Returns:
        ``(lines_a, lines_b)``: ``lines_a[m]`` is the ``(n_b, 2)`` polyline ``(a, b)`` of the line at
        ``a = grid_positions(n_a, step_a)[m]``; ``lines_b[m]`` the ``(n_a, 2)`` line at constant ``b``.
    """
    if ddf2d.ndim != 3 or ddf2d.shape[-1] != 2:
        raise ValueError(f"warped_grid_lines: expected an (n_a, n_b, 2) displacement slice, got {ddf2d.shape}")
    n_a, n_b = ddf2d.shape[:2]
    step_a, step_b = (int(step), int(step)) if np.isscalar(step) else (int(step[0]), int(step[1]))
    b = np.arange(n_b, dtype=np.float64)
    a = np.arange(n_a, dtype=np.float64)
    lines_a = [np.stack([a0 + ddf2d[a0, :, 0], b + ddf2d[a0, :, 1]], axis=-1) for a0 in grid_positions(n_a, step_a)]
    lines_b = [np.stack([a + ddf2d[:, b0, 0], b0 + ddf2d[:, b0, 1]], axis=-1) for b0 in grid_positions(n_b, step_b)]
    return lines_a, lines_b


def plot_grid(
    ddf: np.ndarray,
    out: str,
    image: Optional[np.ndarray] = None,
    spacing: Optional[Sequence[float]] = None,
    axis: int = 2,
    index: Optional[int] = None,
    step: Optional[int] = None,
    colour: str = "#ffb000",
    linewidth: float = 0.8,
    dpi: int = 100,
    title: Optional[str] = None,
    figsize: Optional[Sequence[float]] = None,
) -> str:
    """Write a PNG of the deformed grid over a slice of ``image`` (black background without one).

    Args:
        ddf: ``(*spatial, ndim)`` displacement field in voxels, ndim 2 or 3, component c along axis c.
        out: PNG path.
        image: optional fixed image ``(*spatial)`` on the DDF's grid, drawn in grey underneath.
        spacing: voxel size of the fixed grid in mm (physical aspect).
        axis, index: the slice (default: the middle slice along ``axis``).
        step: grid spacing in voxels (default about 20 lines, :func:`default_step`).
        colour, linewidth: line style.
        dpi, figsize: resolution and size in inches (PNG is ``figsize * dpi`` pixels).
        title: figure title (default names the slice and the step).

    Returns:
        ``out``.
    """
    ndim = ddf.ndim - 1
    if ndim not in (2, 3) or ddf.shape[-1] != ndim:
        raise ValueError(f"grid: --ddf must have shape (*spatial, ndim) with ndim 2 or 3, got {ddf.shape}")
    shape = ddf.shape[:-1]
    if image is not None and image.shape != shape:
        raise ValueError(f"grid: --image has shape {image.shape} but the DDF's spatial shape is {shape}")
    spacing = tuple(spacing) if spacing is not None else (1.0,) * ndim
    axis = sl.check_axis(axis, ndim)
    index = 0 if ndim == 2 else (sl.middle_index(shape[axis]) if index is None else sl.check_index(index, shape[axis]))
    a, b = sl.in_plane_axes(ndim, axis)
    plane = sl.take_slice(ddf, axis, index, spatial_ndim=ndim)[..., [a, b]]
    step = default_step((shape[a], shape[b])) if step is None else int(step)
    lines_a, lines_b = warped_grid_lines(plane, step)

    w, h = sl.panel_size(shape, spacing, axis, width=4.0)
    # at least 3.5 in wide so that the two title lines fit above a tall, narrow slice
    fig = new_figure(figsize if figsize is not None else (max(w + 0.3, 3.5), h + 0.8), dpi)
    ax = fig.add_subplot()
    if image is not None:
        window = sl.intensity_limits(image)
        sl.show_slice(
            ax, sl.take_slice(image, axis, index), sl.pixel_aspect(spacing, axis), vmin=window[0], vmax=window[1]
        )
    else:
        sl.show_slice(ax, np.zeros((shape[a], shape[b])), sl.pixel_aspect(spacing, axis), vmin=0, vmax=1)
    ax.add_collection(LineCollection(lines_a + lines_b, colors=colour, linewidths=linewidth))
    ax.set_xlim(-0.5, shape[a] - 0.5)
    ax.set_ylim(-0.5, shape[b] - 0.5)
    where = "" if ndim == 2 else f", axis {axis}, slice {index}"
    fig.suptitle(title or f"deformation grid{where}\nlines every {step} voxel{'s' if step > 1 else ''}", fontsize=10)
    return save_figure(fig, out, dpi)


__all__ = ["default_step", "grid_positions", "plot_grid", "warped_grid_lines"]
