"""Attention gate and scSE blocks: NumPy references, identity cases, shapes and gradient flow, 2-D and 3-D."""

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tests.layers.test_fusion import np_resize, sigmoid
from tfreg.layers.blocks import AttentionGate, SCSEBlock

RNG = np.random.default_rng(8)


def np_strided_conv(x, kernel, r):
    """Valid convolution with kernel size = stride = r (non-overlapping blocks), (B, *S, C) -> (B, *S/r, F)."""
    ndim = x.ndim - 2
    b, c = x.shape[0], x.shape[-1]
    shape = [b]
    for a in range(ndim):
        shape += [x.shape[a + 1] // r, r]
    blocks = x.reshape(shape + [c])
    # move the in-block offsets to the end: (B, n0, n1, [n2], r0, r1, [r2], C)
    order = [0] + [1 + 2 * a for a in range(ndim)] + [2 + 2 * a for a in range(ndim)] + [2 * ndim + 1]
    blocks = blocks.transpose(order)
    return np.tensordot(blocks, kernel, axes=(list(range(ndim + 1, 2 * ndim + 2)), list(range(ndim + 1))))


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
def test_attention_gate_against_numpy(ndim):
    x = RNG.normal(size=(2,) + (8,) * ndim + (4,)).astype(np.float32)
    g = RNG.normal(size=(2,) + (4,) * ndim + (6,)).astype(np.float32)
    layer = AttentionGate(inter_channels=3)
    out = np.asarray(layer([x, g]))
    assert out.shape == x.shape
    wx = np.asarray(layer.theta_x.kernel, np.float64)
    wg, bg = np.asarray(layer.phi_g.kernel, np.float64).reshape(6, 3), np.asarray(layer.phi_g.bias, np.float64)
    wp, bp = np.asarray(layer.psi.kernel, np.float64).reshape(3, 1), np.asarray(layer.psi.bias, np.float64)
    q = np.maximum(np_strided_conv(x.astype(np.float64), wx, 2) + g @ wg + bg, 0)
    alpha = sigmoid(q @ wp + bp)
    np.testing.assert_allclose(out, np_resize(alpha, (8,) * ndim) * x, rtol=1e-4, atol=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
def test_attention_gate_identity_and_gradients(ndim):
    x = RNG.normal(size=(1,) + (8,) * ndim + (2,)).astype(np.float32)
    g = RNG.normal(size=(1,) + (4,) * ndim + (3,)).astype(np.float32)
    layer = AttentionGate()
    layer([x, g])
    # psi zero: alpha = sigmoid(b); a large bias passes x through unchanged, bias 0 halves it.
    layer.psi.kernel.assign(np.zeros(layer.psi.kernel.shape, np.float32))
    layer.psi.bias.assign(np.full((1,), 40.0, np.float32))
    np.testing.assert_allclose(np.asarray(layer([x, g])), x, rtol=1e-6)
    layer.psi.bias.assign(np.zeros((1,), np.float32))
    np.testing.assert_allclose(np.asarray(layer([x, g])), 0.5 * x, rtol=1e-6)
    # same-resolution gating (ratio 1) also works
    same = AttentionGate()
    assert np.asarray(same([x, RNG.normal(size=x.shape[:-1] + (3,)).astype(np.float32)])).shape == x.shape
    fresh = AttentionGate()
    fresh([x, g])
    _, grads = value_and_grads(lambda a, b: fresh([a, b]) ** 2, x, g)
    assert all(np.all(np.isfinite(gr)) and np.abs(gr).sum() > 0 for gr in grads)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("combine", ["add", "max"])
def test_scse_against_numpy(ndim, combine):
    x = RNG.normal(size=(2,) + (5,) * ndim + (6,)).astype(np.float32)
    layer = SCSEBlock(ratio=2, combine=combine)
    out = np.asarray(layer(x))
    w1, b1 = np.asarray(layer.squeeze.kernel, np.float64), np.asarray(layer.squeeze.bias, np.float64)
    w2, b2 = np.asarray(layer.excite.kernel, np.float64), np.asarray(layer.excite.bias, np.float64)
    ws, bs = np.asarray(layer.spatial.kernel, np.float64).reshape(6, 1), np.asarray(layer.spatial.bias, np.float64)
    z = sigmoid(np.maximum(x.reshape(2, -1, 6).mean(1) @ w1 + b1, 0) @ w2 + b2)
    cse = x * z.reshape((2,) + (1,) * ndim + (6,))
    sse = x * sigmoid(x @ ws + bs)
    ref = cse + sse if combine == "add" else np.maximum(cse, sse)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim", [2, 3])
def test_scse_identity_and_gradients(ndim):
    x = RNG.normal(size=(1,) + (4,) * ndim + (4,)).astype(np.float32)
    layer = SCSEBlock()
    layer(x)
    for w in layer.weights:
        w.assign(np.zeros(w.shape, np.float32))
    np.testing.assert_allclose(np.asarray(layer(x)), x, rtol=1e-6)
    fresh = SCSEBlock()
    fresh(x)
    _, (g,) = value_and_grads(lambda a: fresh(a) ** 2, x)
    assert np.all(np.isfinite(g)) and np.abs(g).sum() > 0


def test_validation_and_config():
    for cls, kwargs, word in [
        (AttentionGate, {"inter_channels": 0}, "inter_channels"),
        (SCSEBlock, {"ratio": 0}, "ratio"),
        (SCSEBlock, {"combine": "mul"}, "combine"),
    ]:
        with pytest.raises(ValueError, match=word):
            cls(**kwargs)
    with pytest.raises(ValueError, match="multiples"):
        AttentionGate()([np.zeros((1, 8, 8, 2), np.float32), np.zeros((1, 3, 4, 2), np.float32)])
    assert SCSEBlock.from_config(SCSEBlock(ratio=4, combine="max").get_config()).combine == "max"
    assert AttentionGate.from_config(AttentionGate(inter_channels=5).get_config()).inter_channels == 5
