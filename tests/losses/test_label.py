"""dice, jaccard and cross-entropy against NumPy references written from DeepReg's formulas (contract §6)."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import tensorflow as tf

from tfreg import losses as L

EPS = 1e-5
RNG = np.random.default_rng(2)
LAYOUTS = [
    ((2, 12, 11), None, 2),
    ((2, 12, 11, 3), 2, 2),
    ((2, 10, 9, 8), None, 3),
    ((2, 10, 9, 8, 2), None, 3),
]


def soft_pair(shape):
    t = (RNG.random(shape) > 0.6).astype(np.float32)
    p = np.clip(0.7 * t + 0.5 * RNG.random(shape), 0, 1).astype(np.float32)
    return t, p


def flat(x, binary=False):
    x = x.reshape(x.shape[0], -1).astype(np.float64)
    return (x >= 0.5).astype(np.float64) if binary else x


def ref_dice(t, p, bg=0.0, binary=False, nr=EPS, dr=EPS):
    t, p = flat(t, binary), flat(p, binary)
    # weighted foreground + background Dice written out term by term
    fg_num, fg_den = 2 * (t * p).sum(1), (t + p).sum(1)
    bg_num, bg_den = 2 * ((1 - t) * (1 - p)).sum(1), ((1 - t) + (1 - p)).sum(1)
    return ((1 - bg) * fg_num + bg * bg_num + nr) / ((1 - bg) * fg_den + bg * bg_den + dr)


def ref_jaccard(t, p, bg=0.0, binary=False, nr=EPS, dr=EPS):
    t, p = flat(t, binary), flat(p, binary)
    inter, union = (t * p).sum(1), (t + p - t * p).sum(1)
    bg_inter = ((1 - t) * (1 - p)).sum(1)
    bg_union = ((1 - t) + (1 - p) - (1 - t) * (1 - p)).sum(1)
    return ((1 - bg) * inter + bg * bg_inter + nr) / ((1 - bg) * union + bg * bg_union + dr)


def ref_ce(t, p, bg=0.0, binary=False, smooth=EPS):
    t, p = flat(t, binary), flat(p, binary)
    fg = -np.mean(t * np.log(p + smooth), 1)
    if bg == 0:
        return fg
    return (1 - bg) * fg - bg * np.mean((1 - t) * np.log(1 - p + smooth), 1)


@pytest.mark.parametrize("shape,dims,ndim", LAYOUTS)
@pytest.mark.parametrize("bg", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("binary", [False, True])
def test_dice_jaccard_ce_match_reference(shape, dims, ndim, bg, binary):
    t, p = soft_pair(shape)
    kw = dict(binary=binary, background_weight=bg, spatial_dims=dims, reduction=None)
    np.testing.assert_allclose(L.DiceScore(**kw)(t, p), ref_dice(t, p, bg, binary), rtol=1e-5)
    np.testing.assert_allclose(L.DiceScoreLoss(**kw)(t, p), -ref_dice(t, p, bg, binary), rtol=1e-5)
    np.testing.assert_allclose(L.JaccardIndex(**kw)(t, p), ref_jaccard(t, p, bg, binary), rtol=1e-5)
    np.testing.assert_allclose(L.JaccardIndexLoss(**kw)(t, p), -ref_jaccard(t, p, bg, binary), rtol=1e-5)
    # atol: log(1 + EPS) in float32 is only good to ~6e-8 absolute (binary inputs hit p = 1 exactly)
    np.testing.assert_allclose(L.CrossEntropy(**kw)(t, p), ref_ce(t, p, bg, binary), rtol=1e-5, atol=1e-7)


def test_smoothing_arguments():
    t, p = soft_pair((2, 8, 8, 8))
    np.testing.assert_allclose(
        L.DiceScore(smooth_nr=0.5, smooth_dr=2.0, reduction=None)(t, p), ref_dice(t, p, nr=0.5, dr=2.0), rtol=1e-5
    )
    np.testing.assert_allclose(
        L.JaccardIndex(smooth_nr=0.5, smooth_dr=2.0, reduction=None)(t, p), ref_jaccard(t, p, nr=0.5, dr=2.0), rtol=1e-5
    )
    np.testing.assert_allclose(
        L.CrossEntropy(smooth=0.01, background_weight=0.5, reduction=None)(t, p),
        ref_ce(t, p, 0.5, smooth=0.01),
        rtol=1e-5,
    )
    with pytest.raises(ValueError, match="smooth"):
        L.CrossEntropy(smooth=0)


@pytest.mark.parametrize("shape,dims,ndim", LAYOUTS)
def test_multiscale_gaussian(shape, dims, ndim):
    t, p = soft_pair(shape)

    def smooth(x, s):
        if s == 0:
            return x
        r = int(3 * s)
        k = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * s * s))
        k /= k.sum()
        x = x.astype(np.float64)
        for a in range(1, ndim + 1):
            x = ndi.correlate1d(x, k, axis=a, mode="constant")
        return x

    scales = [0, 1, 2]
    for cls, ref in ((L.DiceScore, ref_dice), (L.JaccardIndex, ref_jaccard), (L.CrossEntropy, ref_ce)):
        expected = np.mean([ref(smooth(t, s), smooth(p, s), 0.2) for s in scales], axis=0)
        out = cls(background_weight=0.2, scales=scales, spatial_dims=dims, reduction=None)(t, p)
        np.testing.assert_allclose(out, expected, rtol=1e-5)


def test_analytic_cases():
    t = (RNG.random((2, 8, 8, 8)) > 0.5).astype(np.float32)
    np.testing.assert_allclose(L.DiceScore()(t, t), 1.0, rtol=1e-6)
    np.testing.assert_allclose(L.JaccardIndex()(t, t), 1.0, rtol=1e-6)
    np.testing.assert_allclose(L.DiceScoreLoss(binary=True)(t, t), -1.0, rtol=1e-6)
    disjoint = L.DiceScore(reduction=None)(t, 1 - t)
    np.testing.assert_allclose(disjoint, EPS / (t.reshape(2, -1).sum(1) + (1 - t).reshape(2, -1).sum(1) + EPS))
    assert np.all(np.asarray(disjoint) < 1e-7)
    assert np.all(np.asarray(L.JaccardIndex()(t, 1 - t)) < 1e-7)
    # bg = 1 scores the background only: the foreground of the prediction is irrelevant if t is empty ...
    np.testing.assert_allclose(L.DiceScore(background_weight=1.0)(np.zeros_like(t), np.zeros_like(t)), 1.0)
    # perfect prediction: cross-entropy ~ -log(1 + EPS)
    np.testing.assert_allclose(L.CrossEntropy()(t, t), np.mean(t) * -np.log(1 + EPS), atol=1e-7)


@pytest.mark.parametrize(
    "loss",
    [
        L.DiceScoreLoss(),
        L.DiceScoreLoss(background_weight=0.4, scales=[0, 1]),
        L.JaccardIndexLoss(),
        L.JaccardIndexLoss(background_weight=0.4, scales=[0, 1], kernel="cauchy"),
        L.CrossEntropy(),
        L.CrossEntropy(background_weight=0.4, scales=[0, 2]),
    ],
    ids=lambda x: x.name,
)
def test_degenerate_labels_finite_values_and_gradients(loss):
    zero = np.zeros((2, 8, 8, 8), np.float32)
    single = zero.copy()
    single[:, 3, 4, 5] = 1.0
    for t, p in ((zero, zero), (single, zero), (zero, single), (single, single)):
        pv = tf.Variable(p)
        with tf.GradientTape() as tape:
            value = loss(tf.constant(t), pv)
        grad = tape.gradient(value, pv)
        assert np.isfinite(value.numpy())
        assert grad is not None and np.all(np.isfinite(grad.numpy()))
    np.testing.assert_allclose(L.DiceScoreLoss()(zero, zero), -1.0)  # (0 + EPS) / (0 + EPS)
