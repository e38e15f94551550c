"""tfreg.ops.jacobian against numpy.gradient / numpy.diff with numpy.linalg.det, and closed forms."""

import keras
import numpy as np
import pytest
from keras import ops
from scipy.spatial.transform import Rotation

from tfreg.ops.jacobian import determinant, jacobian, jacobian_determinant

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(5)


def grid_of(shape):
    return np.stack(np.meshgrid(*[np.arange(d) for d in shape], indexing="ij"), -1).astype(np.float64)


def np_jacobian(ddf, mode):
    """J[..., i, j] = delta_ij + d u_i / d x_j with numpy.gradient (central) or numpy.diff (forward)."""
    n = ddf.shape[-1]
    out = np.zeros(ddf.shape + (n,))
    for j in range(n):
        if mode == "central":
            d = np.gradient(ddf, axis=j + 1)
        else:
            d = np.diff(ddf, axis=j + 1, append=np.take(ddf, [-1], axis=j + 1))
        out[..., j] = d
    return out + np.eye(n)


@pytest.mark.parametrize("shape", [(7, 8), (5, 6, 7)])
@pytest.mark.parametrize("mode", ["central", "forward"])
def test_matches_numpy(shape, mode):
    ddf = RNG.standard_normal((2, *shape, len(shape))).astype(np.float32)
    expected = np_jacobian(ddf.astype(np.float64), mode)
    got = ops.convert_to_numpy(jacobian(ddf, mode=mode))
    assert got.shape == (2, *shape, len(shape), len(shape))
    np.testing.assert_allclose(got, expected, atol=1e-5)
    det = ops.convert_to_numpy(jacobian_determinant(ddf, mode=mode))
    assert det.shape == (2, *shape)
    np.testing.assert_allclose(det, np.linalg.det(expected), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("n", [2, 3])
def test_determinant_closed_form(n):
    m = RNG.standard_normal((4, 3, n, n)).astype(np.float32)
    np.testing.assert_allclose(
        ops.convert_to_numpy(determinant(m)), np.linalg.det(m.astype(np.float64)), rtol=1e-5, atol=1e-5
    )


@pytest.mark.parametrize("shape", [(6, 7), (5, 6, 7)])
def test_linear_field(shape):
    n = len(shape)
    a = RNG.standard_normal((n, n)) * 0.3
    ddf = (grid_of(shape) @ a.T)[None].astype(np.float32)  # u(x) = A x
    # one-sided differences are exact on a linear field, so the edges agree too
    det = ops.convert_to_numpy(jacobian_determinant(ddf))
    np.testing.assert_allclose(det, np.full((1, *shape), np.linalg.det(np.eye(n) + a)), rtol=1e-4)
    jac = ops.convert_to_numpy(jacobian(ddf))
    np.testing.assert_allclose(jac, np.broadcast_to(np.eye(n) + a, jac.shape), atol=1e-4)
    # forward differences: exact except on the last plane, where the Neumann continuation gives 0
    jac = ops.convert_to_numpy(jacobian(ddf, mode="forward"))
    inner = jac[(slice(None),) + (slice(0, -1),) * n]
    np.testing.assert_allclose(inner, np.broadcast_to(np.eye(n) + a, inner.shape), atol=1e-4)
    np.testing.assert_allclose(
        jac[0, -1, ..., :, 0], np.broadcast_to(np.eye(n)[:, 0], jac[0, -1, ..., :, 0].shape), atol=1e-6
    )


@pytest.mark.parametrize("n", [2, 3])
def test_rigid_rotation_has_unit_determinant(n):
    shape = (9, 10, 11)[:n]
    if n == 2:
        a = 0.7
        r = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    else:
        r = Rotation.from_rotvec([0.3, -0.5, 0.9]).as_matrix()
    x = grid_of(shape) - (np.array(shape) - 1) / 2
    ddf = (x @ r.T - x)[None].astype(np.float32)
    np.testing.assert_allclose(ops.convert_to_numpy(jacobian_determinant(ddf)), 1.0, atol=1e-5)


def test_gradient_is_finite_for_zero_ddf():
    ddf = np.zeros((1, 5, 6, 7, 3), np.float32)
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.constant(ddf)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(jacobian_determinant(x) ** 2)
        grad = tape.gradient(y, x).numpy()
    elif backend == "jax":
        import jax

        grad = np.asarray(jax.grad(lambda d: (jacobian_determinant(d) ** 2).sum())(ddf))
    else:
        pytest.skip(f"no gradient helper for backend {backend}")
    assert grad.shape == ddf.shape and np.isfinite(grad).all()


def test_bad_arguments():
    with pytest.raises(ValueError, match="mode"):
        jacobian(np.zeros((1, 4, 4, 4, 3), np.float32), mode="backward")
    with pytest.raises(ValueError, match="ddf"):
        jacobian(np.zeros((1, 4, 4, 4, 2), np.float32))
    with pytest.raises(ValueError, match="ddf"):
        jacobian_determinant(np.zeros((1, 4, 4, 4, 4, 4), np.float32))
    with pytest.raises(ValueError, match="matrix"):
        determinant(np.zeros((2, 4, 4), np.float32))
