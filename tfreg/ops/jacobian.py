"""Jacobian matrices and determinants of displacement fields (``keras.ops`` only).

For a DDF ``u`` (voxel units), the transform is ``phi(x) = x + u(x)`` and its Jacobian is
``J[..., i, j] = delta_ij + d u_i / d x_j``, derivatives per voxel. ``det J`` is the local volume change
(1: preserved, < 1: compression, <= 0: folding).
"""

from keras import ops

from tfreg.checks import check_choice
from tfreg.ops.differences import central_difference, forward_difference

MODES = ("central", "forward")


def check_ddf(ddf, name: str = "ddf"):
    """``(ddf as a float tensor, ndim)``; ValueError naming ``name`` unless ``(batch, *spatial, ndim)``, ndim 2 or 3."""
    ddf = ops.convert_to_tensor(ddf)
    ndim = ddf.shape[-1]
    if ndim not in (2, 3) or len(ddf.shape) != ndim + 2:
        raise ValueError(
            f"{name} must be (batch, *spatial, ndim) with ndim = {name}.shape[-1] = 2 or 3 spatial axes, got shape "
            f"{tuple(ddf.shape)}"
        )
    if "float" not in str(ddf.dtype):
        ddf = ops.cast(ddf, "float32")
    return ddf, ndim


def jacobian(ddf, mode: str = "central"):
    """Per-voxel Jacobian matrix of ``x -> x + ddf(x)``.

    Args:
        ddf: ``(B, *S, ndim)`` displacement, voxels, ij(k) order, ``ndim`` 2 or 3.
        mode: ``"central"``: ``(u[x+1] - u[x-1]) / 2`` inside, one-sided differences on the first and last
            plane (``numpy.gradient`` with ``edge_order=1``); needs >= 3 voxels per axis.
            ``"forward"``: ``u[x+1] - u[x]``, with the field continued past the last plane by repeating
            it (Neumann), so the derivative there is 0; needs >= 2 voxels per axis.

    Returns:
        ``(B, *S, ndim, ndim)`` with ``J[..., i, j] = delta_ij + d u_i / d x_j`` (dimensionless, per-voxel
        derivatives), same spatial size as ``ddf``.
    """
    check_choice(mode, "mode", MODES)
    ddf, ndim = check_ddf(ddf)
    diff = central_difference if mode == "central" else forward_difference
    # Each derivative along spatial axis j holds d u_i / d x_j in channel i: stacking on a new last axis
    # puts i before j.
    grad = ops.stack([diff(ddf, j, padding="same") for j in range(ndim)], axis=-1)
    return grad + ops.eye(ndim, dtype=grad.dtype)


def determinant(matrix):
    """Closed-form determinant of ``(..., n, n)`` matrices, ``n`` 2 or 3.

    Returns:
        ``(...)``; no LU decomposition, so it is exact to rounding, differentiable and cheap per voxel.
    """
    n = matrix.shape[-1]
    if n not in (2, 3) or matrix.shape[-2] != n:
        raise ValueError(f"matrix must be (..., 2, 2) or (..., 3, 3), got shape {tuple(matrix.shape)}")

    def m(i, j):
        return matrix[..., i, j]

    if n == 2:
        return m(0, 0) * m(1, 1) - m(0, 1) * m(1, 0)
    return (
        m(0, 0) * (m(1, 1) * m(2, 2) - m(1, 2) * m(2, 1))
        - m(0, 1) * (m(1, 0) * m(2, 2) - m(1, 2) * m(2, 0))
        + m(0, 2) * (m(1, 0) * m(2, 1) - m(1, 1) * m(2, 0))
    )


def jacobian_determinant(ddf, mode: str = "central"):
    """Per-voxel Jacobian determinant of ``x -> x + ddf(x)``.

    Args:
        ddf: ``(B, *S, ndim)`` displacement, voxels, ``ndim`` 2 or 3.
        mode: ``"central"`` or ``"forward"``, see :func:`jacobian`.

    Returns:
        ``(B, *S)``, dimensionless volume ratio.
    """
    return determinant(jacobian(ddf, mode=mode))


__all__ = ["jacobian", "jacobian_determinant", "determinant"]
