"""gmi (chunked Parzen-window MI with a custom gradient) against the dense formula (contract §6).

The dense reference holds the (voxels x bins) weights: in NumPy (float64) for values and in TensorFlow
(float64, tf.GradientTape autodiff) for gradients, so the analytic chunked gradient is checked against
automatic differentiation of the formula.
"""

import numpy as np
import pytest
import tensorflow as tf

from tfreg import losses as L
from tfreg.losses.mutual_information import global_mutual_information, plan_chunks
from tfreg.registry import REGISTRY

EPS = 1e-5
RNG = np.random.default_rng(4)


def dense_np(t, p, num_bins=23, sigma_ratio=0.5):
    t = np.clip(t.reshape(t.shape[0], -1).astype(np.float64), 0, 1)
    p = np.clip(p.reshape(p.shape[0], -1).astype(np.float64), 0, 1)
    c = np.linspace(0, 1, num_bins)
    sigma = np.mean(np.diff(c)) * sigma_ratio
    wt = np.exp(-((t[..., None] - c) ** 2) / (2 * sigma**2))
    wt /= wt.sum(-1, keepdims=True)
    wp = np.exp(-((p[..., None] - c) ** 2) / (2 * sigma**2))
    wp /= wp.sum(-1, keepdims=True)
    n = t.shape[1]
    pa, pb = wt.mean(1), wp.mean(1)
    pab = np.einsum("bna,bnc->bac", wt, wp) / n
    papb = pa[:, :, None] * pb[:, None, :]
    return np.sum(pab * np.log((pab + EPS) / (papb + EPS) + EPS), axis=(1, 2))


def dense_tf(t, p, num_bins=23, sigma_ratio=0.5):
    """The same dense formula with TensorFlow ops (float64), differentiated by autodiff."""
    b = tf.shape(t)[0]
    t = tf.clip_by_value(tf.reshape(t, (b, -1, 1)), 0.0, 1.0)
    p = tf.clip_by_value(tf.reshape(p, (b, -1, 1)), 0.0, 1.0)
    c = tf.constant(np.linspace(0, 1, num_bins)[None, None], tf.float64)
    sigma = np.mean(np.diff(np.linspace(0, 1, num_bins))) * sigma_ratio
    wt = tf.exp(-tf.square(t - c) / (2 * sigma**2))
    wt = wt / tf.reduce_sum(wt, -1, keepdims=True)
    wp = tf.exp(-tf.square(p - c) / (2 * sigma**2))
    wp = wp / tf.reduce_sum(wp, -1, keepdims=True)
    n = tf.cast(tf.shape(t)[1], tf.float64)
    pa, pb = tf.reduce_mean(wt, 1), tf.reduce_mean(wp, 1)
    pab = tf.matmul(wt, wp, transpose_a=True) / n
    papb = pa[:, :, None] * pb[:, None, :]
    return tf.reduce_sum(pab * tf.math.log((pab + EPS) / (papb + EPS) + EPS), axis=(1, 2))


def related_pair(shape):
    t = RNG.random(shape)
    p = np.sin(3 * t) * 0.5 + 0.2 * RNG.random(shape)  # nonlinear relation plus noise
    return t.astype(np.float32), p.astype(np.float32)


@pytest.mark.parametrize(
    "shape,dims", [((2, 12, 11), None), ((2, 12, 11, 2), 2), ((2, 10, 9, 8), None), ((2, 8, 9, 10, 2), None)]
)
@pytest.mark.parametrize("chunk", [65536, 100, 7])
def test_values_match_dense(shape, dims, chunk):
    t, p = related_pair(shape)
    expected = dense_np(t, p)
    out = L.GlobalMutualInformation(chunk_size=chunk, spatial_dims=dims, reduction=None)(t, p)
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-6)
    loss = L.GlobalMutualInformationLoss(chunk_size=chunk, spatial_dims=dims, reduction=None)(t, p)
    np.testing.assert_allclose(loss, -expected, rtol=1e-4, atol=1e-6)


def test_plan_chunks():
    assert plan_chunks(160 * 192 * 224, 65536) == (65536, 105)  # divisor: free reshape
    assert plan_chunks(4096, 65536) == (4096, 1)
    assert plan_chunks(4096, 1000) == (512, 8)
    assert plan_chunks(3 * 1009, 100) == (100, 31)  # no divisor in [25, 100]: padded last chunk
    for n, size in ((6881280, 65536), (3027, 100), (1001, 7), (97, 10)):
        chunk, count = plan_chunks(n, size)
        assert chunk <= size and (count - 1) * chunk < n <= count * chunk


@pytest.mark.parametrize("shape", [(2, 3, 1009), (2, 1, 2, 1009), (1, 3, 1009, 2)])
def test_padded_last_chunk(shape):
    # 1009 is prime: chunks of 100 cannot tile the image, the last one is padded and masked
    t, p = related_pair(shape)
    dims = 2 if len(shape) == 4 and shape[-1] == 2 else None
    out = L.GlobalMutualInformation(chunk_size=100, spatial_dims=dims, reduction=None)(t, p)
    np.testing.assert_allclose(out, dense_np(t, p), rtol=1e-4, atol=1e-6)
    tv = tf.Variable(t)
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(global_mutual_information(tv, tf.constant(p), chunk_size=100))
    t64 = tf.Variable(t.astype(np.float64))
    with tf.GradientTape() as tape64:
        ref = tf.reduce_sum(dense_tf(t64, tf.constant(p.astype(np.float64))))
    want = tape64.gradient(ref, t64).numpy()
    got = tape.gradient(value, tv).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


