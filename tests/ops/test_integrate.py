"""tfreg.ops.integrate: scaling and squaring against closed forms and a SciPy reference."""

import numpy as np
import pytest
from keras import ops
from scipy import ndimage
from scipy.linalg import expm

from tfreg.ops.integrate import integrate_dvf

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(11)


def grid_of(shape):
    return np.stack(np.meshgrid(*[np.arange(d) for d in shape], indexing="ij"), -1).astype(np.float64)


def interior(field, margin):
    n = field.ndim - 2
    return field[(slice(None),) + (slice(margin, -margin),) * n]


def scipy_scaling_and_squaring(dvf, num_steps, mode):
    """NumPy/SciPy reference: ddf = dvf / 2^N, then N times ddf += ddf sampled at x + ddf (order 1)."""
    ddf = dvf.astype(np.float64) / 2**num_steps
    n = dvf.shape[-1]
    grid = grid_of(dvf.shape[1:-1])
    for _ in range(num_steps):
        new = np.empty_like(ddf)
        for b in range(ddf.shape[0]):
            pts = np.moveaxis(grid + ddf[b], -1, 0)
            warped = [ndimage.map_coordinates(ddf[b, ..., c], pts, order=1, mode=mode, cval=0.0) for c in range(n)]
            new[b] = ddf[b] + np.stack(warped, -1)
        ddf = new
    return ddf


@pytest.mark.parametrize("shape", [(24, 25), (22, 22, 21)])
def test_constant_velocity(shape):
    v = np.array([0.9, -1.3, 0.4][: len(shape)], np.float32)
    dvf = np.broadcast_to(v, (1, *shape, len(shape))).astype(np.float32)
    ddf = ops.convert_to_numpy(integrate_dvf(dvf))
    # the zero boundary corrupts the field near the edges, and each squaring carries that inwards by
    # up to a voxel: 7 steps plus the displacement itself
    inner = interior(ddf, 9)
    np.testing.assert_allclose(inner, np.broadcast_to(v, inner.shape), atol=1e-6)
    # with replicated edges a constant field stays constant everywhere
    ddf = ops.convert_to_numpy(integrate_dvf(dvf, boundary="replicate"))
    np.testing.assert_allclose(ddf, np.broadcast_to(v, ddf.shape), atol=1e-6)


@pytest.mark.parametrize("shape, margin", [((33, 31), 8), ((21, 21, 21), 6)])
def test_linear_velocity_integrates_to_matrix_exponential(shape, margin):
    n = len(shape)
    a = RNG.standard_normal((n, n)) * 0.08
    centre = (np.array(shape) - 1) / 2
    x = grid_of(shape) - centre
    dvf = (x @ a.T)[None].astype(np.float32)  # v(x) = A (x - c)
    ddf = ops.convert_to_numpy(integrate_dvf(dvf, num_steps=7))
    # flow of the linear ODE: (expm(A) - I)(x - c), up to the O(|A|^2 / 2^N) scaling-and-squaring error
    exact = x @ (expm(a) - np.eye(n)).T
    np.testing.assert_allclose(interior(ddf, margin), interior(exact[None], margin), atol=2e-3)
    # linear interpolation reproduces a linear field, so inside the volume the discrete result is
    # exactly ((I + A / 2^N)^(2^N) - I)(x - c)
    discrete = x @ (np.linalg.matrix_power(np.eye(n) + a / 128, 128) - np.eye(n)).T
    np.testing.assert_allclose(interior(ddf, margin), interior(discrete[None], margin), atol=2e-5)


@pytest.mark.parametrize("shape", [(16, 14), (12, 10, 9)])
@pytest.mark.parametrize("boundary, mode", [("zero", "constant"), ("replicate", "nearest")])
@pytest.mark.parametrize("num_steps", [0, 1, 7])
def test_matches_scipy_reference(shape, boundary, mode, num_steps):
    n = len(shape)
    # smooth random velocity, a few voxels
    low = np.random.default_rng(100 * n + num_steps).standard_normal((2, *(4,) * n, n))
    dvf = (
        np.stack(
            [
                np.stack([ndimage.zoom(low[b, ..., c], [s / 4 for s in shape], order=1) for c in range(n)], -1)
                for b in range(2)
            ]
        ).astype(np.float32)
        * 2.0
    )
    ddf = ops.convert_to_numpy(integrate_dvf(dvf, num_steps=num_steps, boundary=boundary))
    expected = scipy_scaling_and_squaring(dvf, num_steps, mode)
    assert ddf.shape == dvf.shape
    np.testing.assert_allclose(interior(ddf, 2), interior(expected, 2), atol=1e-5)
    # map_coordinates' "constant" mode is also 0 beyond the edges, so the edges agree as well
    np.testing.assert_allclose(ddf, expected, atol=1e-5)


def test_zero_velocity():
    dvf = np.zeros((2, 6, 7, 8, 3), np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(integrate_dvf(dvf)), dvf)


def test_bad_arguments():
    dvf = np.zeros((1, 4, 4, 4, 3), np.float32)
    for steps in (-1, 2.0, True):
        with pytest.raises(ValueError, match="num_steps"):
            integrate_dvf(dvf, num_steps=steps)
    with pytest.raises(ValueError, match="boundary"):
        integrate_dvf(dvf, boundary="mirror")
    with pytest.raises(ValueError, match="dvf"):
        integrate_dvf(np.zeros((1, 4, 4, 4, 2), np.float32))
