"""Comparing two images on one grid: colour-channel / alpha overlays and checkerboards.

Both take the fixed image and the warped moving image (and optionally the moving image itself, for a
"before" panel next to the "after" one, as in van Ulsen's Fig. 4.3). Each image is first mapped to
[0, 1] through its own display window, so images of different modalities (CT vs MR) stay comparable.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
from matplotlib import colormaps

from tfreg.vis import slices as sl
from tfreg.vis._figure import new_figure, save_figure

STYLES = ("channels", "alpha")
CHANNELS_LEGEND = "grey: both, magenta: fixed only, green: other only"


def overlay_rgb(
    fixed2d: np.ndarray, other2d: np.ndarray, style: str = "channels", alpha: float = 0.5, cmap: str = "autumn"
) -> np.ndarray:
    """RGB overlay ``(n_a, n_b, 3)`` in [0, 1] of two slices already normalised to [0, 1].

    Styles:
        ``"channels"``: red = blue = fixed, green = other. Where the images agree the result is grey;
            fixed-only structures are magenta, other-only structures green.
        ``"alpha"``: fixed in grey, the other image through ``cmap`` blended on top with opacity
            ``alpha * other`` (``(1 - w) * grey + w * cmap(other)``, ``w = alpha * other``), so the other
            image's dark background leaves the fixed image visible.
    """
    if fixed2d.shape != other2d.shape:
        raise ValueError(f"overlay: slice shapes differ, {fixed2d.shape} vs {other2d.shape}")
    if style not in STYLES:
        raise ValueError(f"--style: must be one of {', '.join(STYLES)}, got {style!r}")
    f = np.clip(fixed2d, 0.0, 1.0)
    o = np.clip(other2d, 0.0, 1.0)
    if style == "channels":
        return np.stack([f, o, f], axis=-1)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"--alpha: must be in [0, 1], got {alpha}")
    grey = np.repeat(f[..., None], 3, axis=-1)
    colour = colormaps[cmap](o)[..., :3]
    weight = (alpha * o)[..., None]
    return (1.0 - weight) * grey + weight * colour


def checkerboard_mask(shape: Tuple[int, int], tiles: Tuple[int, int]) -> np.ndarray:
    """Bool ``shape`` array, True where the checkerboard shows the first image.

    Axis ``d`` is cut into ``tiles[d]`` tiles: pixel ``p`` is in tile ``floor(p * tiles[d] / shape[d])``,
    and tile ``(t0, t1)`` shows the first image when ``t0 + t1`` is even (so tile (0, 0) does).
    """
    if len(tiles) != 2 or min(tiles) < 1:
        raise ValueError(f"--tiles: need a positive tile count per axis, got {tuple(tiles)}")
    if any(t > n for t, n in zip(tiles, shape)):
        raise ValueError(f"--tiles: {tuple(tiles)} tiles do not fit a slice of {tuple(shape)} pixels")
    t0 = (np.arange(shape[0]) * tiles[0]) // shape[0]
    t1 = (np.arange(shape[1]) * tiles[1]) // shape[1]
    return (t0[:, None] + t1[None, :]) % 2 == 0


def checkerboard(first2d: np.ndarray, second2d: np.ndarray, tiles=(8, 8)) -> np.ndarray:
    """Checkerboard of two equal-shape slices: ``first2d`` on even tiles, ``second2d`` on odd ones."""
    if first2d.shape != second2d.shape:
        raise ValueError(f"checkerboard: slice shapes differ, {first2d.shape} vs {second2d.shape}")
    tiles = (int(tiles), int(tiles)) if np.isscalar(tiles) else tuple(int(t) for t in tiles)
    return np.where(checkerboard_mask(first2d.shape, tiles), first2d, second2d)


def _prepare(fixed, warped, moving, spacing, axis, index, what):
    """Validated shapes, slicing axis and index, and the (label, other image) panels to draw."""
    for name, other in (("--warped", warped), ("--moving", moving)):
        if other is not None and other.shape != fixed.shape:
            raise ValueError(
                f"{what}: {name} image has shape {other.shape} but --fixed has {fixed.shape}; "
                "both must be on the fixed grid (warp the moving image first)"
            )
    if fixed.ndim not in (2, 3):
        raise ValueError(f"{what}: images must be 2-D or 3-D, got shape {fixed.shape}")
    spacing = tuple(spacing) if spacing is not None else (1.0,) * fixed.ndim
    axis = sl.check_axis(axis, fixed.ndim)
    if fixed.ndim == 3:
        index = sl.middle_index(fixed.shape[axis]) if index is None else sl.check_index(index, fixed.shape[axis])
    else:
        index = 0
    panels = [("moving (before)", moving)] if moving is not None else []
    panels.append(("warped (after)", warped))
    return spacing, axis, index, panels


def _figure_for(panels, fixed, spacing, axis, dpi, figsize, extra_h=0.0):
    w, h = sl.panel_size(fixed.shape, spacing, axis, width=3.2)
    if figsize is None:
        figsize = (0.3 + w * len(panels), 0.8 + h + extra_h)
    return new_figure(figsize, dpi)


def plot_overlay(
    fixed: np.ndarray,
    warped: np.ndarray,
    out: str,
    moving: Optional[np.ndarray] = None,
    spacing: Optional[Sequence[float]] = None,
    axis: int = 2,
    index: Optional[int] = None,
    style: str = "channels",
    alpha: float = 0.5,
    dpi: int = 100,
    title: Optional[str] = None,
    figsize: Optional[Sequence[float]] = None,
) -> str:
    """Write a PNG of the fixed image overlaid with the warped image (and with the moving image first).

    Args:
        fixed, warped, moving: scalar images ``(i, j[, k])`` on the same grid (``moving`` optional).
        out: PNG path.
        spacing: voxel size of the fixed grid in mm (physical aspect).
        axis, index: the slice (default: middle slice along ``axis``).
        style, alpha: see :func:`overlay_rgb`.
        dpi, figsize: resolution and size in inches (PNG is ``figsize * dpi`` pixels).
        title: figure title (default names the slice).

    Returns:
        ``out``.
    """
    spacing, axis, index, panels = _prepare(fixed, warped, moving, spacing, axis, index, "overlay")
    fig = _figure_for(panels, fixed, spacing, axis, dpi, figsize, extra_h=0.25)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    f = sl.normalise(sl.take_slice(fixed, axis, index), sl.intensity_limits(fixed))
    for ax, (label, other) in zip(axes, panels):
        o = sl.normalise(sl.take_slice(other, axis, index), sl.intensity_limits(other))
        sl.show_slice(ax, overlay_rgb(f, o, style, alpha), sl.pixel_aspect(spacing, axis))
        ax.set_title(f"fixed + {label}", fontsize=9)
    caption = (
        CHANNELS_LEGEND.replace("other", "moving/warped")
        if style == "channels"
        else (f"fixed in grey, moving/warped in colour (opacity {alpha:g} x intensity)")
    )
    fig.supxlabel(caption, fontsize=8)
    fig.suptitle(title or _slice_title("overlay", fixed.ndim, axis, index), fontsize=10)
    return save_figure(fig, out, dpi)


def plot_checkerboard(
    fixed: np.ndarray,
    warped: np.ndarray,
    out: str,
    moving: Optional[np.ndarray] = None,
    spacing: Optional[Sequence[float]] = None,
    axis: int = 2,
    index: Optional[int] = None,
    tiles=(8, 8),
    dpi: int = 100,
    title: Optional[str] = None,
    figsize: Optional[Sequence[float]] = None,
) -> str:
    """Write a PNG checkerboard of the fixed image against the warped image (and the moving image first).

    The fixed image fills the even tiles, tile (0, 0) (drawn bottom-left) included; see
    :func:`checkerboard_mask`.

    Args:
        tiles: tile count per in-plane axis ``(n_a, n_b)`` or one number for both.
        Other arguments as :func:`plot_overlay`.

    Returns:
        ``out``.
    """
    spacing, axis, index, panels = _prepare(fixed, warped, moving, spacing, axis, index, "checkerboard")
    tiles = (int(tiles), int(tiles)) if np.isscalar(tiles) else tuple(int(t) for t in tiles)
    fig = _figure_for(panels, fixed, spacing, axis, dpi, figsize)
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    f = sl.normalise(sl.take_slice(fixed, axis, index), sl.intensity_limits(fixed))
    for ax, (label, other) in zip(axes, panels):
        o = sl.normalise(sl.take_slice(other, axis, index), sl.intensity_limits(other))
        sl.show_slice(ax, checkerboard(f, o, tiles), sl.pixel_aspect(spacing, axis), vmin=0.0, vmax=1.0)
        ax.set_title(f"fixed | {label}", fontsize=9)
    fig.suptitle(title or _slice_title(f"checkerboard {tiles[0]}x{tiles[1]}", fixed.ndim, axis, index), fontsize=10)
    return save_figure(fig, out, dpi)


def _slice_title(what: str, ndim: int, axis: int, index: int) -> str:
    return what if ndim == 2 else f"{what}, axis {axis}, slice {index}"


__all__ = ["STYLES", "checkerboard", "checkerboard_mask", "overlay_rgb", "plot_checkerboard", "plot_overlay"]
