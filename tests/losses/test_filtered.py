"""The filtered-space wrapper against SciPy filters followed by NumPy similarity formulas."""

import numpy as np
import pytest
from scipy import ndimage

import tfreg.losses.ncc  # noqa: F401  (registers ncc)
from tests.autodiff import value_and_grads
from tfreg.losses.filtered import FilteredLoss
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


def np_gauss(x, sigma):
    r = int(3 * sigma)
    g = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * sigma**2))
    g /= g.sum()
    for a in range(x.ndim):
        x = ndimage.correlate1d(x, g, axis=a, mode="nearest")
    return x


def np_laplacian(x):
    p = np.pad(x, 1, mode="edge")
    c = tuple(slice(1, -1) for _ in range(x.ndim))
    out = -2 * x.ndim * x
    for a in range(x.ndim):
        for s in (-1, 1):
            out = out + np.roll(p, s, axis=a)[c]
    return out


def images(shape, seed=0):
    rng = np.random.default_rng(seed)
    t = ndimage.gaussian_filter(rng.random(shape), 1.5)
    p = ndimage.gaussian_filter(rng.random(shape), 1.5) + 0.5 * t
    return t.astype(np.float32), p.astype(np.float32)


@pytest.mark.parametrize("shape", [(32, 32), (12, 11, 10)])
def test_log_then_ssd_and_ncc(shape):
    t, p = images(shape)
    ft, fp = np_laplacian(np_gauss(t.astype(np.float64), 1.0)), np_laplacian(np_gauss(p.astype(np.float64), 1.0))
    ssd = REGISTRY.build_loss(
        {"name": "filtered", "filter": "log", "sigma": 1.0, "loss": {"name": "ssd"}}, {"reduction": None}
    )
    np.testing.assert_allclose(np.asarray(ssd(t[None], p[None])), [np.mean((ft - fp) ** 2)], rtol=1e-4)
    ncc = FilteredLoss(loss={"name": "ncc"}, filter="log", sigma=1.0, reduction=None)
    np.testing.assert_allclose(
        np.asarray(ncc(t[None], p[None])), [-np.corrcoef(ft.ravel(), fp.ravel())[0, 1]], rtol=1e-4
    )


def test_gaussian_laplacian_none_and_channels():
    t, p = images((16, 16, 2), 1)
    for name, f in [
        ("gaussian", lambda x: np.stack([np_gauss(x[..., c], 2.0) for c in range(2)], -1)),
        ("laplacian", lambda x: np.stack([np_laplacian(x[..., c]) for c in range(2)], -1)),
        ("none", lambda x: x),
    ]:
        loss = FilteredLoss(loss={"name": "ssd"}, filter=name, sigma=2.0, spatial_dims=2, reduction=None)
        ref = np.mean((f(t.astype(np.float64)) - f(p.astype(np.float64))) ** 2)
        np.testing.assert_allclose(np.asarray(loss(t[None], p[None])), [ref], rtol=1e-4, err_msg=name)


def test_lncc_yaml_entry_and_gradients():
    t, p = images((12, 12, 12), 2)
    loss = REGISTRY.build_loss(
        {"name": "filtered", "filter": "log", "sigma": 1.0, "loss": {"name": "lncc", "kernel_size": 5}}
    )
    value, (_, gp) = value_and_grads(lambda a, b: loss(a, b), t[None], p[None])
    assert -1.0 <= value < 0 and np.all(np.isfinite(gp)) and np.abs(gp).max() > 0
    assert loss.get_config()["loss"] == {"name": "lncc", "kernel_size": 5}


def test_bad_arguments():
    with pytest.raises(ValueError, match="filter"):
        FilteredLoss(loss={"name": "ssd"}, filter="sobel")
    with pytest.raises(ValueError, match="sigma"):
        FilteredLoss(loss={"name": "ssd"}, filter="log", sigma=0)
    with pytest.raises(ValueError, match="loss"):
        FilteredLoss(loss="ssd")
    with pytest.raises(ValueError, match="lnc"):
        FilteredLoss(loss={"name": "lnc"})
