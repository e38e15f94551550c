"""Affine transforms in DeepReg's convention (``keras.ops`` only).

An affine transform of ``ndim`` spatial dimensions is a ``(ndim + 1, ndim)`` matrix ``theta`` acting on
row vectors of homogeneous voxel-index coordinates, about voxel 0:

    new = [i, j, k, 1] @ theta        (2-D: [i, j, 1] @ theta)

so ``theta[:ndim]`` is the transposed linear part and ``theta[ndim]`` the translation, in voxels. The
identity is ``eye(ndim + 1, ndim)``. Applied to the fixed image's grid, ``new`` is where each fixed voxel
samples the moving image; ``new - grid`` is the corresponding DDF.

Products here are written as broadcast multiply-adds rather than ``matmul``: GPUs may run float32
``matmul`` in TF32 (10-bit mantissa), which would put errors of a tenth of a voxel on coordinates in the
hundreds.
"""

from keras import ops

from tfreg.checks import check_choice, check_positive_int
from tfreg.ops.grid import _check_shape, get_reference_grid


def _check_theta(theta, ndim=None):
    """``theta`` as a float tensor, ValueError unless ``(B, ndim + 1, ndim)``; returns ``(theta, ndim)``."""
    theta = ops.convert_to_tensor(theta)
    if "float" not in str(theta.dtype):
        theta = ops.cast(theta, "float32")
    shape = tuple(theta.shape)
    n = shape[-1] if len(shape) == 3 else None
    if n is None or shape[1] != n + 1 or (ndim is not None and n != ndim):
        want = f"(batch, {ndim + 1}, {ndim})" if ndim is not None else "(batch, ndim + 1, ndim)"
        raise ValueError(f"theta must be {want}, got shape {shape}")
    return theta, n


def identity_affine(batch_size: int, ndim: int = 3):
    """Identity transforms.

    Args:
        batch_size: number of transforms, int >= 1.
        ndim: number of spatial dimensions, 2 or 3.

    Returns:
        float32 ``(batch_size, ndim + 1, ndim)``, each ``eye(ndim + 1, ndim)``.
    """
    batch_size = check_positive_int(batch_size, "batch_size")
    check_choice(ndim, "ndim", (2, 3))
    eye = ops.eye(ndim + 1, ndim, dtype="float32")
    return ops.tile(ops.expand_dims(eye, 0), (batch_size, 1, 1))


def warp_grid(grid, theta):
    """Apply affine transforms to a grid of points.

    Args:
        grid: ``(*S, ndim)`` voxel coordinates, ij(k) order (e.g. a reference grid).
        theta: ``(B, ndim + 1, ndim)``, see the module docstring.

    Returns:
        ``(B, *S, ndim)``: ``[p, 1] @ theta[b]`` for every point ``p`` of ``grid``, voxels.
    """
    theta, ndim = _check_theta(theta)
    grid = ops.convert_to_tensor(grid)
    if grid.shape[-1] != ndim or len(grid.shape) < 2:
        raise ValueError(
            f"grid must be (*spatial, {ndim}) to match theta of shape {tuple(theta.shape)}, got shape "
            f"{tuple(grid.shape)}"
        )
    grid = ops.cast(ops.expand_dims(grid, 0), theta.dtype)  # (1, *S, ndim)
    spatial = len(grid.shape) - 2

    def row(k):  # theta[:, k, :] shaped to broadcast against (B, *S, ndim)
        return ops.reshape(theta[:, k, :], (-1,) + (1,) * spatial + (ndim,))

    out = row(ndim)
    for k in range(ndim):
        out = out + grid[..., k : k + 1] * row(k)
    return out


def affine_to_ddf(theta, shape):
    """Dense displacement field of affine transforms over a grid of the given shape.

    Args:
        theta: ``(B, ndim + 1, ndim)``, see the module docstring.
        shape: fixed spatial shape, ``ndim`` positive ints.

    Returns:
        ``(B, *shape, ndim)`` = ``warp_grid(grid, theta) - grid``, voxels; ready for
        :func:`tfreg.ops.warp.warp`.
    """
    shape = _check_shape(shape)
    theta, _ = _check_theta(theta, len(shape))
    grid = get_reference_grid(shape)
    return warp_grid(grid, theta) - ops.cast(grid, theta.dtype)


__all__ = ["identity_affine", "warp_grid", "affine_to_ddf"]
