"""NGF against a NumPy reference (numpy.gradient), analytic cases."""

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tfreg.losses.ngf import NGF, NGFLoss
from tfreg.registry import REGISTRY

pytestmark = pytest.mark.backend_agnostic


def np_ngf(t, p, eps):
    gt = np.stack(np.gradient(t.astype(np.float64)), -1)
    gp = np.stack(np.gradient(p.astype(np.float64)), -1)
    nt = gt / np.sqrt((gt**2).sum(-1, keepdims=True) + eps**2)
    np_ = gp / np.sqrt((gp**2).sum(-1, keepdims=True) + eps**2)
    return np.mean((nt * np_).sum(-1) ** 2)


@pytest.mark.parametrize("shape", [(32, 32), (10, 9, 8)])
def test_matches_reference(shape):
    rng = np.random.default_rng(0)
    t = rng.random(shape).astype(np.float32)
    p = (np.sqrt(t) + 0.3 * rng.random(shape)).astype(np.float32)
    out = np.asarray(NGF(epsilon=0.05, reduction=None)(t[None], p[None]))
    np.testing.assert_allclose(out, [np_ngf(t, p, 0.05)], rtol=1e-4)


def test_analytic_cases():
    x = np.meshgrid(np.arange(16.0), np.arange(16.0), indexing="ij")
    ramp0, ramp1 = x[0][None].astype(np.float32), x[1][None].astype(np.float32)
    loss = REGISTRY.build_loss({"name": "ngf", "epsilon": 1e-3}, {"reduction": None})
    # parallel (and inverted) gradients: n.n = +-1 / (1 + eps^2) ~ 1; orthogonal: 0
    np.testing.assert_allclose(np.asarray(loss(ramp0, 5 - 3 * ramp0)), [-1.0], atol=1e-5)
    np.testing.assert_allclose(np.asarray(loss(ramp0, ramp1)), [0.0], atol=1e-6)


def test_constant_gradients_finite():
    c = np.full((1, 8, 8, 8), 0.2, np.float32)
    value, grads = value_and_grads(lambda a, b: NGFLoss(reduction=None)(a, b), c, c)
    assert value == 0 and all(np.all(np.isfinite(g)) for g in grads)
    with pytest.raises(ValueError, match="epsilon"):
        NGF(epsilon=0)
