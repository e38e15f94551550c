"""SSIM against a SciPy reference (explicit Gaussian correlation, valid region)."""

import numpy as np
import pytest
from scipy import ndimage

from tests.autodiff import value_and_grads
from tfreg.losses.ssim import SSIM, SSIMLoss
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


def np_ssim(t, p, data_range=1.0, sigma=1.5, padding="valid"):
    r = int(3.5 * sigma + 0.5)
    g = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
    g /= g.sum()

    def filt(x):
        for a in range(x.ndim):
            x = ndimage.correlate1d(x, g, axis=a, mode="constant")
        return x if padding == "same" else x[tuple(slice(r, n - r) for n in x.shape)]

    t, p = t.astype(np.float64), p.astype(np.float64)
    mt, mp = filt(t), filt(p)
    vt, vp, cv = filt(t * t) - mt**2, filt(p * p) - mp**2, filt(t * p) - mt * mp
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return np.mean((2 * mt * mp + c1) * (2 * cv + c2) / ((mt**2 + mp**2 + c1) * (vt + vp + c2)))


@pytest.mark.parametrize("shape", [(32, 32), (16, 15, 14)])
def test_matches_reference(shape):
    rng = np.random.default_rng(0)
    t = ndimage.gaussian_filter(rng.random(shape), 1.0).astype(np.float32) * 200
    p = (t + 20 * rng.random(shape)).astype(np.float32)
    out = np.asarray(SSIM(data_range=255.0, reduction=None)(t[None], p[None]))
    np.testing.assert_allclose(out, [np_ssim(t, p, 255.0)], rtol=1e-4)
    assert abs(float(np.asarray(SSIM(data_range=255.0, reduction=None)(t[None], t[None]))[0]) - 1) < 1e-5


def test_loss_sign_gradients_and_small_input():
    rng = np.random.default_rng(2)
    t = rng.random((2, 24, 24)).astype(np.float32)
    p = rng.random((2, 24, 24)).astype(np.float32)
    loss = REGISTRY.build_loss({"name": "ssim"}, {"reduction": None})
    np.testing.assert_allclose(np.asarray(loss(t, p)), [-np_ssim(t[i], p[i]) for i in range(2)], rtol=1e-4)
    c = np.full((1, 12, 12, 12), 0.3, np.float32)
    value, grads = value_and_grads(lambda a, b: SSIMLoss(reduction=None)(a, b), c, c)
    assert abs(value + 1) < 1e-6 and all(np.all(np.isfinite(g)) for g in grads)
    with pytest.raises(ValueError, match="spatial size"):
        SSIM()(np.zeros((1, 8, 8, 8), np.float32), np.zeros((1, 8, 8, 8), np.float32))
    with pytest.raises(ValueError, match="data_range"):
        SSIM(data_range=0)


@pytest.mark.parametrize("shape", [(8, 8), (12, 10, 9)])
def test_same_padding_matches_zero_padded_reference(shape):
    """padding="same": every voxel, windows zero-padded (ssim-pytorch's conv2d with padding window//2); images
    smaller than the window are allowed."""
    rng = np.random.default_rng(3)
    t = rng.random(shape).astype(np.float32)
    p = np.clip(t + 0.2 * rng.random(shape), 0, 1).astype(np.float32)
    loss = REGISTRY.build_loss({"name": "ssim", "padding": "same"}, {"reduction": None})
    np.testing.assert_allclose(np.asarray(loss(t[None], p[None])), [-np_ssim(t, p, padding="same")], rtol=1e-4)
    # equal images still score 1: at every voxel, zero-padded windows included, numerator = denominator
    assert abs(float(np.asarray(SSIM(padding="same", reduction=None)(t[None], t[None]))[0]) - 1) < 1e-5
    with pytest.raises(ValueError, match="padding"):
        SSIM(padding="full")
