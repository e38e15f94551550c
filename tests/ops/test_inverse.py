"""tfreg.ops.inverse against analytic fields (evaluated in NumPy float64) and scipy.ndimage.map_coordinates."""

import numpy as np
import pytest
from keras import ops
from scipy import ndimage

from tfreg.ops.inverse import compose_ddf, invert_ddf
from tfreg.ops.warp import warp

pytestmark = pytest.mark.backend_agnostic

AMPLITUDE = 3.0  # voxels: the largest displacement of the analytic field
# Once the iteration has converged, linear interpolation of u is the only approximation left: measured
# 0.012 (2-D) and 0.013 (3-D) voxel against the analytic field.
INTERIOR_ATOL = 0.03
# The other order, u followed by v, also interpolates v (rougher than u): measured 0.039 (2-D), 0.032 (3-D).
OTHER_ORDER_ATOL = 0.06


def np_(x):
    return np.asarray(ops.convert_to_numpy(x), dtype=np.float64)


def grid_of(shape):
    return np.stack(np.meshgrid(*[np.arange(d, dtype=np.float64) for d in shape], indexing="ij"), -1)


def analytic_field(points, shape):
    """A smooth field of up to AMPLITUDE voxels, ``(..., ndim)`` at voxel positions ``points``, float64.

    Component ``a`` varies with the other axes over half a period across the grid, so its derivatives are
    at most AMPLITUDE * pi / (n - 1) ~ 0.5 < 1 for n >= 20: the fixed-point iteration contracts.
    """
    ndim = points.shape[-1]
    t = np.pi * points / (np.asarray(shape, dtype=np.float64) - 1)
    parts = []
    for a in range(ndim):
        b = (a + 1) % ndim
        parts.append(AMPLITUDE * np.sin(t[..., b] + 0.3 * a) * (np.cos(t[..., a]) if ndim == 2 else 1.0))
    return np.stack(parts, -1)


def interior(points, shape, margin):
    upper = np.asarray(shape, dtype=np.float64) - 1 - margin
    return np.all((points >= margin) & (points <= upper), axis=-1)


@pytest.mark.parametrize("shape", [(24, 24), (20, 22, 24)])
def test_inverse_of_smooth_field_composes_to_identity(shape):
    x = grid_of(shape)
    u = analytic_field(x, shape)
    assert 2.5 < np.abs(u).max() <= AMPLITUDE
    inverse, residual = invert_ddf(u[None].astype(np.float32), iterations=60, tolerance=1e-4)
    v = np_(inverse)[0]
    # the field's own fixed-point equation, as the op measures it (linear interpolation of u)
    assert np_(residual["max"])[0] < 1e-3
    assert 0 <= np_(residual["mean"])[0] <= np_(residual["max"])[0]
    # the analytic u at x + v(x), independent of the op's interpolation: x -> x + v -> (x + v) + u(x + v) = x
    y = x + v
    inside = interior(y, shape, margin=0.0) & interior(x, shape, margin=AMPLITUDE)
    assert inside.mean() > 0.3
    err = np.linalg.norm(analytic_field(y, shape) + v, axis=-1)
    assert err[inside].max() < INTERIOR_ATOL
    # the other order (compose_ddf): x -> x + u(x) -> + v(x + u(x)) = x
    other = np.linalg.norm(np_(compose_ddf(u[None].astype(np.float32), inverse))[0], axis=-1)
    assert other[inside].max() < OTHER_ORDER_ATOL


@pytest.mark.parametrize("shape", [(9, 11), (8, 9, 10)])
def test_inverse_of_translation_is_minus_the_translation(shape):
    t = np.array([1.5, -2.0, 0.75][: len(shape)])
    u = np.broadcast_to(t, tuple(shape) + (len(shape),)).astype(np.float32)
    inverse, residual = invert_ddf(u[None], iterations=10)
    # replicate boundary: a constant field samples to itself everywhere, so the inverse is exact everywhere
    np.testing.assert_array_equal(np_(inverse)[0], np.broadcast_to(-t, u.shape))
    np.testing.assert_array_equal(np_(residual["max"]), [0.0])
    # zero boundary: exact wherever x - t stays inside the grid (u is 0 outside, so the border oscillates)
    inverse, _ = invert_ddf(u[None], iterations=5, tolerance=None, boundary="zero")
    inside = interior(grid_of(shape) - t, shape, margin=0.0)
    np.testing.assert_array_equal(np_(inverse)[0][inside], np.broadcast_to(-t, u.shape)[inside])


