"""DeepReg's ``deepreg_vis`` modes 0-3: slice GIFs, warp GIFs, tile plots and tiled GIFs.

File names and defaults are DeepReg's (``<stem>.gif``, ``<stem>_slice_<k>.gif``, ``visualisation.png``,
``visualisation.gif``; ``<stem>`` is the file name up to its first dot). Differences:

- GIFs are written by matplotlib's ``PillowWriter`` (no ffmpeg). Pillow stores a run of identical
  consecutive frames as one frame with the summed duration, so a GIF can hold fewer frames than slices
  or steps while playing for the same time.
- Warping is NumPy/SciPy: ``scipy.ndimage.map_coordinates`` (linear, 0 outside the image), the same
  values as tfreg's warping layer, no TensorFlow.
- Slices are drawn in grey at their physical aspect ratio (DeepReg stretched them to the window,
  in the default colour map) with ``i`` to the right and ``j`` upwards, like every tfreg figure.
- ``--col-titles`` labels the columns (DeepReg passed the unsplit string and titled column c with its
  c-th character).
- ``--slice-inds`` defaults to one random slice drawn from every index (DeepReg could draw -1).
- 2-D images work in modes 1 and 2 (one slice); modes 0 and 3 animate over slices and need 3-D.
"""

from __future__ import annotations

import os
from typing import List, Optional, Sequence, Tuple

import numpy as np
from matplotlib.animation import PillowWriter
from scipy.ndimage import map_coordinates

from tfreg.vis import io
from tfreg.vis import slices as sl
from tfreg.vis._figure import new_figure, save_figure

SLICE_AXIS = 2  # DeepReg slices along the last axis of (i, j, k) images


# ---------------------------------------------------------------------------------------------- numerics
def warp_slice(
    image: np.ndarray, ddf: np.ndarray, index: Optional[int] = None, t: float = 1.0, axis: int = SLICE_AXIS
) -> np.ndarray:
    """One slice of ``image`` warped by ``t * ddf``: ``image(x + t u(x))`` for the fixed voxels ``x`` of the slice.

    Args:
        image: moving image ``(*S_moving)``, 2-D or 3-D.
        ddf: ``(*S_fixed, ndim)`` displacement in voxels of ``image``, component c along axis c (ndim must
            equal ``image.ndim``; ``S_fixed`` may differ from ``S_moving``).
        index: slice of the fixed grid along ``axis`` (ignored for 2-D).
        t: fraction of the displacement applied (0: the image resampled on the fixed grid, 1: fully warped).
        axis: slicing axis.

    Returns:
        ``(n_a, n_b)`` float array; linear interpolation, 0 where ``x + t u`` leaves ``[0, n - 1]`` on an axis.
    """
    ndim = image.ndim
    if ddf.ndim != ndim + 1 or ddf.shape[-1] != ndim:
        raise ValueError(
            f"warp: the DDF must have shape (*spatial, {ndim}) for a {ndim}-D image (one component per "
            f"image axis), got {ddf.shape}"
        )
    if ndim == 3:
        plane = np.take(ddf, index, axis=axis)
        a, b = sl.in_plane_axes(3, axis)
        # fixed-grid positions of the slice's voxels: broadcastable (n_a, 1), (1, n_b), constant `index`
        base = {
            a: np.arange(ddf.shape[a], dtype=np.float64)[:, None],
            b: np.arange(ddf.shape[b], dtype=np.float64)[None, :],
            axis: np.float64(index),
        }
    else:
        plane = ddf
        base = {
            0: np.arange(ddf.shape[0], dtype=np.float64)[:, None],
            1: np.arange(ddf.shape[1], dtype=np.float64)[None, :],
        }
    coords = np.stack([base[c] + t * plane[..., c] for c in range(ndim)], axis=0)
    return map_coordinates(np.asarray(image, dtype=np.float64), coords, order=1, mode="constant", cval=0.0)


def warp_frames(
    image: np.ndarray, ddf: np.ndarray, index: Optional[int] = None, num_interval: int = 100, axis: int = SLICE_AXIS
) -> np.ndarray:
    """``(num_interval, n_a, n_b)`` frames of :func:`warp_slice` at ``t = linspace(0, 1, num_interval)``."""
    if num_interval < 2:
        raise ValueError(f"--num-interval: need at least 2 steps (t = 0 and t = 1), got {num_interval}")
    return np.stack([warp_slice(image, ddf, index, t, axis) for t in np.linspace(0.0, 1.0, num_interval)])


