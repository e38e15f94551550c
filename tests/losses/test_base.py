"""tfreg.losses.base and the registry entries: layout rule, signs, reductions, names, multi-scale mean."""

import numpy as np
import pytest
import scipy.ndimage as ndi
import tensorflow as tf

from tfreg import losses as L
from tfreg.losses.base import check_scales, to_channels_last
from tfreg.registry import REGISTRY

RNG = np.random.default_rng(0)

REGISTERED = {
    "lncc": ("LocalNormalizedCrossCorrelationLoss", -1),
    "gncc": ("GlobalNormalizedCrossCorrelationLoss", -1),
    "gmi": ("GlobalMutualInformationLoss", -1),
    "ssd": ("SumSquaredDifference", 1),
    "dice": ("DiceScoreLoss", -1),
    "jaccard": ("JaccardIndexLoss", -1),
    "cross-entropy": ("CrossEntropy", 1),
    "bending": ("BendingEnergy", 1),
    "gradient": ("GradientNorm", 1),
}
SCORES = {
    "lncc": L.LocalNormalizedCrossCorrelation,
    "gncc": L.GlobalNormalizedCrossCorrelation,
    "gmi": L.GlobalMutualInformation,
    "dice": L.DiceScore,
    "jaccard": L.JaccardIndex,
}


def test_every_deepreg_name_is_registered():
    assert set(REGISTERED) <= set(REGISTRY.names("loss_class"))
    for name, (cls_name, _) in REGISTERED.items():
        cls = REGISTRY.get("loss_class", name)
        assert cls.__name__ == cls_name
        assert cls is getattr(L, cls_name)


@pytest.mark.parametrize("name", [n for n in REGISTERED if n not in ("bending", "gradient")])
def test_image_losses_sign_name_and_reduction(name):
    t = RNG.random((3, 8, 9, 10)).astype(np.float32)
    p = np.clip(t + 0.2 * RNG.random(t.shape), 0, 1).astype(np.float32)
    loss = REGISTRY.build_loss({"name": name})
    assert loss.name == REGISTERED[name][0]
    per_sample = REGISTRY.build_loss({"name": name}, default_args={"reduction": None})(t, p)
    assert per_sample.shape == (3,)
    mean = loss(t, p)
    assert mean.shape == ()
    np.testing.assert_allclose(mean, np.mean(per_sample), rtol=1e-6)
    if name in SCORES:
        score = SCORES[name](reduction=None)(t, p)
        np.testing.assert_allclose(per_sample, -np.asarray(score), rtol=1e-6)
        assert SCORES[name]().name == SCORES[name].__name__
    else:
        assert np.all(np.asarray(per_sample) > 0)


def test_deformation_losses_from_registry():
    ddf = RNG.normal(size=(2, 7, 8, 9, 3)).astype(np.float32)
    for name in ("bending", "gradient"):
        loss = REGISTRY.build_loss({"name": name})
        assert loss.name == REGISTERED[name][0]
        assert loss(ddf).shape == (2,) and loss(inputs=ddf).shape == (2,)
        assert np.all(np.asarray(loss(inputs=ddf)) > 0)
        # built like every other loss, with reduction=None
        assert REGISTRY.build_loss({"name": name}, default_args={"reduction": None})(ddf).shape == (2,)
        np.testing.assert_allclose(
            REGISTRY.build_loss({"name": name, "reduction": "sum_over_batch_size"})(ddf), np.mean(loss(ddf)), rtol=1e-6
        )


def test_registry_kwargs_and_bad_kwargs():
    loss = REGISTRY.build_loss({"name": "lncc", "kernel_size": 5, "kernel_type": "triangular"})
    assert loss.kernel_size == 5 and loss.kernel_type == "triangular"
    assert REGISTRY.build_loss({"name": "gradient", "l1": True}).l1 is True
    assert REGISTRY.build_loss({"name": "dice", "scales": [0, 1], "kernel": "cauchy"}).scales == [0, 1]
    with pytest.raises(ValueError, match="kernel_sizes"):
        REGISTRY.build_loss({"name": "lncc", "kernel_sizes": 5})
    with pytest.raises(ValueError, match=r"kernel_type.*'box'.*rectangular"):
        REGISTRY.build_loss({"name": "lncc", "kernel_type": "box"})
    with pytest.raises(ValueError, match="kernel_size"):
        REGISTRY.build_loss({"name": "lncc", "kernel_type": "triangular", "kernel_size": 4})
    with pytest.raises(ValueError, match="num_bins"):
        REGISTRY.build_loss({"name": "gmi", "num_bins": 1})
    with pytest.raises(ValueError, match="sigma_ratio"):
        REGISTRY.build_loss({"name": "gmi", "sigma_ratio": 0})
    with pytest.raises(ValueError, match="scales"):
        REGISTRY.build_loss({"name": "ssd", "scales": []})
    with pytest.raises(ValueError, match="scales"):
        REGISTRY.build_loss({"name": "dice", "scales": [1, -2]})
    with pytest.raises(ValueError, match=r"kernel.*'box'.*cauchy"):
        REGISTRY.build_loss({"name": "dice", "kernel": "box"})
    with pytest.raises(ValueError, match="background_weight"):
        REGISTRY.build_loss({"name": "cross-entropy", "background_weight": 1.5})
    with pytest.raises(ValueError, match="smooth_nr"):
        REGISTRY.build_loss({"name": "jaccard", "smooth_nr": -1})
    with pytest.raises(ValueError, match="binary"):
        REGISTRY.build_loss({"name": "dice", "binary": "yes"})
    with pytest.raises(ValueError, match="l1"):
        REGISTRY.build_loss({"name": "gradient", "l1": 1})
    with pytest.raises(ValueError, match="reduction"):
        REGISTRY.build_loss({"name": "bending", "reduction": "max"})
    with pytest.raises(ValueError, match="spatial_dims"):
        REGISTRY.build_loss({"name": "ssd", "spatial_dims": 4})