@pytest.mark.parametrize("num_bins,sigma_ratio", [(23, 0.5), (8, 1.5), (32, 0.1)])
def test_bins_and_sigma(num_bins, sigma_ratio):
    t, p = related_pair((2, 10, 10, 10))
    out = global_mutual_information(t, p, num_bins=num_bins, sigma_ratio=sigma_ratio, chunk_size=300)
    np.testing.assert_allclose(out, dense_np(t, p, num_bins, sigma_ratio), rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("chunk", [4096, 1000, 4097 * 2])
def test_gradient_matches_dense_autodiff(chunk):
    t, p = related_pair((2, 16, 16, 16))
    # values outside [0, 1] (clipped: zero gradient) and exactly on the bounds
    p[0, :2] = -0.3
    p[1, -1] = 1.4
    t[0, 3, 3] = 0.0
    p[1, 4, 4] = 1.0
    tv, pv = tf.Variable(t), tf.Variable(p)
    weights = tf.constant([0.7, -1.3])  # a non-trivial upstream gradient per sample
    with tf.GradientTape() as tape:
        value = tf.reduce_sum(weights * global_mutual_information(tv, pv, chunk_size=chunk))
    gt, gp = tape.gradient(value, [tv, pv])
    t64, p64 = tf.Variable(t.astype(np.float64)), tf.Variable(p.astype(np.float64))
    with tf.GradientTape() as tape:
        ref = tf.reduce_sum(tf.cast(weights, tf.float64) * dense_tf(t64, p64))
    rt, rp = tape.gradient(ref, [t64, p64])
    np.testing.assert_allclose(value, ref.numpy(), rtol=1e-4)
    for got, want in ((gt, rt), (gp, rp)):
        want = want.numpy()
        scale = np.abs(want).max()
        assert scale > 0
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-4 * scale)
    assert np.all(gp.numpy()[0, :2] == 0) and np.all(gp.numpy()[1, -1] == 0)


def test_gradient_in_tf_function_with_unknown_batch():
    t, p = related_pair((3, 9, 10, 11))

    @tf.function(input_signature=[tf.TensorSpec((None, 9, 10, 11), tf.float32)] * 2)
    def value_and_grad(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            v = tf.reduce_sum(L.GlobalMutualInformationLoss(chunk_size=128, reduction=None)(a, b))
        return v, tape.gradient(v, b)

    v, g = value_and_grad(t, p)
    b64 = tf.Variable(p.astype(np.float64))
    with tf.GradientTape() as tape:
        ref = -tf.reduce_sum(dense_tf(tf.constant(t.astype(np.float64)), b64))
    np.testing.assert_allclose(v, ref.numpy(), rtol=1e-4)
    want = tape.gradient(ref, b64).numpy()
    np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_self_information_exceeds_noise():
    a = RNG.random((2, 12, 12, 12)).astype(np.float32)
    noise = RNG.random((2, 12, 12, 12)).astype(np.float32)
    mi = L.GlobalMutualInformation(reduction=None)
    assert np.all(np.asarray(mi(a, a)) > np.asarray(mi(a, noise)) + 1.0)
    assert np.all(np.asarray(L.GlobalMutualInformationLoss(reduction=None)(a, a)) < 0)


def test_degenerate_inputs_finite():
    const = np.full((2, 8, 8, 8), 0.5, np.float32)
    zeros = np.zeros((2, 8, 8, 8), np.float32)
    image = RNG.random((2, 8, 8, 8)).astype(np.float32)
    for t, p in ((const, const), (zeros, zeros), (image, const), (const, image), (zeros, image)):
        pv = tf.Variable(p)
        with tf.GradientTape() as tape:
            value = L.GlobalMutualInformationLoss(chunk_size=100)(t, pv)
        grad = tape.gradient(value, pv)
        assert np.isfinite(value.numpy()) and np.all(np.isfinite(grad.numpy()))
        np.testing.assert_allclose(-value.numpy(), dense_np(t, p).mean(), rtol=1e-4, atol=1e-6)


def test_registry_and_bad_arguments():
    loss = REGISTRY.build_loss({"name": "gmi", "num_bins": 16, "sigma_ratio": 1.0})
    assert isinstance(loss, L.GlobalMutualInformationLoss) and loss.num_bins == 16
    for kwargs, match in (
        ({"num_bins": 1}, "num_bins"),
        ({"num_bins": 2.5}, "num_bins"),
        ({"sigma_ratio": -1}, "sigma_ratio"),
        ({"chunk_size": 0}, "chunk_size"),
    ):
        with pytest.raises(ValueError, match=match):
            L.GlobalMutualInformation(**kwargs)


def test_padded_chunks_in_tf_function_with_unknown_batch():
    t, p = related_pair((2, 3, 1009))

    @tf.function(input_signature=[tf.TensorSpec((None, 3, 1009), tf.float32)] * 2)
    def value_and_grad(a, b):
        with tf.GradientTape() as tape:
            tape.watch(b)
            v = tf.reduce_sum(global_mutual_information(a, b, chunk_size=100))
        return v, tape.gradient(v, b)

    v, g = value_and_grad(t, p)
    b64 = tf.Variable(p.astype(np.float64))
    with tf.GradientTape() as tape:
        ref = tf.reduce_sum(dense_tf(tf.constant(t.astype(np.float64)), b64))
    want = tape.gradient(ref, b64).numpy()
    np.testing.assert_allclose(v, ref.numpy(), rtol=1e-4)
    np.testing.assert_allclose(g, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
