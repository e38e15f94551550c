"""rigidity penalty (Staring 2007) against np.gradient references and analytic transforms."""

import numpy as np
import pytest
from scipy.ndimage import binary_dilation
from scipy.spatial.transform import Rotation

from tests.autodiff import value_and_grads
from tfreg.losses.rigidity import RigidityPenalty, rigidity_terms
from tfreg.registry import REGISTRY

RNG = np.random.default_rng(7)


def grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s, dtype=np.float64) for s in shape], indexing="ij"), -1)


def ref_terms(u):
    """p_BE, p_ON, p_JD of T = x + u for one sample u (*S, ndim), float64, with np.gradient."""
    u = u.astype(np.float64)
    ndim = u.shape[-1]
    d = [[np.gradient(u[..., c], axis=a) for a in range(ndim)] for c in range(ndim)]  # d[c][a] = du_c/dx_a
    J = np.stack([np.stack([d[c][a] + (c == a) for a in range(ndim)], -1) for c in range(ndim)], -2)
    jjt = np.einsum("...ca,...da->...cd", J, J)
    p_on = np.sum((jjt - np.eye(ndim)) ** 2, axis=(-2, -1))
    p_jd = (np.linalg.det(J) - 1.0) ** 2
    p_be = np.zeros(u.shape[:-1])
    for c in range(ndim):
        for a in range(ndim):
            for b in range(ndim):
                # The mixed terms appear twice (a, b) and (b, a): the formula's factor 2. Only the a <= b
                # order is taken (derivative along a then b), as the code does.
                if b < a:
                    continue
                w = 1.0 if a == b else 2.0
                p_be += w * np.gradient(d[c][a], axis=b) ** 2
    return p_be, p_on, p_jd


def rigid_ddf(spatial, rng):
    ndim = len(spatial)
    x = grid(spatial)
    if ndim == 2:
        t = rng.uniform(-np.pi, np.pi)
        R = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    else:
        R = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
    centre = (np.array(spatial) - 1) / 2.0
    T = (x - centre) @ R.T + centre + rng.normal(size=ndim) * 2
    return (T - x)[None].astype(np.float32)