# ---------------------------------------------------------------------------------------------- GIF writing
def write_gif(
    frames: np.ndarray,
    out: str,
    interval: int = 50,
    spacing: Sequence[float] = (1.0, 1.0),
    labels: Optional[Sequence[str]] = None,
    dpi: int = 100,
    width: float = 3.2,
    limits: Optional[Tuple[float, float]] = None,
) -> str:
    """Write ``frames`` ``(T, n_a, n_b)`` as a looping grey GIF, ``interval`` ms per frame.

    Args:
        frames: the slices, ``a`` drawn to the right and ``b`` upwards.
        out: GIF path.
        interval: ms between frames.
        spacing: in-plane voxel size ``(s_a, s_b)`` in mm: the GIF has the slice's physical aspect.
        labels: optional text per frame, drawn in the top-left corner.
        dpi, width: the GIF's longer side is ``width * dpi`` pixels.
        limits: grey window (default: percentiles of all frames, shared so brightness does not flicker).

    Returns:
        ``out``.
    """
    frames = np.asarray(frames)
    if frames.ndim != 3 or len(frames) == 0:
        raise ValueError(f"write_gif: expected (frames, n_a, n_b), got shape {frames.shape}")
    if labels is not None and len(labels) != len(frames):
        raise ValueError(f"write_gif: {len(labels)} labels for {len(frames)} frames")
    spacing2 = (float(spacing[0]), float(spacing[1]), 1.0)  # a 3-D spacing sliced along the dummy axis 2
    fig = new_figure(sl.panel_size(frames.shape[1:] + (1,), spacing2, 2, width=width), dpi)
    fig.set_layout_engine("none")
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    vmin, vmax = sl.intensity_limits(frames) if limits is None else limits
    image = sl.show_slice(ax, frames[0], spacing2[1] / spacing2[0], vmin=vmin, vmax=vmax)
    ax.set_aspect("auto")  # the figure already has the slice's aspect; fill it exactly
    text = ax.text(0.02, 0.98, "", transform=ax.transAxes, color="yellow", fontsize=8, va="top")
    writer = _gif_writer(out, interval)
    with writer.saving(fig, str(out), dpi):
        for m, frame in enumerate(frames):
            image.set_data(np.swapaxes(frame, 0, 1))
            text.set_text(labels[m] if labels is not None else "")
            writer.grab_frame()
    return str(out)


def _gif_writer(out: str, interval: int) -> PillowWriter:
    """A GIF writer with ``interval`` ms per frame; creates ``out``'s folder."""
    if interval < 1:
        raise ValueError(f"--interval: must be >= 1 ms, got {interval}")
    folder = os.path.dirname(str(out))
    if folder:
        os.makedirs(folder, exist_ok=True)
    # PillowWriter stores int(1000 / fps) ms per frame; 1000 / (1000 / 30) is 29.999..., which would
    # become 29 ms (20 ms once GIF rounds down to centiseconds). A millionth of a ms keeps it at 30.
    return PillowWriter(fps=1000.0 / (interval + 1e-6))


def _in_plane_spacing(spacing: Sequence[float], axis: int = SLICE_AXIS) -> Tuple[float, float]:
    a, b = sl.in_plane_axes(len(spacing), axis)
    return float(spacing[a]), float(spacing[b])


def _choose_slices(slice_inds: Optional[Sequence[int]], size: int, rng) -> List[int]:
    if slice_inds is None:
        return sl.random_indices(size, 1, rng)
    return [sl.check_index(k, size, "--slice-inds") for k in slice_inds]


# ---------------------------------------------------------------------------------------------- the modes
def gif_slices(image_paths: Sequence[str], save_path: str = "", interval: int = 50, dpi: int = 100) -> List[str]:
    """Mode 0: for each 3-D image, a GIF ``<save_path>/<stem>.gif`` running through its slices along axis 2.

    Returns:
        the written paths, in the order of ``image_paths``.
    """
    written = []
    for path in image_paths:
        volume = io.read_volume(path, "--image-paths", ndims=(3,))
        frames = np.moveaxis(volume.array, SLICE_AXIS, 0)
        labels = [f"slice {k}" for k in range(len(frames))]
        out = os.path.join(save_path, volume.stem + ".gif")
        written.append(write_gif(frames, out, interval, _in_plane_spacing(volume.spacing), labels, dpi))
    return written


