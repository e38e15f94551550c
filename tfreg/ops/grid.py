"""Reference grids of voxel indices (``keras.ops`` only).

A reference grid holds, at every voxel, that voxel's own index along each spatial axis. Adding a dense
displacement field (DDF, voxel units) to it gives the sampling coordinates used by
:func:`tfreg.ops.warp.warp`.
"""

from keras import ops


def _check_shape(shape, name: str = "shape") -> tuple:
    """``shape`` as a tuple of positive Python ints, or ValueError naming ``name``."""
    try:
        dims = tuple(shape)
    except TypeError:
        raise ValueError(f"{name} must be a sequence of positive ints, got {shape!r}") from None
    if len(dims) == 0:
        raise ValueError(f"{name} must have at least one spatial size, got {shape!r}")
    out = []
    for d in dims:
        # numpy integers and plain ints are both fine; bool is an int subclass but never a size
        if isinstance(d, bool) or not hasattr(d, "__index__") or int(d) < 1:
            raise ValueError(f"{name} must be a sequence of positive ints, got {shape!r}")
        out.append(int(d))
    return tuple(out)


def _grid(sizes):
    """Reference grid for sizes that may include dynamic (tensor) sizes; see :func:`get_reference_grid`."""
    axes = [ops.arange(d, dtype="float32") for d in sizes]
    if len(axes) == 1:
        return ops.expand_dims(axes[0], -1)
    return ops.stack(ops.meshgrid(*axes, indexing="ij"), axis=-1)


def get_reference_grid(shape):
    """Voxel-index grid of a spatial shape.

    Args:
        shape: spatial size ``(d0, d1)`` or ``(d0, d1, d2)`` (any length >= 1 works), positive ints.

    Returns:
        float32 tensor ``(*shape, ndim)`` with ``grid[i, j, k] == (i, j, k)``: channel ``c`` is the index
        along spatial axis ``c`` ("ij" meshgrid order), in voxels.
    """
    return _grid(_check_shape(shape))


__all__ = ["get_reference_grid"]
