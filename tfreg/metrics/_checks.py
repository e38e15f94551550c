"""Input validation shared by the metric modules (private).

Every public metric funnels its arguments through these helpers so that bad input fails the same way
everywhere: a ``ValueError`` that names the function, the argument and the offending shape or value.
Empty foreground is not an error: the metrics that cannot be defined on it warn with
:class:`EmptyMaskWarning` and return NaN.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from tfreg.label_threshold import binarise


class EmptyMaskWarning(RuntimeWarning):
    """A mask given to a metric has no foreground voxels, so the metric is NaN."""


def as_array(x, name: str, func: str, dtype=np.float64) -> np.ndarray:
    """``x`` as a NumPy array of ``dtype`` (bools stay bool), rejecting NaN and infinities."""
    arr = np.asarray(x)
    if arr.dtype == object:
        raise ValueError(f"{func}: {name} must be a numeric array, got an object array")
    if arr.dtype != bool:
        arr = arr.astype(dtype, copy=False)
        if not np.all(np.isfinite(arr)):
            bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
            raise ValueError(f"{func}: {name} contains {bad} non-finite value(s) (NaN or inf)")
    return arr


def as_mask(x, name: str, func: str) -> np.ndarray:
    """A boolean foreground mask: bool arrays as they are, numeric arrays binarised at ``>= 0.5``
    (:func:`tfreg.label_threshold.binarise`)."""
    arr = as_array(x, name, func)
    if arr.ndim == 0:
        raise ValueError(f"{func}: {name} must be an image array, got a scalar")
    return binarise(arr)


def check_same_shape(a: np.ndarray, b: np.ndarray, func: str, names: tuple[str, str] = ("a", "b")) -> None:
    """Raise a ``ValueError`` naming both shapes when they differ."""
    if a.shape != b.shape:
        raise ValueError(
            f"{func}: {names[0]} has shape {tuple(a.shape)} but {names[1]} has shape {tuple(b.shape)}; "
            "they must be equal"
        )


def as_spacing(spacing, ndim: int, func: str) -> np.ndarray:
    """Voxel spacing as a float array of length ``ndim`` (mm per voxel along each array axis).

    ``None`` means 1.0 on every axis, a scalar is used on every axis; a sequence must have one positive,
    finite entry per spatial axis.
    """
    if spacing is None:
        return np.ones(ndim)
    sp = np.asarray(spacing, dtype=np.float64)
    if sp.ndim == 0:
        sp = np.full(ndim, float(sp))
    if sp.shape != (ndim,):
        raise ValueError(
            f"{func}: spacing {tuple(np.ravel(spacing).tolist())} has {sp.size} entries but the "
            f"arrays have {ndim} spatial axes"
        )
    if not np.all(np.isfinite(sp)) or np.any(sp <= 0):
        raise ValueError(f"{func}: spacing must be finite and positive, got {tuple(sp.tolist())}")
    return sp


def warn_empty(func: str, which: Sequence[str]) -> None:
    """Warn that the named inputs have no foreground (the caller returns NaN)."""
    names = " and ".join(which)
    verb = "have" if len(which) > 1 else "has"
    warnings.warn(f"{func}: {names} {verb} no foreground voxels; returning NaN", EmptyMaskWarning, stacklevel=3)