def gif_warp(
    image_paths: Sequence[str],
    ddf_path: str,
    save_path: str = "",
    slice_inds: Optional[Sequence[int]] = None,
    num_interval: int = 100,
    interval: int = 50,
    dpi: int = 100,
    rng=None,
) -> List[str]:
    """Mode 1: for each image and slice, a GIF of the image being warped by ``t * ddf``, t from 0 to 1.

    Files are ``<save_path>/<stem>_slice_<k>.gif`` (``<stem>_warp.gif`` for 2-D images). The DDF is
    ``(*S_fixed, ndim)`` in voxels of the images (which may be on another grid, as moving images are);
    slice indices refer to the DDF's grid. Default: one random slice.

    Returns:
        the written paths.
    """
    ddf = io.read_ddf(ddf_path, "--ddf-path")
    ndim = ddf.array.ndim - 1
    slice_inds = [None] if ndim == 2 else _choose_slices(slice_inds, ddf.array.shape[SLICE_AXIS], rng)
    written = []
    for path in image_paths:
        volume = io.read_volume(path, "--image-paths")
        if volume.array.ndim != ndim:
            raise ValueError(
                f"--ddf-path: {ddf_path} is a {ndim}-D field (shape {ddf.array.shape}) but image {path} is "
                f"{volume.array.ndim}-D (shape {volume.array.shape})"
            )
        limits = sl.intensity_limits(volume.array)
        for k in slice_inds:
            frames = warp_frames(volume.array, ddf.array, k, num_interval)
            labels = [f"t = {t:.2f}" for t in np.linspace(0.0, 1.0, num_interval)]
            name = f"{volume.stem}_warp.gif" if k is None else f"{volume.stem}_slice_{k}.gif"
            out = os.path.join(save_path, name)
            written.append(write_gif(frames, out, interval, _in_plane_spacing(ddf.spacing), labels, dpi, limits=limits))
    return written


def _parse_titles(col_titles, count: int) -> Optional[List[str]]:
    if col_titles is None:
        return None
    titles = [t.strip() for t in col_titles.split(",")] if isinstance(col_titles, str) else [str(t) for t in col_titles]
    if len(titles) != count:
        raise ValueError(f"--col-titles: got {len(titles)} title(s) {titles} for {count} image(s); give one per image")
    return titles


def tile_slices(
    image_paths: Sequence[str],
    save_path: str = "",
    fname: Optional[str] = None,
    slice_inds: Optional[Sequence[int]] = None,
    col_titles=None,
    dpi: int = 100,
    rng=None,
) -> str:
    """Mode 2: a PNG with one row per slice and one column per image (default ``visualisation.png``).

    Args:
        image_paths: 2-D or 3-D scalar images (shapes may differ; every slice index must fit each).
        save_path: output folder. fname: file name (with extension).
        slice_inds: slices along axis 2 (default: one random slice valid for every image).
        col_titles: comma-separated string or list, one title per image (default: file stems).
        dpi: resolution.

    Returns:
        the written path.
    """
    if not image_paths:
        raise ValueError("--image-paths: give at least one image")
    volumes = [io.read_volume(p, "--image-paths") for p in image_paths]
    titles = _parse_titles(col_titles, len(volumes)) or [v.stem for v in volumes]
    if any(v.array.ndim == 2 for v in volumes):
        if any(v.array.ndim == 3 for v in volumes):
            raise ValueError("--image-paths: images must be all 2-D or all 3-D")
        rows = [0]
    else:
        depth = min(v.array.shape[SLICE_AXIS] for v in volumes)
        rows = sl.random_indices(depth, 1, rng) if slice_inds is None else list(slice_inds)
        for v in volumes:
            for k in rows:
                sl.check_index(k, v.array.shape[SLICE_AXIS], f"--slice-inds (image {v.path})")
    panels = [sl.panel_size(v.array.shape, v.spacing, SLICE_AXIS, width=2.0) for v in volumes]
    figsize = (0.4 + sum(w for w, _ in panels), 0.35 + len(rows) * max(h for _, h in panels))
    fig = new_figure(figsize, dpi)
    grid = fig.add_gridspec(len(rows), len(volumes), width_ratios=[w for w, _ in panels])
    for c, (v, title) in enumerate(zip(volumes, titles)):
        window = sl.intensity_limits(v.array)
        for r, k in enumerate(rows):
            ax = fig.add_subplot(grid[r, c])
            sl.show_slice(
                ax,
                sl.take_slice(v.array, SLICE_AXIS, k),
                sl.pixel_aspect(v.spacing, SLICE_AXIS),
                vmin=window[0],
                vmax=window[1],
            )
            if r == 0:
                ax.set_title(title, fontsize=9)
            if c == 0 and v.array.ndim == 3:
                ax.set_ylabel(f"slice {k}", fontsize=9)
    out = os.path.join(save_path, fname or "visualisation.png")
    return save_figure(fig, out, dpi)


