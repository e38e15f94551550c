"""Cubic B-spline fields from control-point grids (``keras.ops`` only), 2-D and 3-D.

A field on a grid of ``d`` voxels per axis is described by control points spaced ``s`` voxels apart
(the *control-point spacing*). Along one axis there are ``n = ceil(d / s) + 3`` control points; control
point ``k`` sits at voxel position ``(k - 1) * s``, so the first lies one spacing before voxel 0 and the
grid extends past the last voxel, which every cubic B-spline needs (each voxel is influenced by the 4
control points around it). The value at voxel ``x`` is, per axis,

    u(x) = sum_k c_k * beta3(x / s - (k - 1))

with the uniform cubic B-spline ``beta3(t) = 2/3 - t^2 + |t|^3 / 2`` for ``|t| < 1``, ``(2 - |t|)^3 / 6``
for ``1 <= |t| < 2``, and 0 beyond; in 2-D and 3-D the basis is the tensor product of the axes' bases.
This is the free-form deformation of Rueckert et al., "Nonrigid registration using free-form
deformations: application to breast MR images" (1999), and DeepReg's ``control_points`` layout
(``ceil(d / s) + 3`` control points per axis).

Evaluation multiplies the control grid by one small dense ``(d, n)`` matrix per axis, which is exact for
any spacing (integer or not), differentiable, and cheap: ``d * n`` weights per axis.
"""

import math
from typing import Sequence, Tuple, Union

import numpy as np
from keras import ops

from tfreg.ops.grid import _check_shape


def cubic_bspline(t: np.ndarray) -> np.ndarray:
    """The uniform cubic B-spline ``beta3(t)`` (support ``|t| < 2``, integral 1), float64 NumPy."""
    a = np.abs(np.asarray(t, dtype=np.float64))
    inner = 2.0 / 3.0 - a**2 + 0.5 * a**3
    outer = (2.0 - a) ** 3 / 6.0
    return np.where(a < 1.0, inner, np.where(a < 2.0, outer, 0.0))


def _check_spacing(spacing: Union[float, Sequence[float]], ndim: int) -> Tuple[float, ...]:
    values = (spacing,) * ndim if isinstance(spacing, (int, float)) and not isinstance(spacing, bool) else spacing
    try:
        values = tuple(float(v) for v in values)
    except TypeError:
        raise ValueError(
            f"control-point spacing must be a number or {ndim} numbers (voxels), got {spacing!r}"
        ) from None
    if len(values) != ndim or not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"control-point spacing must be {ndim} positive numbers (voxels), got {spacing!r}")
    return values


def control_grid_shape(shape: Sequence[int], spacing: Union[float, Sequence[float]]) -> Tuple[int, ...]:
    """Number of control points per axis, ``ceil(d / s) + 3``, for an image ``shape`` and ``spacing`` (voxels)."""
    shape = _check_shape(shape)
    spacing = _check_spacing(spacing, len(shape))
    return tuple(int(math.ceil(d / s)) + 3 for d, s in zip(shape, spacing))


def bspline_weights(size: int, spacing: float) -> np.ndarray:
    """``(size, n)`` float32 matrix ``W[x, k] = beta3(x / spacing - (k - 1))`` for one axis, ``n = ceil(size /
    spacing) + 3``. Every row sums to 1 (partition of unity), so a constant control grid gives that constant."""
    n = int(math.ceil(size / spacing)) + 3
    x = np.arange(size, dtype=np.float64)[:, None] / spacing
    k = np.arange(n, dtype=np.float64)[None, :] - 1.0
    return cubic_bspline(x - k).astype(np.float32)


def bspline_field(control, shape: Sequence[int], spacing: Union[float, Sequence[float]]):
    """Evaluate a cubic B-spline field on a voxel grid.

    Args:
        control: ``(B, *n, C)`` control-point values (any unit, e.g. voxels of displacement), with
            ``n = control_grid_shape(shape, spacing)``.
        shape: the output grid ``(d0, d1[, d2])``, voxels.
        spacing: control-point spacing in voxels, one number or one per axis, > 0.

    Returns:
        ``(B, *shape, C)``, same dtype as ``control``: the field at every voxel (module docstring).

    Raises:
        ValueError: ``control``'s grid is not ``control_grid_shape(shape, spacing)``.
    """
    shape = _check_shape(shape)
    ndim = len(shape)
    spacing = _check_spacing(spacing, ndim)
    want = control_grid_shape(shape, spacing)
    control = ops.convert_to_tensor(control)
    got = tuple(control.shape[1 : 1 + ndim])
    if len(control.shape) != ndim + 2 or got != want:
        raise ValueError(
            f"control points must be (batch, *{list(want)}, channels) for an image of shape {list(shape)} and "
            f"spacing {list(spacing)} (ceil(d / s) + 3 per axis), got shape {tuple(control.shape)}"
        )
    out = control
    for axis in range(ndim):
        weights = ops.convert_to_tensor(bspline_weights(shape[axis], spacing[axis]), dtype=control.dtype)
        # contract axis (axis + 1) of out with W's axis 1, then move the new axis back into place
        out = ops.tensordot(out, weights, axes=[[axis + 1], [1]])  # (..., d_axis) at the end
        order = list(range(len(out.shape)))
        last = order.pop()
        order.insert(axis + 1, last)
        out = ops.transpose(out, order)
    return out


__all__ = ["cubic_bspline", "control_grid_shape", "bspline_weights", "bspline_field"]
