"""tv, gradient-forward, folding and inverse-consistency against NumPy formulas and analytic fields."""

import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tfreg.losses.penalties import FoldingPenalty, ForwardGradientNorm, InverseConsistency, TotalVariation
from tfreg.registry import REGISTRY

RNG = np.random.default_rng(11)
SHAPES = [(8, 9), (6, 7, 8)]


def grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)


def fwd(u, axis):
    """u[i+1] - u[i] along spatial ``axis`` of (B, *S, C), every spatial axis cut to length s - 1."""
    ndim = u.ndim - 2
    d = np.diff(u, axis=axis + 1)
    index = [slice(None)] + [slice(None, -1)] * ndim + [slice(None)]
    index[axis + 1] = slice(None)
    return d[tuple(index)]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_tv_and_forward_gradient_against_numpy(spatial):
    ndim = len(spatial)
    u = RNG.normal(size=(2,) + spatial + (ndim,)).astype(np.float32)
    d = [fwd(u.astype(np.float64), a) for a in range(ndim)]
    ref_tv = sum(np.abs(x) for x in d).reshape(2, -1).mean(1)
    ref_l2 = sum(x**2 for x in d).reshape(2, -1).mean(1)
    ref_iso = np.sqrt(sum(x**2 for x in d) + 1e-8).reshape(2, -1).mean(1)
    np.testing.assert_allclose(np.asarray(TotalVariation()(u)), ref_tv, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(TotalVariation(isotropic=True)(u)), ref_iso, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ForwardGradientNorm()(u)), ref_l2, rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ForwardGradientNorm(l1=True)(u)), ref_tv, rtol=1e-5)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_tv_and_forward_gradient_linear_fields(spatial):
    ndim = len(spatial)
    A = RNG.normal(size=(ndim, ndim))
    u = (grid(spatial) @ A.T + RNG.normal(size=ndim))[None].astype(np.float32)
    np.testing.assert_allclose(np.asarray(TotalVariation()(u)), [np.abs(A).sum() / ndim], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(ForwardGradientNorm()(u)), [(A**2).sum() / ndim], rtol=1e-5)
    const = np.ones((1,) + spatial + (ndim,), np.float32) * 3.0
    assert float(np.asarray(TotalVariation()(const))[0]) == 0.0
    # in a spatial transformer's [-1, 1] units component c is scaled by 2 / (S_c - 1): row c of A too
    scaled = A * (2.0 / (np.asarray(spatial, np.float64) - 1))[:, None]
    np.testing.assert_allclose(
        np.asarray(TotalVariation(units="normalized")(u)), [np.abs(scaled).sum() / ndim], rtol=1e-5
    )
    with pytest.raises(ValueError, match="units"):
        TotalVariation(units="mm")


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_folding_known_folds(spatial):
    ndim = len(spatial)
    x = grid(spatial)
    # Mirror along axis 0: T_0 = -x_0, det J = -1 everywhere.
    mirror = np.zeros_like(x)
    mirror[..., 0] = -2 * x[..., 0]
    mirror = mirror[None].astype(np.float32)
    # Compression by 3 along axis 0 with reversal: T_0 = -2 x_0, det J = -2.
    strong = np.zeros_like(x)
    strong[..., 0] = -3 * x[..., 0]
    strong = strong[None].astype(np.float32)
    np.testing.assert_allclose(np.asarray(FoldingPenalty()(mirror)), [1.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(FoldingPenalty()(strong)), [2.0], rtol=1e-6)
    # Forward differences repeat the last plane (derivative 0 there, det J = 1): folds on s0 - 1 of s0 planes.
    frac = (spatial[0] - 1) / spatial[0]
    np.testing.assert_allclose(np.asarray(FoldingPenalty(mode="forward")(mirror)), [frac], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(FoldingPenalty(mode="forward")(strong)), [2.0 * frac], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(FoldingPenalty(penalty="squared")(strong)), [4.0], rtol=1e-6)
    np.testing.assert_allclose(np.asarray(FoldingPenalty(penalty="fraction")(mirror)), [1.0])
    # Scaling by 0.5 (det = 0.5^ndim > 0): no folding, but a margin above det J is penalised.
    half = (-0.5 * x)[None].astype(np.float32)
    assert float(np.asarray(FoldingPenalty()(half))[0]) == 0.0
    np.testing.assert_allclose(np.asarray(FoldingPenalty(margin=0.9)(half)), [0.9 - 0.5**ndim], rtol=1e-5)
    # A random field (folds in places), checked against a NumPy determinant of np.gradient.
    u = RNG.normal(size=(1,) + spatial + (ndim,)).astype(np.float32)
    grads = np.stack([np.stack(np.gradient(u[0, ..., c].astype(np.float64)), -1) for c in range(ndim)], -2)
    det = np.linalg.det(grads + np.eye(ndim))
    np.testing.assert_allclose(np.asarray(FoldingPenalty()(u)), [np.maximum(-det, 0).mean()], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(np.asarray(FoldingPenalty(penalty="fraction")(u)), [(det <= 0).mean()], atol=1e-6)


@pytest.mark.backend_agnostic
def test_folding_gradient_is_finite_and_pushes_unfold():
    x = grid((8, 8))
    u = np.zeros_like(x)
    u[..., 0] = -2 * x[..., 0]
    value, (g,) = value_and_grads(FoldingPenalty(), u[None].astype(np.float32))
    assert float(value) > 0 and np.all(np.isfinite(g)) and np.abs(g).sum() > 0


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_inverse_consistency_analytic(spatial):
    ndim = len(spatial)
    x = grid(spatial)
    centre = (np.array(spatial) - 1) / 2.0
    # T_f contracts by 0.9 about the centre (stays inside the grid), T_b expands by 1/0.9: exact inverses,
    # and linear interpolation of a linear field is exact.
    u_f = (-0.1 * (x - centre))[None].astype(np.float32)
    u_b = ((1 / 0.9 - 1) * (x - centre))[None].astype(np.float32)
    loss = InverseConsistency(symmetric=False)
    np.testing.assert_allclose(np.asarray(loss(u_f, u_b)), [0.0], atol=1e-9)
    # Constant shifts: u_f = t, u_b = s -> ||t + s||^2 everywhere (replicate boundary keeps s outside).
    t, s = RNG.normal(size=ndim), RNG.normal(size=ndim)
    ones = np.ones((1,) + spatial + (1,))
    u_t, u_s = (ones * t).astype(np.float32), (ones * s).astype(np.float32)
    np.testing.assert_allclose(np.asarray(InverseConsistency()(u_t, u_s)), [np.sum((t + s) ** 2)], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(InverseConsistency()([u_t, u_s])), [np.sum((t + s) ** 2)], rtol=1e-5)
    # u_b = 0: the forward term is mean ||u_f||^2, the backward one is 0 + ... = mean ||u_f(x)||^2 too.
    zero = np.zeros_like(u_f)
    ref = np.mean(np.sum(u_f[0].astype(np.float64) ** 2, -1))
    np.testing.assert_allclose(np.asarray(loss(u_f, zero)), [ref], rtol=1e-5)
    np.testing.assert_allclose(np.asarray(InverseConsistency()(u_f, zero)), [ref], rtol=1e-5)


@pytest.mark.backend_agnostic
def test_inverse_consistency_gradients():
    u_f = (RNG.normal(size=(1, 8, 8, 2)) * 0.5).astype(np.float32)
    u_b = (RNG.normal(size=(1, 8, 8, 2)) * 0.5).astype(np.float32)
    value, grads = value_and_grads(lambda a, b: InverseConsistency()(a, b), u_f, u_b)
    assert float(value) > 0
    assert all(np.all(np.isfinite(g)) and np.abs(g).sum() > 0 for g in grads)


def test_registered_and_validation():
    for name, cls in [
        ("tv", TotalVariation),
        ("gradient-forward", ForwardGradientNorm),
        ("folding", FoldingPenalty),
        ("inverse-consistency", InverseConsistency),
    ]:
        assert REGISTRY.get("loss_class", name) is cls
    assert REGISTRY.build_loss({"name": "folding", "penalty": "squared", "margin": 0.1}).margin == 0.1
    for cls, kwargs, word in [
        (FoldingPenalty, {"penalty": "abs"}, "penalty"),
        (FoldingPenalty, {"margin": -1}, "margin"),
        (FoldingPenalty, {"mode": "backward"}, "mode"),
        (TotalVariation, {"isotropic": 1}, "isotropic"),
        (ForwardGradientNorm, {"l1": "yes"}, "l1"),
        (InverseConsistency, {"symmetric": None}, "symmetric"),
    ]:
        with pytest.raises(ValueError, match=word):
            cls(**kwargs)
    with pytest.raises(ValueError, match="same shape"):
        InverseConsistency()(np.zeros((1, 8, 8, 2), np.float32), np.zeros((1, 8, 9, 2), np.float32))
    with pytest.raises(ValueError, match="ddf_backward"):
        InverseConsistency()(np.zeros((1, 8, 8, 2), np.float32))
    cfg = FoldingPenalty(penalty="fraction", mode="forward").get_config()
    again = FoldingPenalty.from_config(cfg)
    assert again.penalty_type == "fraction" and again.mode == "forward"