def parse_size(size) -> Tuple[int, int]:
    """``"2,3"`` or ``(2, 3)`` -> ``(2, 3)`` = (rows, columns) of tiles, both >= 1."""
    try:
        parts = [int(p) for p in size.split(",")] if isinstance(size, str) else [int(p) for p in size]
    except ValueError:
        raise ValueError(f"--size: expected 'rows,cols' (e.g. 2,2), got {size!r}") from None
    if len(parts) != 2 or min(parts) < 1:
        raise ValueError(f"--size: expected two positive integers 'rows,cols', got {size!r}")
    return parts[0], parts[1]


def gif_tile_slices(
    image_paths: Sequence[str],
    save_path: str = "",
    size=(2, 2),
    fname: Optional[str] = None,
    interval: int = 50,
    dpi: int = 100,
) -> str:
    """Mode 3: a GIF of ``size = (rows, cols)`` panels, one per 3-D image, running through slices together.

    DeepReg required exactly ``rows * cols`` images; fewer are accepted here (the remaining panels stay
    empty). Every image needs the same number of slices along axis 2. Default ``visualisation.gif``.

    Returns:
        the written path.
    """
    rows, cols = parse_size(size)
    if not image_paths:
        raise ValueError("--image-paths: give at least one image")
    if len(image_paths) > rows * cols:
        raise ValueError(f"--size: {rows}x{cols} holds {rows * cols} image(s) but {len(image_paths)} were given")
    volumes = [io.read_volume(p, "--image-paths", ndims=(3,)) for p in image_paths]
    depth = volumes[0].array.shape[SLICE_AXIS]
    for v in volumes[1:]:
        if v.array.shape[SLICE_AXIS] != depth:
            raise ValueError(
                f"--image-paths: {v.path} has {v.array.shape[SLICE_AXIS]} slices along axis 2 but "
                f"{volumes[0].path} has {depth}; mode 3 animates them together"
            )
    panel_w, panel_h = np.max([sl.panel_size(v.array.shape, v.spacing, SLICE_AXIS, width=2.0) for v in volumes], axis=0)
    fig = new_figure((cols * panel_w + 0.2, rows * (panel_h + 0.3) + 0.3), dpi)
    axes = fig.subplots(rows, cols, squeeze=False)
    shown = []
    for m, ax in enumerate(axes.ravel()):
        if m >= len(volumes):
            ax.set_axis_off()
            continue
        v = volumes[m]
        window = sl.intensity_limits(v.array)
        shown.append(
            sl.show_slice(ax, v.array[:, :, 0], sl.pixel_aspect(v.spacing, SLICE_AXIS), vmin=window[0], vmax=window[1])
        )
        ax.set_title(v.stem, fontsize=8)
    heading = fig.suptitle("slice 0", fontsize=9)
    out = os.path.join(save_path, fname or "visualisation.gif")
    writer = _gif_writer(out, interval)
    with writer.saving(fig, out, dpi):
        for k in range(depth):
            for image, v in zip(shown, volumes):
                image.set_data(np.swapaxes(v.array[:, :, k], 0, 1))
            heading.set_text(f"slice {k}")
            writer.grab_frame()
    return out


__all__ = [
    "SLICE_AXIS",
    "gif_slices",
    "gif_tile_slices",
    "gif_warp",
    "parse_size",
    "tile_slices",
    "warp_frames",
    "warp_slice",
]