def test_layout_rule():
    assert to_channels_last(tf.zeros((2, 5, 6)), None).shape == (2, 5, 6, 1)  # 2-D, no channels
    assert to_channels_last(tf.zeros((2, 5, 6, 7)), None).shape == (2, 5, 6, 7, 1)  # 3-D, no channels
    assert to_channels_last(tf.zeros((2, 5, 6, 7, 2)), None).shape == (2, 5, 6, 7, 2)
    assert to_channels_last(tf.zeros((2, 5, 6, 2)), 2).shape == (2, 5, 6, 2)  # 2-D with channels
    assert to_channels_last(tf.zeros((2, 5, 6)), 2).shape == (2, 5, 6, 1)
    assert to_channels_last(tf.zeros((2, 5, 6, 7)), 3).shape == (2, 5, 6, 7, 1)
    for shape, dims in [((2, 5), None), ((2, 5, 6, 7, 8, 9), None), ((2, 5, 6, 7, 8), 2), ((2, 5, 6), 3)]:
        with pytest.raises(ValueError, match="rank"):
            to_channels_last(tf.zeros(shape), dims)


def test_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        L.SumSquaredDifference()(np.zeros((1, 6, 6, 6), np.float32), np.zeros((1, 6, 6, 5), np.float32))


def test_check_scales():
    assert check_scales(None) is None
    assert check_scales(2) == [2]
    assert check_scales([0, 1.5, 2.0]) == [0, 1.5, 2]
    for bad in ([], [-1], ["1"], [float("nan")], True):
        with pytest.raises(ValueError, match="scales"):
            check_scales(bad)


def test_multiscale_is_mean_over_scales_before_negation():
    t = RNG.random((2, 12, 13)).astype(np.float32)
    p = RNG.random((2, 12, 13)).astype(np.float32)

    def smooth(x, s):
        r = int(3 * s)
        k = np.exp(-(np.arange(-r, r + 1) ** 2) / (2 * s * s))
        k /= k.sum()
        y = x.astype(np.float64)
        for a in (1, 2):
            y = ndi.correlate1d(y, k, axis=a, mode="constant")
        return y

    def dice(a, b):
        return (2 * np.sum(a * b, (1, 2)) + 1e-5) / (np.sum(a + b, (1, 2)) + 1e-5)

    expected = np.mean([dice(t, p), dice(smooth(t, 1), smooth(p, 1)), dice(smooth(t, 2.5), smooth(p, 2.5))], axis=0)
    np.testing.assert_allclose(L.DiceScore(scales=[0, 1, 2.5], reduction=None)(t, p), expected, rtol=1e-5)
    np.testing.assert_allclose(L.DiceScoreLoss(scales=[0, 1, 2.5], reduction=None)(t, p), -expected, rtol=1e-5)


def test_mixed_precision_inputs_are_computed_in_float32():
    t = RNG.random((2, 8, 8, 8)).astype(np.float16)
    p = RNG.random((2, 8, 8, 8)).astype(np.float16)
    out = L.LocalNormalizedCrossCorrelationLoss(reduction=None)(tf.constant(t), tf.constant(p))
    assert out.dtype == tf.float32
    ref = L.LocalNormalizedCrossCorrelationLoss(reduction=None)(t.astype(np.float32), p.astype(np.float32))
    np.testing.assert_allclose(out, ref, rtol=1e-6)
    ddf = tf.constant(RNG.normal(size=(1, 6, 6, 6, 3)).astype(np.float16))
    assert L.BendingEnergy()(ddf).dtype == tf.float32


def test_get_config_round_trip():
    for loss in (
        L.LocalNormalizedCrossCorrelationLoss(kernel_size=5, kernel_type="gaussian", spatial_dims=2),
        L.DiceScoreLoss(binary=True, background_weight=0.2, scales=[0, 1]),
        L.CrossEntropy(background_weight=0.3, smooth=1e-4, kernel="cauchy"),
        L.GlobalMutualInformationLoss(num_bins=16, chunk_size=1000),
    ):
        clone = type(loss).from_config(loss.get_config())
        assert clone.get_config() == loss.get_config()
    g = L.GradientNorm(l1=True)
    assert type(g).from_config(g.get_config()).l1 is True
