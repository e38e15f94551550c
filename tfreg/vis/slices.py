"""Choosing slices and drawing them in their physical aspect ratio.

A slice of a 3-D volume along ``axis`` at ``index`` is the 2-D array over the two other axes ``(a, b)``,
``a < b``; a 2-D image is its own (only) slice. Slices are drawn with ``a`` to the right and ``b``
upwards, each pixel ``spacing[a]`` wide and ``spacing[b]`` high (mm), so anisotropic voxels look right.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np


def parse_int_list(text: Optional[str], what: str) -> Optional[list]:
    """``"3, 5,7"`` -> ``[3, 5, 7]``; None or ``""`` -> None. ValueError naming ``what`` on anything else."""
    if text is None or not str(text).strip():
        return None
    try:
        return [int(part) for part in str(text).split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"{what}: expected comma-separated integers, got {text!r}") from None


def check_axis(axis: int, ndim: int) -> int:
    """The slicing axis of an ``ndim``-D volume (negative counts from the end); 2-D volumes ignore it."""
    if ndim == 2:
        return 2
    if not -ndim <= axis < ndim:
        raise ValueError(f"--axis: must be in 0..{ndim - 1} for a {ndim}-D volume, got {axis}")
    return axis % ndim


def in_plane_axes(ndim: int, axis: int) -> Tuple[int, int]:
    """The two array axes ``(a, b)`` spanning a slice along ``axis`` (``(0, 1)`` for 2-D volumes)."""
    if ndim == 2:
        return 0, 1
    a, b = (d for d in range(3) if d != axis)
    return a, b


def check_index(index: int, size: int, what: str = "--slice") -> int:
    """``index`` as a non-negative slice index of an axis of ``size`` (Python-style negatives allowed)."""
    index = int(index)
    if not -size <= index < size:
        raise ValueError(f"{what}: slice index {index} is out of range for an axis of {size} slices (0..{size - 1})")
    return index % size


def take_slice(volume: np.ndarray, axis: int, index: int, spatial_ndim: Optional[int] = None) -> np.ndarray:
    """2-D slice ``(n_a, n_b[, ...])`` of a 3-D volume; a 2-D volume is returned as it is.

    Args:
        volume: ``(i, j, k[, ...])`` or ``(i, j[, ...])``; trailing non-spatial axes (DDF components,
            label channels) are kept.
        axis: slicing axis (0, 1, 2); ignored for 2-D volumes.
        index: slice index along ``axis``.
        spatial_ndim: number of spatial axes (default ``volume.ndim``, i.e. no trailing axes).
    """
    spatial_ndim = volume.ndim if spatial_ndim is None else spatial_ndim
    if spatial_ndim == 2:
        return volume
    return np.take(volume, index, axis=axis)


def middle_index(size: int) -> int:
    """The central slice, ``size // 2``."""
    return size // 2


