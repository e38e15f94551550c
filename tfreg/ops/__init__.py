"""tfreg.ops: pure tensor functions for registration, 2-D and 3-D, written with ``keras.ops`` only.

Grids, resampling and warping, resizing, DVF integration, DDF composition and inversion, affine grids,
finite differences, Jacobians, 1-D kernels and separable filters. Tensors are batch-first and channels-last; DDFs are
``(batch, *spatial, ndim)`` in voxels of the moving image, ij(k) order.
"""

from tfreg.ops.affine import affine_to_ddf, identity_affine, warp_grid
from tfreg.ops.differences import (
    central_difference,
    central_difference_cropped,
    forward_difference,
    forward_difference_cropped,
)
from tfreg.ops.filters import gaussian_smooth, laplacian, laplacian_of_gaussian, separable_filter
from tfreg.ops.grid import get_reference_grid
from tfreg.ops.integrate import integrate_dvf
from tfreg.ops.inverse import compose_ddf, invert_ddf
from tfreg.ops.jacobian import jacobian, jacobian_determinant
from tfreg.ops.kernels import (
    cauchy_kernel,
    gaussian_kernel,
    gaussian_kernel_sigma,
    rectangular_kernel,
    triangular_kernel,
)
from tfreg.ops.resize import resize
from tfreg.ops.warp import resample, warp

__all__ = [
    "affine_to_ddf",
    "identity_affine",
    "warp_grid",
    "central_difference",
    "central_difference_cropped",
    "forward_difference",
    "forward_difference_cropped",
    "gaussian_smooth",
    "laplacian",
    "laplacian_of_gaussian",
    "separable_filter",
    "get_reference_grid",
    "integrate_dvf",
    "compose_ddf",
    "invert_ddf",
    "jacobian",
    "jacobian_determinant",
    "cauchy_kernel",
    "gaussian_kernel",
    "gaussian_kernel_sigma",
    "rectangular_kernel",
    "triangular_kernel",
    "resize",
    "resample",
    "warp",
]