def test_batch_items_are_inverted_independently():
    shape = (12, 14)
    u = analytic_field(grid_of(shape), shape).astype(np.float32)
    both, residual = invert_ddf(np.stack([u, 0.5 * u]), iterations=40, tolerance=None)
    single, _ = invert_ddf((0.5 * u)[None], iterations=40, tolerance=None)
    np.testing.assert_allclose(np_(both)[1], np_(single)[0], atol=1e-6)
    assert np_(residual["max"]).shape == (2,)


def test_tolerance_stops_early():
    shape = (10, 12)
    u = analytic_field(grid_of(shape), shape).astype(np.float32)[None]
    # the first step moves v from 0 to -u (at most AMPLITUDE): a tolerance above that stops there
    one, residual = invert_ddf(u, iterations=50, tolerance=10.0)
    np.testing.assert_array_equal(np_(one), -u)
    assert np_(residual["max"])[0] > 0.1
    first, _ = invert_ddf(u, iterations=1, tolerance=None)
    np.testing.assert_array_equal(np_(first), -u)


@pytest.mark.parametrize("boundary", ["zero", "replicate"])
def test_compose_matches_scipy_reference(boundary):
    rng = np.random.default_rng(3)
    shape = (7, 8, 9)
    a = rng.uniform(-2, 2, shape + (3,)).astype(np.float32)
    b = rng.uniform(-2, 2, shape + (3,)).astype(np.float32)
    coords = np.moveaxis(grid_of(shape) + a, -1, 0)
    mode = "nearest" if boundary == "replicate" else "constant"  # nearest clamps coordinates, as replicate does
    sampled = np.stack(
        [ndimage.map_coordinates(b[..., c].astype(np.float64), coords, order=1, mode=mode) for c in range(3)], -1
    )
    if boundary == "zero":  # scipy interpolates towards cval in the border cell; tfreg is 0 outside [0, d - 1]
        sampled[~interior(grid_of(shape) + a, shape, margin=0.0)] = 0.0
    np.testing.assert_allclose(np_(compose_ddf(a[None], b[None], boundary=boundary))[0], a + sampled, atol=1e-5)


def test_compose_warps_like_two_warps():
    shape = (12, 13, 14)
    x = grid_of(shape)
    image = np.sin(x[..., 0] / 3.0) + np.cos(x[..., 1] / 4.0) * x[..., 2] / 14.0
    a = np.broadcast_to([1.0, -1.0, 2.0], shape + (3,)).astype(np.float32)
    b = np.broadcast_to([-0.5, 2.0, 1.0], shape + (3,)).astype(np.float32)
    c = np_(compose_ddf(a[None], b[None]))[0]
    np.testing.assert_array_equal(c, np.broadcast_to([0.5, 1.0, 3.0], c.shape))
    once = np_(warp(image[None].astype(np.float32), c[None]))[0]
    twice = np_(warp(warp(image[None].astype(np.float32), b[None]), a[None]))[0]
    # where both the intermediate point x + a and the final x + c are inside (the two warps zero the rest)
    inside = interior(x + a, shape, margin=0.0) & interior(x + c, shape, margin=0.0)
    assert inside.mean() > 0.3
    np.testing.assert_allclose(once[inside], twice[inside], atol=1e-5)


def test_refusals():
    u = np.zeros((1, 5, 6, 2), np.float32)
    with pytest.raises(ValueError, match=r"ddf must be \(batch, \*spatial, ndim\)"):
        invert_ddf(u[0])
    with pytest.raises(ValueError, match="iterations must be an integer"):
        invert_ddf(u, iterations=0)
    with pytest.raises(ValueError, match="tolerance must be >= 0"):
        invert_ddf(u, tolerance=-1.0)
    with pytest.raises(ValueError, match="boundary"):
        invert_ddf(u, boundary="wrap")
    with pytest.raises(ValueError, match="b must be"):
        compose_ddf(u, u[0])
