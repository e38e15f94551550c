"""tfreg.ops.affine against NumPy matrix products and scipy.ndimage.affine_transform."""

import numpy as np
import pytest
from keras import ops
from scipy import ndimage
from scipy.spatial.transform import Rotation

from tfreg.ops.affine import affine_to_ddf, identity_affine, warp_grid
from tfreg.ops.warp import warp

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(3)


def grid_of(shape):
    return np.stack(np.meshgrid(*[np.arange(d) for d in shape], indexing="ij"), -1).astype(np.float64)


def np_(x):
    return ops.convert_to_numpy(x)


def homogeneous(points):
    return np.concatenate([points, np.ones(points.shape[:-1] + (1,))], -1)


@pytest.mark.parametrize("ndim", [2, 3])
def test_identity(ndim):
    theta = np_(identity_affine(4, ndim))
    assert theta.shape == (4, ndim + 1, ndim) and theta.dtype == np.float32
    np.testing.assert_array_equal(theta, np.broadcast_to(np.eye(ndim + 1, ndim), theta.shape))
    shape = (5, 6, 7)[:ndim]
    np.testing.assert_array_equal(np_(affine_to_ddf(theta, shape)), np.zeros((4, *shape, ndim)))


@pytest.mark.parametrize("ndim", [2, 3])
def test_translation(ndim):
    t = np.array([1.5, -2.0, 0.25][:ndim], np.float32)
    theta = np.eye(ndim + 1, ndim, dtype=np.float32)[None].copy()
    theta[0, ndim] = t
    shape = (4, 5, 6)[:ndim]
    np.testing.assert_allclose(np_(affine_to_ddf(theta, shape)), np.broadcast_to(t, (1, *shape, ndim)), atol=1e-6)


def rotation_theta(ndim, batch, centre):
    """Rotation about ``centre`` in DeepReg's convention: new = [p, 1] @ theta = R p + (c - R c)."""
    thetas = []
    for _ in range(batch):
        if ndim == 2:
            a = RNG.uniform(-np.pi, np.pi)
            r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        else:
            r = Rotation.random(random_state=int(RNG.integers(1 << 31))).as_matrix()
        t = centre - r @ centre
        thetas.append(np.concatenate([r.T, t[None]], 0))
    return np.stack(thetas).astype(np.float32)


@pytest.mark.parametrize("ndim", [2, 3])
def test_rotation_against_numpy(ndim):
    shape = (6, 7, 8)[:ndim]
    theta = rotation_theta(ndim, 2, (np.array(shape) - 1) / 2)
    grid = grid_of(shape)
    expected = np.einsum("...k,bkn->b...n", homogeneous(grid), theta.astype(np.float64))
    np.testing.assert_allclose(np_(warp_grid(grid.astype(np.float32), theta)), expected, atol=1e-5)
    np.testing.assert_allclose(np_(affine_to_ddf(theta, shape)), expected - grid, atol=1e-5)
    # a rotation keeps distances to the centre
    c = (np.array(shape) - 1) / 2
    np.testing.assert_allclose(
        np.linalg.norm(expected - c, axis=-1),
        np.broadcast_to(np.linalg.norm(grid - c, axis=-1), expected.shape[:-1]),
        atol=1e-5,
    )


@pytest.mark.parametrize("ndim", [2, 3])
def test_warping_matches_scipy_affine_transform(ndim):
    shape = (12, 11, 10)[:ndim]
    image = ndimage.gaussian_filter(RNG.random(shape), 1.0).astype(np.float32)
    linear = np.eye(ndim) + RNG.standard_normal((ndim, ndim)) * 0.08
    translation = RNG.standard_normal((1, ndim)) * 0.7
    theta = np.concatenate([linear, translation], 0)[None].astype(np.float32)
    warped = np_(warp(image[None], affine_to_ddf(theta, shape)))[0]
    # scipy: out[o] = in[matrix @ o + offset]; ours: out[p] = in[[p, 1] @ theta] = in[theta[:n].T p + theta[n]]
    expected = ndimage.affine_transform(
        image.astype(np.float64),
        theta[0, :ndim].T.astype(np.float64),
        offset=theta[0, ndim].astype(np.float64),
        order=1,
        mode="constant",
        cval=0.0,
    )
    coords = homogeneous(grid_of(shape)) @ theta[0].astype(np.float64)
    margin = 1e-3  # keep away from samples that float32 rounding could put on either side of an edge
    inside = np.all((coords > margin) & (coords < np.array(shape) - 1 - margin), axis=-1)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(warped[inside], expected[inside], atol=1e-5)


def test_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        identity_affine(0, 3)
    with pytest.raises(ValueError, match="ndim"):
        identity_affine(1, 4)
    with pytest.raises(ValueError, match="theta"):
        affine_to_ddf(np.zeros((1, 3, 3), np.float32), (4, 4, 4))
    with pytest.raises(ValueError, match="theta"):
        affine_to_ddf(np.zeros((1, 4, 3), np.float32), (4, 4))
    with pytest.raises(ValueError, match="grid"):
        warp_grid(np.zeros((4, 4, 2), np.float32), np.zeros((1, 4, 3), np.float32))
