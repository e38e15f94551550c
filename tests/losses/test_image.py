"""lncc, gncc and ssd against NumPy/SciPy references written from DeepReg's formulas (contract §6)."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import tensorflow as tf

from tfreg import losses as L

EPS = 1e-5
RNG = np.random.default_rng(1)
# (input shape, spatial_dims argument, number of spatial axes)
LAYOUTS = [
    ((2, 12, 11), None, 2),
    ((2, 12, 11, 2), 2, 2),
    ((2, 10, 9, 8), None, 3),
    ((2, 10, 9, 8, 2), None, 3),
]


def ref_window(kind, size):
    x = np.arange(size, dtype=np.float64)
    if kind == "rectangular":
        return np.ones(size)
    if kind == "triangular":
        return (size + 1) // 2 - np.abs(x - (size - 1) / 2)
    return np.exp(-((x - (size - 1) / 2) ** 2) / (2 * (size / 3) ** 2))


def ref_lncc(t, p, ndim, kind="rectangular", size=9, nr=0.0, dr=EPS):
    t = t.astype(np.float64)
    p = p.astype(np.float64)
    if t.ndim == ndim + 1:
        t, p = t[..., None], p[..., None]
    k = ref_window(kind, size)
    volume = k.sum() ** ndim

    def s(x):
        # origin -1 for even sizes puts the centre tap at (size - 1) // 2: TF's SAME (DeepReg's) convention
        for a in range(1, ndim + 1):
            x = ndi.correlate1d(x, k, axis=a, mode="constant", cval=0.0, origin=(size - 1) // 2 - size // 2)
        return x

    ts, ps = s(t), s(p)
    cross = s(t * p) - ps * ts / volume
    tv = np.maximum(s(t * t) - ts**2 / volume, 0)
    pv = np.maximum(s(p * p) - ps**2 / volume, 0)
    return ((cross**2 + nr) / (tv * pv + dr)).reshape(t.shape[0], -1).mean(1)


def ref_gncc(t, p, nr=0.0, dr=EPS):
    t = t.reshape(t.shape[0], -1).astype(np.float64)
    p = p.reshape(p.shape[0], -1).astype(np.float64)
    cov = np.mean((p - p.mean(1, keepdims=True)) * (t - t.mean(1, keepdims=True)), 1)
    return (np.abs(cov) ** 2 + nr) / (p.var(1) * t.var(1) + dr)


def pair(shape, noise=0.5):
    t = RNG.random(shape).astype(np.float32)
    p = (t + noise * RNG.random(shape)).astype(np.float32)
    return t, p


@pytest.mark.parametrize("shape,dims,ndim", LAYOUTS)
@pytest.mark.parametrize("kind,size", [("rectangular", 9), ("triangular", 5), ("gaussian", 7), ("rectangular", 4)])
def test_lncc_matches_reference(shape, dims, ndim, kind, size):
    t, p = pair(shape)
    score = L.LocalNormalizedCrossCorrelation(kernel_size=size, kernel_type=kind, spatial_dims=dims, reduction=None)
    out = score(t, p)
    assert out.shape == (shape[0],)
    np.testing.assert_allclose(out, ref_lncc(t, p, ndim, kind, size), rtol=1e-5)
    loss = L.LocalNormalizedCrossCorrelationLoss(kernel_size=size, kernel_type=kind, spatial_dims=dims, reduction=None)
    np.testing.assert_allclose(loss(t, p), -np.asarray(out), rtol=1e-6)


def test_lncc_smoothing_arguments_and_channel_average():
    t, p = pair((1, 9, 10, 8, 3))
    out = L.LocalNormalizedCrossCorrelation(kernel_size=3, smooth_nr=0.1, smooth_dr=0.2, reduction=None)(t, p)
    np.testing.assert_allclose(out, ref_lncc(t, p, 3, size=3, nr=0.1, dr=0.2), rtol=1e-5)
    # several channels: the per-channel scores averaged
    per_channel = [
        L.LocalNormalizedCrossCorrelation(kernel_size=3, smooth_nr=0.1, smooth_dr=0.2, reduction=None)(
            t[..., c], p[..., c]
        )
        for c in range(3)
    ]
    np.testing.assert_allclose(out, np.mean(per_channel, axis=0), rtol=1e-5)


def test_lncc_identical_and_degenerate():
    # identical images with enough texture: every window's correlation is 1
    t = RNG.random((2, 16, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(L.LocalNormalizedCrossCorrelation(kernel_size=3)(t, t), 1.0, rtol=1e-3)
    np.testing.assert_allclose(L.LocalNormalizedCrossCorrelationLoss(kernel_size=3)(t, t), -1.0, rtol=1e-3)
    # constant images (zero padding: windows away from the border are constant): finite gradient
    c = tf.constant(np.full((1, 8, 8, 8), 0.5, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(c)
        value = L.LocalNormalizedCrossCorrelationLoss()(c, c)
    grad = tape.gradient(value, c)
    assert np.all(np.isfinite(grad)) and np.isfinite(value)
    zero = tf.zeros((1, 8, 8, 8))
    assert np.isfinite(L.LocalNormalizedCrossCorrelationLoss()(zero, tf.constant(t[:1, :8, :8, :8])))


@pytest.mark.parametrize("shape,dims,ndim", LAYOUTS)
def test_gncc_matches_reference(shape, dims, ndim):
    t, p = pair(shape)
    out = L.GlobalNormalizedCrossCorrelation(spatial_dims=dims, reduction=None)(t, p)
    np.testing.assert_allclose(out, ref_gncc(t, p), rtol=1e-5)
    np.testing.assert_allclose(
        L.GlobalNormalizedCrossCorrelationLoss(spatial_dims=dims, reduction=None)(t, p), -ref_gncc(t, p), rtol=1e-5
    )


def test_gncc_analytic_and_degenerate():
    t = RNG.random((2, 8, 8, 8)).astype(np.float32)
    # bounded: cov^2 = var var for p = a t + b, so the score is var var / (var var + EPS), just below 1
    for p in (3 * t + 1, -t):
        v = (t.reshape(2, -1).astype(np.float64).var(1) * p.reshape(2, -1).astype(np.float64).var(1)).mean()
        np.testing.assert_allclose(L.GlobalNormalizedCrossCorrelation()(t, p), v / (v + EPS), rtol=1e-4)
    c = tf.constant(np.full((2, 8, 8, 8), 0.3, np.float32))
    with tf.GradientTape() as tape:
        tape.watch(c)
        value = L.GlobalNormalizedCrossCorrelationLoss()(tf.constant(t), c)
    np.testing.assert_allclose(value, 0.0, atol=1e-6)  # bounded: 0 / (0 + EPS)
    assert np.all(np.isfinite(tape.gradient(value, c)))
    deepreg = L.GlobalNormalizedCrossCorrelationLoss(formula="deepreg")(tf.constant(t), c)
    np.testing.assert_allclose(deepreg, -1.0, rtol=1e-5)  # DeepReg's (0 + EPS) / (0 + EPS): a "perfect" match


def test_a_blank_prediction_is_not_a_match():
    """DeepReg's formulas score a blank (all-zero) prediction against any image as a perfect match (loss -1);
    the bounded default scores every empty window 0. References: the NumPy formulas above."""
    t = RNG.random((2, 12, 12, 12)).astype(np.float32)
    blank = np.zeros_like(t)
    for loss, ref in (
        (
            L.LocalNormalizedCrossCorrelationLoss(kernel_size=3, reduction=None),
            lambda **k: ref_lncc(t, blank, 3, size=3, **k),
        ),
        (L.GlobalNormalizedCrossCorrelationLoss(reduction=None), lambda **k: ref_gncc(t, blank, **k)),
    ):
        np.testing.assert_allclose(loss(t, blank), -ref(), atol=1e-6)
        np.testing.assert_allclose(loss(t, blank), 0.0, atol=1e-6)
        aligned = float(np.mean(loss(t, t)))
        assert aligned < -0.99  # the aligned pair stays the best answer
    # DeepReg's exact formula, kept behind formula: deepreg
    np.testing.assert_allclose(
        L.LocalNormalizedCrossCorrelationLoss(kernel_size=3, formula="deepreg", reduction=None)(t, blank),
        -ref_lncc(t, blank, 3, size=3, nr=EPS, dr=EPS),
        rtol=1e-5,
    )
    np.testing.assert_allclose(L.LocalNormalizedCrossCorrelationLoss(kernel_size=3, formula="deepreg")(t, blank), -1.0)
    with pytest.raises(ValueError, match="formula"):
        L.LocalNormalizedCrossCorrelationLoss(formula="deep-reg")


@pytest.mark.parametrize("shape,dims,ndim", LAYOUTS)
def test_ssd_matches_reference(shape, dims, ndim):
    t, p = pair(shape)
    expected = ((t.astype(np.float64) - p) ** 2).reshape(shape[0], -1).mean(1)
    np.testing.assert_allclose(L.SumSquaredDifference(spatial_dims=dims, reduction=None)(t, p), expected, rtol=1e-5)
    # multi-scale with the cauchy kernel, smoothing per channel along the spatial axes only
    tt = t if len(shape) == ndim + 2 else t[..., None]
    pp = p if len(shape) == ndim + 2 else p[..., None]
    values = []
    for s in (0, 1, 2):
        a, b = tt.astype(np.float64), pp.astype(np.float64)
        if s:
            r = int(5 * s)
            k = 1 / (1 + (np.arange(-r, r + 1) / s) ** 2)
            k /= k.sum()
            for ax in range(1, ndim + 1):
                a = ndi.correlate1d(a, k, axis=ax, mode="constant")
                b = ndi.correlate1d(b, k, axis=ax, mode="constant")
        values.append(((a - b) ** 2).reshape(shape[0], -1).mean(1))
    out = L.SumSquaredDifference(scales=[0, 1, 2], kernel="cauchy", spatial_dims=dims, reduction=None)(t, p)
    np.testing.assert_allclose(out, np.mean(values, axis=0), rtol=1e-5)


def test_ssd_gradient_finite_and_zero_at_identity():
    t = tf.constant(RNG.random((2, 8, 8, 8)).astype(np.float32))
    p = tf.Variable(t)
    with tf.GradientTape() as tape:
        value = L.SumSquaredDifference(scales=[0, 1])(t, p)
    np.testing.assert_allclose(value, 0.0, atol=1e-12)
    np.testing.assert_allclose(tape.gradient(value, p), 0.0, atol=1e-12)


def _blob_against_noise_mass_kept(formula: str) -> float:
    """Train a DDF model to register a smooth blob to pure noise with LNCC alone; the fraction of the blob's
    intensity that the warped image keeps. With no structure to match, DeepReg's formula is best served by
    warping the blob out of view (blank windows score 1)."""
    import keras
    from scipy import ndimage as ndimage_

    from tfreg.models import DDFModel

    n = 16
    rng = np.random.default_rng(0)
    fixed = rng.random((n, n, n)).astype("float32")
    blob = np.zeros((n, n, n), np.float32)
    blob[n // 2, n // 2, n // 2] = 1
    moving = ndimage_.gaussian_filter(blob, 3)
    moving = (moving / moving.max()).astype("float32")
    x = {
        "moving_image": np.repeat(moving[None], 2, 0),
        "fixed_image": np.repeat(fixed[None], 2, 0),
        "indices": np.zeros((2, 2), "float32"),
    }
    keras.utils.set_random_seed(0)
    model = DDFModel(
        (n,) * 3,
        (n,) * 3,
        index_size=2,
        config={
            "backbone": {"name": "local", "num_channel_initial": 4, "extract_levels": [0, 1, 2]},
            # LNCC alone: what the similarity itself rewards
            "loss": {"image": {"name": "lncc", "kernel_size": 5, "formula": formula, "weight": 1.0}},
        },
    )
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    model.fit(x, epochs=60, verbose=0)
    warped = keras.ops.convert_to_numpy(model(x)["pred_fixed_image"])[0]
    return float(warped.sum() / moving.sum())


@pytest.mark.slow
@pytest.mark.xfail(
    strict=False,
    reason="not robust, an open finding (2026-12-03): the fraction kept by the bounded formula depends on the seed "
    "and on the convolution kernels' rounding: seed 0 gives 1.73 with Eigen's kernels, 0.60 with oneDNN's (0.32 "
    "with the earlier gather resize); seeds 1 and 2 with oneDNN give 0.16 and 1.71. The blanking this test "
    "guards against still happens for some seeds; see the issue notes",
)
def test_training_with_the_default_lncc_does_not_learn_to_blank():
    """A pair whose best DeepReg-LNCC score comes from blanking: the default keeps the image in view."""
    assert _blob_against_noise_mass_kept("bounded") > 0.8
    assert _blob_against_noise_mass_kept("deepreg") < 0.6  # the flaw the default fixes (DeepReg's formula)
