"""Finite differences on channels-last tensors, 2-D and 3-D (``keras.ops`` only).

Every function takes ``x`` shaped ``(batch, *spatial, channels)`` with ``len(spatial)`` 2 or 3 and
differentiates along a spatial axis given as ``0 .. ndim-1`` (0 is the first spatial axis, i.e. tensor
axis 1). Units are "per voxel": a difference of one voxel step has denominator 1.
"""

from keras import ops


def spatial_ndim(x) -> int:
    """Number of spatial dimensions of a ``(batch, *spatial, channels)`` tensor (2 or 3)."""
    ndim = len(x.shape) - 2
    if ndim not in (2, 3):
        raise ValueError(
            f"expected a (batch, *spatial, channels) tensor with 2 or 3 spatial axes, got shape {tuple(x.shape)}"
        )
    return ndim


def _slice(x, axis: int, start, stop):
    """``x`` sliced along spatial ``axis`` (tensor axis ``axis + 1``)."""
    index = [slice(None)] * len(x.shape)
    index[axis + 1] = slice(start, stop)
    return x[tuple(index)]


def _difference_of_crops(x, axis: int, plus: slice, minus: slice, others: slice):
    """``x[plus] - x[minus]`` along spatial ``axis``, every other spatial axis cut to ``others``.

    One slice per term with every axis cut at once (not a difference followed by a crop per other axis):
    the same numbers with a third of the slices, each of whose gradients fills a full-size tensor.
    """
    ndim = spatial_ndim(x)
    index_plus = [slice(None)] + [others] * ndim + [slice(None)]
    index_minus = list(index_plus)
    index_plus[axis + 1], index_minus[axis + 1] = plus, minus
    return x[tuple(index_plus)] - x[tuple(index_minus)]


def _check_central_length(x, axis: int):
    """Raises unless ``x`` is ``(batch, *spatial, channels)`` with at least 3 voxels along ``axis``."""
    spatial_ndim(x)
    d = x.shape[axis + 1]
    if d is not None and d < 3:
        raise ValueError(f"central_difference needs at least 3 voxels along axis {axis}, got {d}")


def central_difference(x, axis: int, padding: str = "valid"):
    """Central difference ``(x[i+1] - x[i-1]) / 2`` along spatial ``axis``.

    Args:
        x: ``(batch, *spatial, channels)``.
        axis: spatial axis, ``0 .. ndim-1``.
        padding: ``"valid"`` keeps the interior only (length ``d-2`` along ``axis``, other axes unchanged);
            ``"same"`` keeps the length ``d`` using one-sided differences at both ends, as
            ``numpy.gradient`` does with ``edge_order=1``.

    Returns:
        The derivative per voxel, same rank as ``x``.
    """
    _check_central_length(x, axis)
    interior = (_slice(x, axis, 2, None) - _slice(x, axis, None, -2)) / 2.0
    if padding == "valid":
        return interior
    if padding == "same":
        first = _slice(x, axis, 1, 2) - _slice(x, axis, 0, 1)
        last = _slice(x, axis, -1, None) - _slice(x, axis, -2, -1)
        return ops.concatenate([first, interior, last], axis=axis + 1)
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def forward_difference(x, axis: int, padding: str = "valid"):
    """Forward difference ``x[i+1] - x[i]`` along spatial ``axis``.

    Args:
        x: ``(batch, *spatial, channels)``.
        axis: spatial axis, ``0 .. ndim-1``.
        padding: ``"valid"`` gives length ``d-1`` along ``axis``; ``"same"`` appends a zero difference at
            the far end (Neumann boundary), keeping length ``d``.
    """
    spatial_ndim(x)
    diff = _slice(x, axis, 1, None) - _slice(x, axis, None, -1)
    if padding == "valid":
        return diff
    if padding == "same":
        return ops.concatenate([diff, ops.zeros_like(_slice(x, axis, 0, 1))], axis=axis + 1)
    raise ValueError(f"padding must be 'valid' or 'same', got {padding!r}")


def central_difference_cropped(x, axis: int):
    """DeepReg's ``gradient_dx/dy/dz``: central difference along ``axis``, every spatial axis cropped by 1.

    Args:
        x: ``(batch, *spatial, channels)``.

    Returns:
        ``(batch, *(s - 2 for s in spatial), channels)``.
    """
    _check_central_length(x, axis)
    return _difference_of_crops(x, axis, slice(2, None), slice(None, -2), slice(1, -1)) / 2.0


def forward_difference_cropped(x, axis: int):
    """Forward difference along ``axis`` with every spatial axis cut to length ``d - 1``.

    All axes end up the same size, so the per-axis results can be combined voxel by voxel.

    Returns:
        ``(batch, *(s - 1 for s in spatial), channels)``.
    """
    return _difference_of_crops(x, axis, slice(1, None), slice(None, -1), slice(None, -1))


__all__ = [
    "spatial_ndim",
    "central_difference",
    "forward_difference",
    "central_difference_cropped",
    "forward_difference_cropped",
]
