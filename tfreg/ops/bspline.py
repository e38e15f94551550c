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

``offset`` (voxels) shifts every control point to ``(k - 1) * s + offset``. DeepReg's B-spline head
(a transposed convolution whose filter samples each control cell at the voxel centres ``(j + 0.5) / s``,
then crops ``3 s`` voxels) is the case ``offset = -0.5``: its voxel ``x`` lies at control coordinate
``(x + 0.5) / s + 1``. Both offsets keep every voxel inside the support of the ``ceil(d / s) + 3`` points.

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


def check_spacing(
    spacing: Union[float, Sequence[float]], ndim: int, name: str = "control-point spacing"
) -> Tuple[float, ...]:
    """``spacing`` (one positive number, or one per spatial axis) as ``ndim`` floats, voxels.

    Raises:
        ValueError: naming ``name``, for anything else (booleans, strings, zero, negative, non-finite numbers,
            or a list of another length).
    """
    values = [spacing] * ndim if not isinstance(spacing, (list, tuple)) else list(spacing)
    ok = len(values) == ndim and all(
        not isinstance(v, bool) and isinstance(v, (int, float, np.integer, np.floating)) and math.isfinite(v) and v > 0
        for v in values
    )
    if not ok:
        raise ValueError(
            f"{name} must be a positive number or {ndim} positive numbers (voxels, one per spatial axis), got "
            f"{spacing!r}"
        )
    return tuple(float(v) for v in values)


def control_grid_shape(shape: Sequence[int], spacing: Union[float, Sequence[float]]) -> Tuple[int, ...]:
    """Number of control points per axis, ``ceil(d / s) + 3``, for an image ``shape`` and ``spacing`` (voxels)."""
    shape = _check_shape(shape)
    spacing = check_spacing(spacing, len(shape))
    return tuple(int(math.ceil(d / s)) + 3 for d, s in zip(shape, spacing))


def _check_offset(offset: float) -> float:
    if isinstance(offset, bool) or not isinstance(offset, (int, float)) or not -1.0 < offset <= 0.0:
        # beyond these bounds the first or last voxel leaves the support of the ceil(d / s) + 3 points
        raise ValueError(f"control-point offset must be a number in (-1, 0] (voxels), got {offset!r}")
    return float(offset)


def bspline_weights(size: int, spacing: float, offset: float = 0.0) -> np.ndarray:
    """``(size, n)`` float32 matrix ``W[x, k] = beta3((x - offset) / spacing - (k - 1))`` for one axis, ``n =
    ceil(size / spacing) + 3`` (control point ``k`` at voxel ``(k - 1) * spacing + offset``). Every row sums to
    1 (partition of unity), so a constant control grid gives that constant."""
    n = int(math.ceil(size / spacing)) + 3
    offset = _check_offset(offset)
    x = (np.arange(size, dtype=np.float64)[:, None] - offset) / spacing
    k = np.arange(n, dtype=np.float64)[None, :] - 1.0
    return cubic_bspline(x - k).astype(np.float32)


def bspline_field(control, shape: Sequence[int], spacing: Union[float, Sequence[float]], offset: float = 0.0):
    """Evaluate a cubic B-spline field on a voxel grid.

    Args:
        control: ``(B, *n, C)`` control-point values (any unit, e.g. voxels of displacement), with
            ``n = control_grid_shape(shape, spacing)``.
        shape: the output grid ``(d0, d1[, d2])``, voxels.
        spacing: control-point spacing in voxels, one number or one per axis, > 0.
        offset: control point ``k`` sits at voxel ``(k - 1) * spacing + offset``, in (-1, 0]; 0 by default,
            -0.5 for DeepReg's ``control_points`` head (module docstring).

    Returns:
        ``(B, *shape, C)``, same dtype as ``control``: the field at every voxel (module docstring).

    Raises:
        ValueError: ``control``'s grid is not ``control_grid_shape(shape, spacing)``.
    """
    shape = _check_shape(shape)
    ndim = len(shape)
    spacing = check_spacing(spacing, ndim)
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
        weights = ops.convert_to_tensor(bspline_weights(shape[axis], spacing[axis], offset), dtype=control.dtype)
        # contract axis (axis + 1) of out with W's axis 1, then move the new axis back into place
        out = ops.tensordot(out, weights, axes=[[axis + 1], [1]])  # (..., d_axis) at the end
        order = list(range(len(out.shape)))
        last = order.pop()
        order.insert(axis + 1, last)
        out = ops.transpose(out, order)
    return out


__all__ = ["cubic_bspline", "check_spacing", "control_grid_shape", "bspline_weights", "bspline_field"]
