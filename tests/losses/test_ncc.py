"""Global NCC (He, He and Cao 2022) against NumPy's Pearson correlation."""

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tfreg.losses.ncc import GlobalNCC, GlobalNCCLoss
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


@pytest.mark.parametrize("shape", [(2, 8, 9, 7), (2, 32, 32), (2, 16, 16, 2)])
def test_matches_pearson(shape):
    rng = np.random.default_rng(0)
    t = rng.random(shape).astype(np.float32)
    p = (0.6 * t + 0.4 * rng.random(shape)).astype(np.float32)
    out = np.asarray(GlobalNCC(spatial_dims=2 if len(shape) == 4 and shape[-1] == 2 else None, reduction=None)(t, p))
    ref = [np.corrcoef(t[i].ravel(), p[i].ravel())[0, 1] for i in range(2)]
    np.testing.assert_allclose(out, ref, rtol=1e-4)


def test_sign_registry_and_relation_to_gncc():
    rng = np.random.default_rng(1)
    t = rng.random((1, 10, 10, 10)).astype(np.float32)
    loss = REGISTRY.build_loss({"name": "ncc"}, {"reduction": None})
    np.testing.assert_allclose(np.asarray(loss(t, t)), [-1.0], atol=1e-4)
    np.testing.assert_allclose(np.asarray(loss(t, 1.0 - 2.0 * t)), [1.0], atol=1e-4)
    p = (t + rng.random(t.shape)).astype(np.float32)
    gncc = -np.asarray(REGISTRY.build_loss({"name": "gncc"}, {"reduction": None})(t, p))
    np.testing.assert_allclose(np.asarray(loss(t, p)) ** 2, gncc, rtol=1e-3)


def test_constant_images_finite_gradients():
    c = np.full((1, 8, 8, 8), 0.4, np.float32)
    value, grads = value_and_grads(lambda a, b: GlobalNCCLoss(reduction=None)(a, b), c, c)
    assert abs(value) < 1e-6 and all(np.all(np.isfinite(g)) for g in grads)


def test_bad_eps():
    with pytest.raises(ValueError, match="eps"):
        GlobalNCC(eps=-1.0)