def evenly_spaced(size: int, count: int, start: int = 0, stop: Optional[int] = None) -> list:
    """``count`` distinct slice indices spread over ``[start, stop)`` without touching its ends.

    Index ``m`` (0-based) is ``start + floor((m + 1) * n / (count + 1))`` with ``n = stop - start``, so
    5 slices of 60 are 10, 20, 30, 40, 50. Fewer indices come back when the range is shorter than
    ``count``.
    """
    stop = size if stop is None else stop
    n = stop - start
    if n <= 0:
        raise ValueError(f"empty slice range [{start}, {stop})")
    if count < 1:
        raise ValueError(f"--num-slices: must be >= 1, got {count}")
    picks = [start + ((m + 1) * n) // (count + 1) for m in range(count)]
    return sorted(set(min(p, stop - 1) for p in picks))


def foreground_range(volume: np.ndarray, axis: int) -> Tuple[int, int]:
    """``[first, last + 1)`` of the slices along ``axis`` holding any voxel above the volume's minimum.

    The whole axis when the volume is constant. Used to spread montage slices over the object rather
    than over empty background.
    """
    other = tuple(d for d in range(volume.ndim) if d != axis)
    occupied = np.flatnonzero(np.any(volume > volume.min(), axis=other))
    if occupied.size == 0:
        return 0, volume.shape[axis]
    return int(occupied[0]), int(occupied[-1]) + 1


def largest_area_index(mask: np.ndarray, axis: int) -> int:
    """Slice along ``axis`` with the most foreground voxels of ``mask`` (``(*spatial[, n])``); middle if empty."""
    m = mask if mask.ndim == 3 else np.any(mask, axis=-1)
    counts = np.count_nonzero(m, axis=tuple(d for d in range(3) if d != axis))
    return int(np.argmax(counts)) if counts.max() > 0 else middle_index(m.shape[axis])


def random_indices(size: int, count: int = 1, rng: Optional[np.random.Generator] = None) -> list:
    """``count`` random slice indices in ``[0, size)`` (DeepReg's default for ``--slice-inds``)."""
    rng = np.random.default_rng() if rng is None else rng
    return [int(i) for i in rng.integers(0, size, size=count)]


def pixel_aspect(spacing: Sequence[float], axis: int) -> float:
    """Height / width of one displayed pixel: ``spacing[b] / spacing[a]`` for the in-plane axes ``(a, b)``."""
    a, b = in_plane_axes(len(spacing), axis)
    return float(spacing[b]) / float(spacing[a])


def slice_extent_mm(shape: Sequence[int], spacing: Sequence[float], axis: int) -> Tuple[float, float]:
    """Physical ``(width, height)`` of a slice in mm: ``(n_a * spacing[a], n_b * spacing[b])``."""
    a, b = in_plane_axes(len(spacing), axis)
    return shape[a] * float(spacing[a]), shape[b] * float(spacing[b])


def panel_size(shape: Sequence[int], spacing: Sequence[float], axis: int, width: float = 2.4) -> Tuple[float, float]:
    """``(width, height)`` in inches of a panel showing a slice at its physical aspect ratio.

    ``width`` is the size of the longer side; the shorter one follows the slice's mm extent (at least a
    fifth of it, so very thin slices stay visible).
    """
    w_mm, h_mm = slice_extent_mm(shape, spacing, axis)
    if w_mm >= h_mm:
        return width, max(width * h_mm / w_mm, width / 5)
    return max(width * w_mm / h_mm, width / 5), width


def intensity_limits(volume: np.ndarray, low: float = 0.5, high: float = 99.5) -> Tuple[float, float]:
    """Display window ``(vmin, vmax)`` from percentiles of the whole volume, so every slice shares it.

    Percentiles rather than min/max keep a few hot voxels from washing the image out; a constant volume
    gets a unit window around its value.
    """
    vmin, vmax = (float(v) for v in np.percentile(volume, [low, high]))
    if vmax <= vmin:
        vmin, vmax = float(volume.min()), float(volume.max())
    if vmax <= vmin:
        vmin, vmax = vmin - 0.5, vmin + 0.5
    return vmin, vmax


def normalise(volume: np.ndarray, limits: Optional[Tuple[float, float]] = None) -> np.ndarray:
    """``volume`` mapped to [0, 1] through the display window (``intensity_limits`` by default), clipped."""
    vmin, vmax = intensity_limits(volume) if limits is None else limits
    return np.clip((np.asarray(volume, dtype=np.float64) - vmin) / (vmax - vmin), 0.0, 1.0)


def show_slice(ax, slice2d: np.ndarray, aspect: float = 1.0, **kwargs):
    """Draw ``slice2d`` (``(n_a, n_b)`` or ``(n_a, n_b, 3|4)`` RGB(A)) with ``a`` right and ``b`` up.

    Voxel ``(p, q)`` is centred at plot coordinates ``(p, q)``, so contours and lines can be drawn in
    voxel coordinates on top. Axis ticks are removed. Returns the ``AxesImage``.
    """
    data = np.swapaxes(slice2d, 0, 1)
    kwargs.setdefault("cmap", "gray")
    kwargs.setdefault("interpolation", "nearest")
    image = ax.imshow(data, origin="lower", aspect=aspect, **kwargs)
    ax.set_xticks([])
    ax.set_yticks([])
    return image


__all__ = [
    "check_axis",
    "check_index",
    "evenly_spaced",
    "foreground_range",
    "in_plane_axes",
    "intensity_limits",
    "largest_area_index",
    "middle_index",
    "normalise",
    "panel_size",
    "parse_int_list",
    "pixel_aspect",
    "random_indices",
    "show_slice",
    "slice_extent_mm",
    "take_slice",
]
