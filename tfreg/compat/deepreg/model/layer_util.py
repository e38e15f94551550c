"""``deepreg.model.layer_util``: DeepReg's grid and resampling functions with DeepReg's argument names.

================================================  ====================================================
DeepReg                                           tfreg
================================================  ====================================================
``get_reference_grid(grid_size)``                 ``tfreg.ops.get_reference_grid(shape)``
``resample(vol, loc, interpolation, zero_boundary)``  ``tfreg.ops.resample(image, coords, interpolation, boundary)``
``warp_grid(grid, theta)``                        ``tfreg.ops.warp_grid(grid, theta)``
================================================  ====================================================

One value differs from DeepReg, on purpose: DeepReg's ``resample`` returned 0 at a coordinate of exactly 0
(its floor/ceil weights both vanish there); tfreg samples the image (docs/differences-to-deepreg.md).
"""

from typing import Sequence

from tfreg.ops.affine import warp_grid
from tfreg.ops.grid import get_reference_grid as _get_reference_grid
from tfreg.ops.warp import resample as _resample


def get_reference_grid(grid_size: Sequence[int]):
    """Voxel-index grid ``(*grid_size, ndim)``, ``grid[i, j, k] = (i, j, k)``, float32 (DeepReg's argument name).

    Args:
        grid_size: the spatial size, 3 (or 2) positive ints.
    """
    return _get_reference_grid(grid_size)


def resample(vol, loc, interpolation: str = "linear", zero_boundary: bool = True):
    """Sample ``vol`` at the voxel coordinates ``loc`` (DeepReg's argument names).

    Args:
        vol: ``(batch, *vol_shape)`` or ``(batch, *vol_shape, ch)``.
        loc: ``(batch, *loc_shape, ndim)`` voxel coordinates into ``vol``, ij(k) order.
        interpolation: ``"linear"`` (DeepReg's only choice) or ``"nearest"``.
        zero_boundary: True: 0 outside ``[0, d - 1]``; False: the edge value (coordinates clamped).

    Returns:
        ``(batch, *loc_shape)`` or ``(batch, *loc_shape, ch)``.
    """
    return _resample(vol, loc, interpolation=interpolation, boundary="zero" if zero_boundary else "replicate")


__all__ = ["get_reference_grid", "resample", "warp_grid"]