SHAPES = [(8, 9), (8, 9, 10)]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_rigid_transform_is_zero(spatial):
    mask = np.zeros((1,) + spatial, np.float32)
    mask[(0,) + tuple(slice(2, 6) for _ in spatial)] = 1.0
    for _ in range(3):
        ddf = rigid_ddf(spatial, RNG)
        loss = RigidityPenalty()
        np.testing.assert_allclose(np.asarray(loss(ddf, mask)), 0.0, atol=1e-9)
        # and over the whole grid, edges included (one-sided differences are exact for linear fields)
        np.testing.assert_allclose(np.asarray(loss(ddf)), 0.0, atol=1e-9)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_non_rigid_transforms_are_positive(spatial):
    ndim = len(spatial)
    x = grid(spatial)
    scaling = (x * 0.2)[None].astype(np.float32)
    shear = np.zeros_like(x)
    shear[..., 0] = 0.3 * x[..., 1]
    random = RNG.normal(size=(1,) + spatial + (ndim,))
    loss = RigidityPenalty()
    for ddf in (scaling, shear[None], random):
        assert float(np.asarray(loss(ddf.astype(np.float32)))[0]) > 1e-3
    # Analytic scaling s = 1.2: p_ON = ndim (s^2 - 1)^2, p_JD = (s^ndim - 1)^2, p_BE = 0.
    expected = ndim * (1.44 - 1) ** 2 + (1.2**ndim - 1) ** 2
    np.testing.assert_allclose(np.asarray(loss(scaling)), [expected], rtol=1e-5)
    # A reflection is orthonormal but improper: p_ON = 0, p_JD = (-1 - 1)^2 = 4.
    reflect = np.zeros_like(x)
    reflect[..., 0] = -2.0 * x[..., 0]
    np.testing.assert_allclose(np.asarray(loss(reflect[None].astype(np.float32))), [4.0], rtol=1e-6)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_each_term_against_numpy(spatial):
    ndim = len(spatial)
    ddf = (RNG.normal(size=(2,) + spatial + (ndim,)) * 0.5).astype(np.float32)
    p_be, p_on, p_jd = [np.asarray(t) for t in rigidity_terms(ddf)]
    for b in range(2):
        r_be, r_on, r_jd = ref_terms(ddf[b])
        np.testing.assert_allclose(p_be[b], r_be, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(p_on[b], r_on, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(p_jd[b], r_jd, rtol=1e-4, atol=1e-5)
    # The loss: weighted sum, averaged in a soft mask.
    mask = RNG.uniform(size=(2,) + spatial).astype(np.float32)
    w = (0.5, 2.0, 3.0)
    loss = RigidityPenalty(bending_weight=w[0], orthonormality_weight=w[1], properness_weight=w[2])
    expected = []
    for b in range(2):
        p = sum(wi * ti for wi, ti in zip(w, ref_terms(ddf[b])))
        expected.append(np.sum(mask[b] * p) / (np.sum(mask[b]) + 1e-5))
    np.testing.assert_allclose(np.asarray(loss(ddf, mask)), expected, rtol=1e-4)
    np.testing.assert_allclose(np.asarray(loss(ddf, mask=mask[..., None])), expected, rtol=1e-4)
    # Single terms by weights.
    only_on = RigidityPenalty(bending_weight=0.0, properness_weight=0.0)
    np.testing.assert_allclose(np.asarray(only_on(ddf)), [ref_terms(ddf[b])[1].mean() for b in range(2)], rtol=1e-4)


@pytest.mark.backend_agnostic
def test_several_structures_mean_and_sum():
    spatial = (8, 8, 8)
    ddf = (RNG.normal(size=(1,) + spatial + (3,)) * 0.3).astype(np.float32)
    masks = np.zeros((1,) + spatial + (2,), np.float32)
    masks[0, 1:4, 1:4, 1:4, 0] = 1
    masks[0, 4:7, 2:7, 3:6, 1] = 1
    p = sum(ref_terms(ddf[0]))
    per = [np.sum(masks[0, ..., k] * p) / (np.sum(masks[0, ..., k]) + 1e-5) for k in range(2)]
    np.testing.assert_allclose(np.asarray(RigidityPenalty()(ddf, masks)), [np.mean(per)], rtol=1e-4)
    np.testing.assert_allclose(
        np.asarray(RigidityPenalty(structure_reduction="sum")(ddf, masks)), [np.sum(per)], rtol=1e-4
    )
    # threshold binarises a soft mask
    soft = masks[..., :1] * 0.7
    np.testing.assert_allclose(np.asarray(RigidityPenalty(threshold=0.5)(ddf, soft)), [per[0]], rtol=1e-4)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("spatial", SHAPES)
def test_unaffected_outside_mask(spatial):
    ndim = len(spatial)
    mask = np.zeros((1,) + spatial, np.float32)
    mask[(0,) + tuple(slice(3, 5) for _ in spatial)] = 1.0
    ddf = (RNG.normal(size=(1,) + spatial + (ndim,)) * 0.3).astype(np.float32)
    # Central differences of central differences reach 2 voxels: dilate by 2 (Chebyshev, full structure).
    near = binary_dilation(mask[0] > 0, structure=np.ones((3,) * ndim), iterations=2)
    changed = ddf.copy()
    changed[0][~near] += RNG.normal(size=(int((~near).sum()), ndim)).astype(np.float32) * 5
    loss = RigidityPenalty()
    np.testing.assert_allclose(np.asarray(loss(changed, mask)), np.asarray(loss(ddf, mask)), rtol=1e-6)
    # ... while a change 1 voxel next to the mask does change it.
    edge = ddf.copy()
    edge[(0, 2) + (3,) * (ndim - 1)] += 1.0
    assert abs(float(np.asarray(loss(edge, mask))[0]) - float(np.asarray(loss(ddf, mask))[0])) > 1e-4


@pytest.mark.backend_agnostic
def test_empty_mask_is_zero_with_finite_gradients():
    spatial = (8, 9)
    ddf = RNG.normal(size=(2,) + spatial + (2,)).astype(np.float32)
    mask = np.zeros((2,) + spatial, np.float32)
    loss = RigidityPenalty()
    value, (g_ddf, g_mask) = value_and_grads(lambda u, m: loss(u, m), ddf, mask)
    assert float(value) == 0.0
    assert np.all(np.isfinite(g_ddf)) and np.all(g_ddf == 0)
    assert np.all(np.isfinite(g_mask))
    # gradients inside a non-empty mask are finite and non-zero
    mask[:, 2:5, 2:6] = 1
    value, (g_ddf, _) = value_and_grads(lambda u, m: loss(u, m), ddf, mask)
    assert np.all(np.isfinite(g_ddf)) and np.abs(g_ddf).sum() > 0


def test_registered_and_validation():
    assert REGISTRY.get("loss_class", "rigidity") is RigidityPenalty
    loss = REGISTRY.build_loss({"name": "rigidity", "orthonormality_weight": 2.0})
    assert loss.orthonormality_weight == 2.0
    for kwargs, word in [
        ({"bending_weight": -1}, "bending_weight"),
        ({"structure_reduction": "max"}, "structure_reduction"),
        ({"threshold": 2}, "threshold"),
        ({"eps": 0.0}, "eps"),
    ]:
        with pytest.raises(ValueError, match=word):
            RigidityPenalty(**kwargs)
    with pytest.raises(ValueError, match="mask"):
        RigidityPenalty()(np.zeros((1, 8, 8, 2), np.float32), np.zeros((1, 7, 8), np.float32))
    cfg = RigidityPenalty(properness_weight=0.5).get_config()
    assert RigidityPenalty.from_config(cfg).properness_weight == 0.5


def test_keyword_mask_does_not_warn():
    import warnings

    ddf = np.zeros((1, 8, 8, 2), np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RigidityPenalty()(ddf, mask=np.ones((1, 8, 8), np.float32))
