"""Composing and inverting dense displacement fields (``keras.ops`` only; runs under TensorFlow and JAX).

DDFs are ``(B, *S, ndim)`` in voxels, ij(k) order, as in :mod:`tfreg.ops.warp`: ``u`` maps voxel ``x`` to
``x + u(x)``, and ``warp(image, u)`` samples ``image`` there.
"""

from keras import ops

from tfreg.checks import BOUNDARIES, check_choice, check_int
from tfreg.ops.jacobian import check_ddf
from tfreg.ops.warp import _sizes, warp


def compose_ddf(a, b, boundary: str = "replicate"):
    """The DDF of "first ``a``, then ``b``": ``c(x) = a(x) + b(x + a(x))``.

    Warping by ``c`` equals warping by ``b`` and then by ``a`` (up to interpolation):
    ``warp(image, c) ~ warp(warp(image, b), a)``, since both sample ``image`` at ``x + a(x) + b(x + a(x))``.

    Args:
        a: ``(B, *S, ndim)`` voxels; its targets ``x + a(x)`` index ``b``'s grid.
        b: ``(B or 1, *S_b, ndim)`` voxels, on the grid ``a`` points into.
        boundary: how ``b`` is sampled outside its grid: ``"replicate"`` (edge values, the default) or
            ``"zero"`` (no displacement outside), see :func:`tfreg.ops.warp.resample`.

    Returns:
        ``(B, *S, ndim)``, voxels of ``b``'s target grid, linear interpolation of ``b``.
    """
    check_choice(boundary, "boundary", BOUNDARIES)
    a, _ = check_ddf(a, "a")
    b, _ = check_ddf(b, "b")
    return a + warp(b, a, interpolation="linear", boundary=boundary)


def _in_grid(v, ndim: int):
    """``(B, *S)`` bool: whether ``x + v(x)`` lies inside the grid ``[0, d - 1]`` on every axis."""
    inside = None
    for axis, d in enumerate(_sizes(v, range(1, ndim + 1))):
        ramp = ops.reshape(ops.arange(d, dtype=v.dtype), (-1,) + (1,) * (ndim - 1 - axis))
        x = v[..., axis] + ramp
        ok = ops.logical_and(x >= 0.0, x <= ops.cast(d - 1, v.dtype))
        inside = ok if inside is None else ops.logical_and(inside, ok)
    return inside


def _residual(ddf, v, ndim: int, boundary: str):
    """``(max, mean)`` per batch item, ``(B,)`` each, of ``|u(x + v(x)) + v(x)|`` over in-grid points."""
    norm = ops.sqrt(ops.sum(ops.square(warp(ddf, v, boundary=boundary) + v), axis=-1))
    inside = ops.cast(_in_grid(v, ndim), norm.dtype)
    axes = tuple(range(1, ndim + 1))
    largest = ops.max(norm * inside, axis=axes)
    mean = ops.sum(norm * inside, axis=axes) / ops.maximum(ops.sum(inside, axis=axes), 1.0)
    return largest, mean


def invert_ddf(ddf, iterations: int = 50, tolerance: float = 1e-3, boundary: str = "replicate"):
    """Approximate inverse ``v`` of a DDF ``u`` by fixed-point iteration: ``v(x) = -u(x + v(x))``.

    The method of Chen, Lu, Chen, Ruchala and Olivera, "A simple fixed-point approach to invert a
    deformation field", Medical Physics 35(1), 2008: start from ``v = 0`` and repeat
    ``v <- -u(x + v(x))`` (``u`` sampled with linear interpolation). Then ``x -> x + v(x)`` undoes
    ``x -> x + u(x)``: ``u(x + v(x)) + v(x) = 0``. The iteration converges where ``u`` is a contraction
    (spatial derivatives of ``u`` below 1 in voxel units, i.e. a smooth, invertible field); for rougher
    fields it may stall, which the returned residual shows.

    Args:
        ddf: ``u``, ``(B, *S, ndim)`` voxels, ij(k) order (2-D or 3-D); ``x + u(x)`` indexes the same grid
            (the inverse of a DDF between two different grids is not defined here).
        iterations: the most fixed-point steps (int >= 1).
        tolerance: stop early once the largest residual (voxels, over in-grid points, all batch items)
            is at most this; None runs all ``iterations`` steps.
        boundary: how ``u`` is sampled outside the grid: ``"replicate"`` (edge values; default) or
            ``"zero"``.

    Returns:
        ``(inverse, residual)``: ``inverse`` ``(B, *S, ndim)`` voxels, dtype of ``ddf`` (float32 for
        integer input); ``residual`` a dict of ``(B,)`` tensors, ``"max"`` and ``"mean"``, of the norm of
        ``u(x + v(x)) + v(x)`` in voxels over the points ``x`` whose ``x + v(x)`` lies inside the grid
        (0 when there are none).
    """
    iterations = check_int(iterations, "iterations", minimum=1)
    check_choice(boundary, "boundary", BOUNDARIES)
    ddf, ndim = check_ddf(ddf, "ddf")
    if tolerance is not None and not float(tolerance) >= 0.0:
        raise ValueError(f"tolerance must be >= 0 or None, got {tolerance!r}")
    limit = -1.0 if tolerance is None else float(tolerance)  # a residual is never below -1: no early stop

    def keep_going(step, v, largest):
        return ops.logical_and(step < iterations, largest > limit)

    def update(step, v, largest):
        # the residual of v is exactly the step to the next iterate: u(x + v) + v = v - v_next
        v_next = -warp(ddf, v, interpolation="linear", boundary=boundary)
        change = ops.sqrt(ops.sum(ops.square(v_next - v), axis=-1))
        change = ops.max(change * ops.cast(_in_grid(v, ndim), change.dtype))
        return step + 1, v_next, ops.cast(change, "float32")

    start = (ops.convert_to_tensor(0, "int32"), ops.zeros_like(ddf), ops.convert_to_tensor(float("inf"), "float32"))
    _, inverse, _ = ops.while_loop(keep_going, update, start)
    largest, mean = _residual(ddf, inverse, ndim, boundary)
    return inverse, {"max": largest, "mean": mean}


__all__ = ["invert_ddf", "compose_ddf"]
