"""Label contours over an image: fixed (green), moving (red) and warped (yellow) labels on the fixed image.

The colours follow van Ulsen's thesis (Fig. 4.3: ``S_F`` green, ``S_M`` red, ``S_M o T`` yellow). A good
registration puts the yellow contours on the green ones; the red ones show where the structures started.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from matplotlib.lines import Line2D

from tfreg.vis import slices as sl
from tfreg.vis._figure import new_figure, save_figure

DEFAULT_COLOURS = {"fixed": "#22dd22", "moving": "#ff3030", "warped": "#ffee00"}
FALLBACK_COLOURS = ("#22dd22", "#ff3030", "#ffee00", "#30c0ff", "#ff66ff", "#ff9900")


def select_channels(masks: np.ndarray, channels: Optional[Sequence[int]], what: str) -> np.ndarray:
    """``masks[..., channels]`` (all channels when None), with a clear error for a missing channel."""
    if channels is None:
        return masks
    n = masks.shape[-1]
    bad = [c for c in channels if not -n <= c < n]
    if bad:
        raise ValueError(f"--label-index: {what} has {n} label channel(s) (0..{n - 1}), got {bad}")
    return masks[..., list(channels)]


def plot_contours(
    image: np.ndarray,
    layers: Sequence[Tuple[str, np.ndarray]],
    out: str,
    spacing: Optional[Sequence[float]] = None,
    axis: int = 2,
    index: Optional[int] = None,
    channels: Optional[Sequence[int]] = None,
    colours: Optional[Sequence[str]] = None,
    linewidth: float = 1.2,
    dpi: int = 100,
    title: Optional[str] = None,
    figsize: Optional[Sequence[float]] = None,
) -> str:
    """Write a PNG of label contours drawn over one slice of ``image``.

    Args:
        image: scalar image ``(i, j[, k])`` (normally the fixed image), drawn in grey.
        layers: ``(name, masks)`` pairs, masks bool ``(*spatial, n)`` (one channel per label) on the
            image's grid; names ``"fixed"``, ``"moving"``, ``"warped"`` get van Ulsen's colours.
        out: PNG path.
        spacing: voxel size in mm (physical aspect).
        axis, index: the slice; default the slice where the first layer has the most foreground.
        channels: label channels to draw (default all), the same for every layer.
        colours: one matplotlib colour per layer (default by name, see ``DEFAULT_COLOURS``).
        linewidth: contour width in points.
        dpi, figsize: resolution and size in inches (PNG is ``figsize * dpi`` pixels).
        title: figure title (default names the slice).

    Returns:
        ``out``.
    """
    if not layers:
        raise ValueError("contours: give at least one label (--fixed-label, --moving-label or --warped-label)")
    if image.ndim not in (2, 3):
        raise ValueError(f"contours: --image must be 2-D or 3-D, got shape {image.shape}")
    masks = []
    for name, mask in layers:
        if mask.ndim == image.ndim:
            mask = mask[..., None]
        if mask.shape[:-1] != image.shape:
            raise ValueError(
                f"contours: {name} label has spatial shape {mask.shape[:-1]} but --image has {image.shape}; "
                "labels must be on the image's grid"
            )
        masks.append(select_channels(mask.astype(bool), channels, f"the {name} label"))
    if colours is None:
        colours = [
            DEFAULT_COLOURS.get(name, FALLBACK_COLOURS[i % len(FALLBACK_COLOURS)]) for i, (name, _) in enumerate(layers)
        ]
    if len(colours) != len(layers):
        raise ValueError(f"contours: got {len(colours)} colour(s) for {len(layers)} label layer(s)")

    spacing = tuple(spacing) if spacing is not None else (1.0,) * image.ndim
    axis = sl.check_axis(axis, image.ndim)
    if image.ndim == 3:
        index = sl.largest_area_index(masks[0], axis) if index is None else sl.check_index(index, image.shape[axis])
    else:
        index = 0
    w, h = sl.panel_size(image.shape, spacing, axis, width=4.0)
    # at least 3.5 in wide so that the title and a three-entry legend fit under a narrow slice
    fig = new_figure(figsize if figsize is not None else (max(w + 0.3, 3.5), h + 0.9), dpi)
    ax = fig.add_subplot()
    window = sl.intensity_limits(image)
    sl.show_slice(ax, sl.take_slice(image, axis, index), sl.pixel_aspect(spacing, axis), vmin=window[0], vmax=window[1])
    handles = []
    for (name, _), mask, colour in zip(layers, masks, colours):
        plane = sl.take_slice(mask, axis, index, spatial_ndim=image.ndim)
        for c in range(plane.shape[-1]):
            channel = plane[..., c]
            if channel.any() and not channel.all():
                # level 0.5 of the 0/1 mask runs half-way between inside and outside voxel centres
                # (no X, Y given: Z[q, p] sits at (p, q), the voxel centres imshow uses)
                ax.contour(channel.T.astype(np.float32), levels=[0.5], colors=[colour], linewidths=linewidth)
        drawn = bool(plane.any())
        handles.append(Line2D([], [], color=colour, linewidth=2, label=name if drawn else f"{name} (none here)"))
    ax.set_xlim(-0.5, image.shape[sl.in_plane_axes(image.ndim, axis)[0]] - 0.5)
    ax.set_ylim(-0.5, image.shape[sl.in_plane_axes(image.ndim, axis)[1]] - 0.5)
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), fontsize=8, frameon=False)
    default = "label contours" if image.ndim == 2 else f"label contours, axis {axis}, slice {index}"
    fig.suptitle(title or default, fontsize=10)
    return save_figure(fig, out, dpi)


__all__ = ["DEFAULT_COLOURS", "plot_contours", "select_channels"]
