"""Linear intensity mapping of two percentiles of an image to [0, 1], clipped.

van Ulsen's thesis ("Multi-modal deep learning based 3D image registration for osseous anatomies") maps
the 1st and 99th intensity percentiles of every CT and MR image to 0 and 1. Voxels that are NaN (outside
the field of view, see :mod:`tfreg.data.pair_preprocessing`) are left out of the percentiles and become 0.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np


def check_percentiles(percentiles, name: str = "percentiles") -> Optional[Tuple[float, float]]:
    """``(low, high)`` with ``0 <= low < high <= 100``, or None (no rescaling); ValueError naming ``name``."""
    if percentiles is None:
        return None
    values = list(percentiles) if not np.isscalar(percentiles) else [percentiles]
    ok = len(values) == 2 and all(
        not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, float, np.number)) and np.isfinite(v)
        for v in values
    )
    if not ok or not 0 <= values[0] < values[1] <= 100:
        raise ValueError(f"{name} must be two numbers low < high in [0, 100] (percent), got {percentiles!r}")
    return float(values[0]), float(values[1])


def percentile_rescale(
    array: np.ndarray, percentiles: Sequence[float] = (1.0, 99.0)
) -> Tuple[np.ndarray, float, float]:
    """``(array - p_low) / (p_high - p_low)`` clipped to [0, 1], as float32; NaN voxels become 0.

    Args:
        array: an image of any shape (``(i, j[, k])``); NaN marks voxels outside the field of view.
        percentiles: ``(low, high)`` in percent.

    Returns:
        ``(rescaled, value_low, value_high)``: the percentile intensities are returned for the record. An
        image whose two percentiles are equal (constant inside the field of view) becomes all zeros; an
        image without a finite voxel too (both values NaN then).
    """
    low, high = check_percentiles(percentiles)
    array = np.asarray(array, dtype=np.float64)
    valid = np.isfinite(array)
    if not valid.any():
        return np.zeros(array.shape, dtype=np.float32), float("nan"), float("nan")
    value_low, value_high = np.percentile(array[valid], [low, high])
    out = np.zeros(array.shape, dtype=np.float32)
    if value_high > value_low:
        out[valid] = np.clip((array[valid] - value_low) / (value_high - value_low), 0.0, 1.0)
    return out, float(value_low), float(value_high)


__all__ = ["check_percentiles", "percentile_rescale"]
