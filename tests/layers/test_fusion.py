"""DFSA block: NumPy reference (1x1 weight branch), identity cases, shapes and gradient flow, 2-D and 3-D."""

import numpy as np
import pytest
from scipy.ndimage import map_coordinates

from tests.autodiff import value_and_grads
from tfreg.layers.fusion import DFSA

RNG = np.random.default_rng(4)


def np_resize(x, shape):
    """Half-pixel linear resize of (B, *S, C) with clamped source positions (TensorFlow's bilinear)."""
    src = [np.clip((np.arange(n) + 0.5) * (m / n) - 0.5, 0, m - 1) for n, m in zip(shape, x.shape[1:-1])]
    coords = np.meshgrid(*src, indexing="ij")
    return np.stack(
        [
            np.stack([map_coordinates(x[b, ..., c], coords, order=1, mode="nearest") for c in range(x.shape[-1])], -1)
            for b in range(x.shape[0])
        ]
    )


def sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
def test_against_numpy_with_pointwise_branch(ndim):
    fine_s, coarse_s = (8,) * ndim, (4,) * ndim
    coarse = RNG.normal(size=(2,) + coarse_s + (ndim,)).astype(np.float32)
    fine = RNG.normal(size=(2,) + fine_s + (ndim,)).astype(np.float32)
    layer = DFSA(filters=())
    out = np.asarray(layer([coarse, fine]))
    up = 2.0 * np_resize(coarse.astype(np.float64), fine_s)
    ref = np.empty_like(up)
    for c in range(ndim):
        conv = layer.branches[c][0]
        k, b = float(np.asarray(conv.kernel).ravel()[0]), float(np.asarray(conv.bias)[0])
        ref[..., c] = sigmoid(k * up[..., c] + b) * up[..., c] + fine[..., c]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
def test_identity_cases_and_shapes(ndim):
    fine_s, coarse_s = (8,) * ndim, (4,) * ndim
    fine = RNG.normal(size=(1,) + fine_s + (ndim,)).astype(np.float32)
    layer = DFSA()
    # A zero coarse field adds nothing: out = fine.
    out = np.asarray(layer([np.zeros((1,) + coarse_s + (ndim,), np.float32), fine]))
    assert out.shape == fine.shape
    np.testing.assert_allclose(out, fine, atol=1e-7)
    # Weights forced to 0.5 (last conv all zero): out = 0.5 * 2 * coarse + fine for a constant coarse field.
    for stack in layer.branches:
        stack[-1].kernel.assign(np.zeros(stack[-1].kernel.shape, np.float32))
        stack[-1].bias.assign(np.zeros(stack[-1].bias.shape, np.float32))
    shift = RNG.normal(size=ndim).astype(np.float32)
    coarse = np.ones((1,) + coarse_s + (ndim,), np.float32) * shift
    np.testing.assert_allclose(np.asarray(layer([coarse, fine])), fine + shift, rtol=1e-6, atol=1e-6)
    # ... and to 1 (large bias): out = 2 * coarse + fine, the plain up-sampled sum.
    for stack in layer.branches:
        stack[-1].bias.assign(np.full(stack[-1].bias.shape, 40.0, np.float32))
    np.testing.assert_allclose(np.asarray(layer([coarse, fine])), fine + 2 * shift, rtol=1e-6, atol=1e-6)
    assert layer.compute_output_shape([(None,) + coarse_s + (ndim,), (None,) + fine_s + (ndim,)]) == (
        None,
    ) + fine_s + (ndim,)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
def test_gradients_reach_both_fields(ndim):
    layer = DFSA(filters=(4,))
    coarse = RNG.normal(size=(1,) + (4,) * ndim + (ndim,)).astype(np.float32)
    fine = RNG.normal(size=(1,) + (8,) * ndim + (ndim,)).astype(np.float32)
    layer([coarse, fine])  # build
    _, grads = value_and_grads(lambda a, b: layer([a, b]) ** 2, coarse, fine)
    assert all(np.all(np.isfinite(g)) and np.abs(g).sum() > 0 for g in grads)


def test_gradients_reach_weights_tf():
    import tensorflow as tf

    layer = DFSA()
    coarse = tf.constant(RNG.normal(size=(1, 4, 4, 2)).astype(np.float32))
    fine = tf.constant(RNG.normal(size=(1, 8, 8, 2)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer([coarse, fine]) ** 2)
    grads = tape.gradient(loss, layer.trainable_weights)
    assert len(layer.trainable_weights) == 2 * 2 * 3  # 2 channels x 3 convs x (kernel, bias)
    assert all(g is not None and np.all(np.isfinite(g)) for g in grads)


def test_validation_and_config():
    for kwargs, word in [
        ({"filters": 3}, "filters"),
        ({"filters": [0]}, "filters"),
        ({"kernel_size": 2}, "kernel_size"),
        ({"activation": "nope"}, "activation"),
    ]:
        with pytest.raises(ValueError, match=word):
            DFSA(**kwargs)
    with pytest.raises(ValueError, match="DFSA"):
        DFSA()([np.zeros((1, 4, 4, 3), np.float32), np.zeros((1, 8, 8, 3), np.float32)])
    layer = DFSA.from_config(DFSA(filters=(8,), kernel_size=5).get_config())
    assert layer.filters == [8] and layer.kernel_size == 5


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("source", ["fine", "both"])
def test_weight_source_against_numpy(source):
    """The weights of the paper's text (from the fine field) and of both fields, with a 1x1 branch."""
    ndim = 2
    coarse = RNG.normal(size=(2, 4, 5, ndim)).astype(np.float32)
    fine = RNG.normal(size=(2, 8, 10, ndim)).astype(np.float32)
    layer = DFSA(filters=(), weight_source=source)
    out = np.asarray(layer([coarse, fine]))
    up = 2.0 * np_resize(coarse.astype(np.float64), (8, 10))
    ref = np.empty_like(up)
    for c in range(ndim):
        conv = layer.branches[c][0]
        k, b = np.asarray(conv.kernel).reshape(-1), float(np.asarray(conv.bias)[0])
        z = k[0] * fine[..., c] if source == "fine" else k[0] * up[..., c] + k[1] * fine[..., c]
        ref[..., c] = sigmoid(z + b) * up[..., c] + fine[..., c]
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-5)
    assert DFSA.from_config(layer.get_config()).weight_source == source
    with pytest.raises(ValueError, match="weight_source"):
        DFSA(weight_source="finest")
