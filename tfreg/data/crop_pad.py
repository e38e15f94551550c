"""Cropping a fixed-size box out of an ``(i, j[, k])`` array, zero-padding where the box leaves the grid.

A box is given by its start index (which may be negative, or run past the far edge, where the field of
view is smaller than the box) and its size in voxels. The cropped array's geometry keeps every voxel's
physical position: its origin is the physical position of the box's first voxel,
``origin + direction @ (spacing * start)``, with the same spacing and direction.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np

from tfreg.data.geometry import ImageGeometry


@dataclass(frozen=True)
class CropBox:
    """A box of ``size`` voxels starting at index ``start`` (both ``(ndim,)`` integer tuples)."""

    start: Tuple[int, ...]
    size: Tuple[int, ...]

    @property
    def stop(self) -> Tuple[int, ...]:
        """One past the last index of the box, per axis."""
        return tuple(s + n for s, n in zip(self.start, self.size))

    def padding(self, shape: Sequence[int]) -> Tuple[Tuple[int, int], ...]:
        """Per axis, the voxels of the box before index 0 and after ``shape`` (zero-padded)."""
        return tuple((max(0, -s), max(0, e - n)) for s, e, n in zip(self.start, self.stop, shape))

    def geometry(self, geometry: ImageGeometry) -> ImageGeometry:
        """The geometry of the cropped array: origin at the box's first voxel, spacing and direction kept."""
        shift = geometry.direction @ (np.asarray(geometry.spacing) * np.asarray(self.start, dtype=np.float64))
        return ImageGeometry(geometry.spacing, np.asarray(geometry.origin) + shift, geometry.direction)

    def to_dict(self, shape: Sequence[int], geometry: ImageGeometry) -> Dict[str, object]:
        """JSON-ready description on the grid of ``shape`` voxels and ``geometry`` the box was taken from."""
        centre = np.asarray(self.start, dtype=np.float64) + (np.asarray(self.size) - 1) / 2.0
        centre_mm = geometry.index_to_physical() @ np.append(centre, 1.0)
        return {
            "start_index": list(self.start),
            "stop_index": list(self.stop),
            "size": list(self.size),
            "grid_shape": list(int(n) for n in shape),
            "padding": [list(p) for p in self.padding(shape)],
            "centre_index": centre.tolist(),
            "centre_mm": centre_mm[:-1].tolist(),
            "origin_mm": list(self.geometry(geometry).origin),
        }


def check_crop_size(crop_size, ndim: int, name: str = "crop_size") -> Tuple[int, ...]:
    """``crop_size`` as ``ndim`` positive integers (voxels), or ValueError naming ``name``."""
    values = list(crop_size) if not np.isscalar(crop_size) else [crop_size]
    ok = len(values) == ndim and all(
        not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, np.integer)) and v >= 1 for v in values
    )
    if not ok:
        raise ValueError(f"{name} must be {ndim} positive integers (voxels), one per image axis; got {crop_size!r}")
    return tuple(int(v) for v in values)


def label_centroid(label: np.ndarray, values: Sequence[int]) -> Optional[np.ndarray]:
    """Mean index ``(ndim,)`` of the voxels of ``label`` holding one of ``values``; None when there are none."""
    indices = np.argwhere(np.isin(label, np.asarray(list(values))))
    if not len(indices):
        return None
    return indices.mean(axis=0)


def centred_box(shape: Sequence[int], size: Sequence[int], centre: Optional[Sequence[float]] = None) -> CropBox:
    """The box of ``size`` voxels whose centre is nearest to ``centre`` (index units).

    The centre of a box starting at ``s`` is ``s + (size - 1) / 2``; the start is rounded half up, so the
    box's centre lies within half a voxel of ``centre``. ``centre`` None is the grid's centre
    ``(shape - 1) / 2``.
    """
    shape = np.asarray(shape, dtype=np.float64)
    size_f = np.asarray(size, dtype=np.float64)
    centre = (shape - 1.0) / 2.0 if centre is None else np.asarray(centre, dtype=np.float64)
    start = tuple(int(math.floor(c - (n - 1.0) / 2.0 + 0.5)) for c, n in zip(centre, size_f))
    return CropBox(start=start, size=tuple(int(n) for n in size))


def crop_or_pad(array: np.ndarray, box: CropBox, fill: float = 0) -> np.ndarray:
    """``array[box]`` on its first ``len(box.size)`` axes, with ``fill`` where the box leaves the array.

    Args:
        array: ``(*spatial, ...)``: trailing axes beyond the box's are kept whole.
        box: the box, in indices of ``array``'s spatial axes.
        fill: value of the padded voxels.

    Returns:
        ``(*box.size, ...)`` array of ``array``'s dtype.
    """
    ndim = len(box.size)
    out = np.full(tuple(box.size) + array.shape[ndim:], fill, dtype=array.dtype)
    source, target = [], []
    for start, size, n in zip(box.start, box.size, array.shape[:ndim]):
        lo, hi = max(start, 0), min(start + size, n)
        if hi <= lo:  # the box misses the array on this axis: all padding
            return out
        source.append(slice(lo, hi))
        target.append(slice(lo - start, hi - start))
    out[tuple(target)] = array[tuple(source)]
    return out


__all__ = ["CropBox", "check_crop_size", "label_centroid", "centred_box", "crop_or_pad"]
