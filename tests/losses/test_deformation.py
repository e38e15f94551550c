"""bending and gradient regularisers against NumPy central differences and analytic fields (contract §6)."""

import numpy as np
import pytest
import tensorflow as tf

from tfreg import losses as L
from tfreg.registry import REGISTRY

RNG = np.random.default_rng(3)


def np_diff(f, axis):
    """DeepReg's gradient_d*: (f[i+1] - f[i-1]) / 2 along spatial ``axis``, every spatial axis cropped by 1."""
    ndim = f.ndim - 2
    hi = [slice(None)] + [slice(1, -1)] * ndim + [slice(None)]
    lo = list(hi)
    hi[axis + 1] = slice(2, None)
    lo[axis + 1] = slice(None, -2)
    return (f[tuple(hi)] - f[tuple(lo)]) / 2.0


def ref_bending(f):
    f = f.astype(np.float64)
    ndim = f.ndim - 2
    d = [np_diff(f, a) for a in range(ndim)]
    e = sum(np_diff(d[a], a) ** 2 for a in range(ndim))
    e = e + sum(2 * np_diff(d[a], b) ** 2 for a in range(ndim) for b in range(a + 1, ndim))
    return e.reshape(f.shape[0], -1).mean(1)


def ref_gradient(f, l1=False):
    f = f.astype(np.float64)
    d = [np_diff(f, a) for a in range(f.ndim - 2)]
    n = sum(np.abs(x) if l1 else x**2 for x in d)
    return n.reshape(f.shape[0], -1).mean(1)


def grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)


@pytest.mark.parametrize("shape", [(2, 9, 10, 2), (2, 8, 9, 10, 3)])
def test_against_reference(shape):
    ddf = RNG.normal(size=shape).astype(np.float32)
    np.testing.assert_allclose(L.BendingEnergy()(ddf), ref_bending(ddf), rtol=1e-5)
    np.testing.assert_allclose(L.GradientNorm()(ddf), ref_gradient(ddf), rtol=1e-5)
    np.testing.assert_allclose(L.GradientNorm(l1=True)(inputs=ddf), ref_gradient(ddf, l1=True), rtol=1e-5)


@pytest.mark.parametrize("spatial", [(8, 9), (8, 9, 10)])
def test_analytic_fields(spatial):
    ndim = len(spatial)
    x = grid(spatial)
    A = RNG.normal(size=(ndim, ndim))
    affine = (x @ A.T + RNG.normal(size=ndim))[None].astype(np.float32)  # f_c = sum_a A[c, a] x_a + b_c
    np.testing.assert_allclose(L.BendingEnergy()(affine), 0.0, atol=1e-8)
    np.testing.assert_allclose(L.GradientNorm()(affine), np.sum(A**2) / ndim, rtol=1e-5)
    np.testing.assert_allclose(L.GradientNorm(l1=True)(affine), np.sum(np.abs(A)) / ndim, rtol=1e-5)
    # f_0 = x_0^2: f_00 = 2 exactly with central differences; f_0 = x_0 x_1: f_01 = 1, counted twice
    quad = np.zeros((1,) + spatial + (ndim,), np.float32)
    quad[..., 0] = x[..., 0] ** 2
    np.testing.assert_allclose(L.BendingEnergy()(quad), 4.0 / ndim, rtol=1e-6)
    mixed = np.zeros_like(quad)
    mixed[..., 0] = x[..., 0] * x[..., 1]
    np.testing.assert_allclose(L.BendingEnergy()(mixed), 2.0 / ndim, rtol=1e-6)


def test_zero_ddf_finite_gradients():
    for name, kwargs in (("bending", {}), ("gradient", {}), ("gradient", {"l1": True})):
        loss = REGISTRY.build_loss({"name": name, **kwargs})
        for shape in ((2, 6, 7, 2), (2, 6, 7, 8, 3)):
            ddf = tf.Variable(tf.zeros(shape))
            with tf.GradientTape() as tape:
                value = tf.reduce_mean(loss(inputs=ddf))
            grad = tape.gradient(value, ddf)
            assert value.numpy() == 0.0
            assert grad is not None and np.all(np.isfinite(grad.numpy()))


def test_gradient_of_gradient_norm():
    # d/dddf of mean(sum_a (D_a f)^2): check against a finite difference of the NumPy reference
    ddf = RNG.normal(size=(1, 6, 7, 2)).astype(np.float64)
    var = tf.Variable(ddf.astype(np.float32))
    with tf.GradientTape() as tape:
        value = L.GradientNorm()(var)[0]
    grad = tape.gradient(value, var).numpy()
    h = 1e-4
    for idx in [(0, 2, 3, 0), (0, 0, 0, 1), (0, 5, 6, 1), (0, 1, 4, 0)]:
        plus, minus = ddf.copy(), ddf.copy()
        plus[idx] += h
        minus[idx] -= h
        fd = (ref_gradient(plus)[0] - ref_gradient(minus)[0]) / (2 * h)
        np.testing.assert_allclose(grad[idx], fd, rtol=1e-3, atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="ndim"):
        L.BendingEnergy()(np.zeros((1, 8, 8, 8, 2), np.float32))
    with pytest.raises(ValueError, match="ndim"):
        L.GradientNorm()(np.zeros((1, 8, 3), np.float32))
    with pytest.raises(ValueError, match=">= 5"):
        L.BendingEnergy()(np.zeros((1, 8, 4, 8, 3), np.float32))
    with pytest.raises(ValueError, match=">= 3"):
        L.GradientNorm()(np.zeros((1, 2, 8, 2), np.float32))


def test_reduction_and_names():
    ddf = RNG.normal(size=(3, 6, 6, 6, 3)).astype(np.float32)
    per_sample = L.BendingEnergy()(ddf)
    assert per_sample.shape == (3,)
    np.testing.assert_allclose(L.BendingEnergy(reduction="sum_over_batch_size")(ddf), np.mean(per_sample), rtol=1e-6)
    np.testing.assert_allclose(L.BendingEnergy(reduction="sum")(ddf), np.sum(per_sample), rtol=1e-6)
    assert L.BendingEnergy().name == "BendingEnergy" and L.GradientNorm(name="g").name == "g"
    assert isinstance(L.GradientNorm(), L.DeformationLoss)


def test_inside_tf_function_with_unknown_batch():
    loss = L.BendingEnergy()
    fn = tf.function(loss, input_signature=[tf.TensorSpec((None, 7, 8, 9, 3), tf.float32)])
    ddf = RNG.normal(size=(2, 7, 8, 9, 3)).astype(np.float32)
    np.testing.assert_allclose(fn(ddf), ref_bending(ddf), rtol=1e-5)
