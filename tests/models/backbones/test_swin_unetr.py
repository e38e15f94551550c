"""Swin UNETR: MONAI's parameter count, the WSSAMNet++ preset's size, training and prediction on tiny
volumes (TF and JAX), mixed precision, pretrained weights and refusals."""

import keras
import numpy as np
import pytest

from tfreg.models import SegmentationModel
from tfreg.models.backbones.swin_unetr import SWIN_UNETR_PRESETS, SwinUNETR

SIZE = (16, 16, 16)
#: small enough for tests: feature size 6 (heads of 3 channels), window 2, 3 stages
TINY = {"feature_size": 6, "depths": [1, 1, 1], "num_heads": [2, 4, 8], "window_size": 2}


def with_head(backbone, classes):
    """Parameters including the segmentation model's ``1^n`` head (weights and bias)."""
    return backbone.count_params() + backbone.out_channels * classes + classes


def test_base_preset_matches_monai_swin_unetr():
    # MONAI SwinUNETR(img_size 96^3, in 1, out 14, feature_size 48): 62.19 M. MONAI sizes the relative
    # position tables by the configured window 7 (13^3 rows); tfreg by the window clipped to the deepest
    # 6^3 grid (11^3 rows): 24 heads x 2 blocks x (13^3 - 11^3) rows fewer.
    backbone = SwinUNETR(image_size=(96, 96, 96), preset="base")
    backbone.build((None, 96, 96, 96, 1))
    unused_rows = 24 * 2 * (13**3 - 11**3)
    assert round((with_head(backbone, 14) + unused_rows) / 1e6, 2) == 62.19


def test_wssamnet_pp_preset_is_the_closest_standard_configuration_to_2_2_million():
    sizes = {}
    for feature_size in (6, 9, 12):
        backbone = SwinUNETR(image_size=(160, 192, 224), preset="wssamnet_pp", feature_size=feature_size)
        backbone.build((None, 160, 192, 224, 1))
        sizes[feature_size] = with_head(backbone, 5)
    assert SWIN_UNETR_PRESETS["wssamnet_pp"]["feature_size"] == min(sizes, key=lambda f: abs(sizes[f] - 2.2e6))
    assert 2.2e6 < sizes[9] < 2.4e6


def segmentation_model(size=SIZE, backbone=None):
    return SegmentationModel(
        moving_image_size=size,
        backbone=dict({"name": "swin_unetr"}, **(backbone or TINY)),
        head={"num_classes": 3, "activation": "softmax"},
        loss={"segmentation": {"name": "multiclass-dice", "weight": 1.0}},
    )


def ball_data(n, size=SIZE, seed=0):
    rng = np.random.default_rng(seed)
    grid = np.stack(np.meshgrid(*[np.arange(s, dtype="float32") for s in size], indexing="ij"), -1)
    images, labels = [], []
    for _ in range(2 * n):
        d = np.sqrt(((grid - rng.uniform(6, 10, len(size))) ** 2).sum(-1))
        images.append(np.exp(-(d**2) / 20.0))
        labels.append(np.stack([d < 3, (d >= 3) & (d < 5)], -1))
    images, labels = np.stack(images).astype("float32"), np.stack(labels).astype("float32")
    return {
        "moving_image": images[:n],
        "fixed_image": images[n:],
        "moving_label": labels[:n],
        "fixed_label": labels[n:],
    }


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
@pytest.mark.backend_agnostic
def test_trains_and_predicts_on_a_tiny_volume():
    keras.utils.set_random_seed(0)
    # two stages, so that the bottleneck is 2^3 voxels: TINY's three make it one voxel at 16^3, where its
    # instance norms cut its convolutions off (tests/layers/test_normalization.py)
    model = segmentation_model(backbone=dict(TINY, depths=[1, 1], num_heads=[2, 4]))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = ball_data(4)
    model.segment_images(data["moving_image"][:1])  # build
    variables = model.backbone.trainable_variables
    before = [keras.ops.convert_to_numpy(v).copy() for v in variables]
    history = model.fit(data, batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    # no stochastic depth (the preset's 0) and a head that is not zero-initialised: both steps reach every weight
    still = [v.path for v, a in zip(variables, before) if np.allclose(a, keras.ops.convert_to_numpy(v))]
    assert still == []
    probabilities = keras.ops.convert_to_numpy(model.segment_images(data["moving_image"][:2]))
    assert probabilities.shape == (2, *SIZE, 3)
    np.testing.assert_allclose(probabilities.sum(-1), 1.0, atol=1e-5)


@pytest.mark.parametrize("size", [(16, 16, 16), (18, 9, 13), (20, 12)])
def test_any_size_is_padded_and_cropped_back(size):
    backbone = SwinUNETR(image_size=size, **dict(TINY, window_size=2))
    y = np.asarray(backbone(np.random.default_rng(0).random((1, *size, 2)).astype("float32")))
    assert y.shape == (1, *size, 6) and np.isfinite(y).all()
    assert backbone.padded == tuple(-(-s // 16) * 16 for s in size)  # patch 2 x 2^3 stages


def test_config_round_trip_and_gradient_checkpointing():
    backbone = SwinUNETR(image_size=SIZE, **TINY, gradient_checkpointing=[True, False, True])
    clone = SwinUNETR.from_config(backbone.get_config())
    x = np.zeros((1, *SIZE, 1), "float32")
    backbone(x)
    clone(x)
    assert clone.get_config() == backbone.get_config()
    assert clone.count_params() == backbone.count_params()


@pytest.mark.slow
def test_mixed_float16_trains():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = segmentation_model()
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(ball_data(2), batch_size=2, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"]).all()
        assert model.backbone.encoder.compute_dtype == "float16"
    finally:
        keras.mixed_precision.set_global_policy("float32")


def test_pretrained_weights_load_and_a_mismatch_is_refused(tmp_path):
    x = np.random.default_rng(2).random((1, *SIZE, 1)).astype("float32")
    source = SwinUNETR(image_size=SIZE, **TINY)
    expected = np.asarray(source(x))
    path = str(tmp_path / "su.weights.h5")
    source.save_weights(path)
    np.testing.assert_allclose(np.asarray(SwinUNETR(image_size=SIZE, **TINY, weights=path)(x)), expected, atol=1e-6)
    with pytest.raises(ValueError, match="does not fit swin_unetr preset 'base'"):
        SwinUNETR(image_size=SIZE, **dict(TINY, feature_size=3, num_heads=1), weights=path)(x)
    with pytest.raises(ValueError, match="Keras weights file"):
        SwinUNETR(image_size=SIZE, **TINY, weights=str(tmp_path / "model.pth"))(x)


def test_refusals_name_the_problem():
    with pytest.raises(ValueError, match="unknown preset 'wssamnet'; known presets: base, wssamnet_pp"):
        SwinUNETR(image_size=SIZE, preset="wssamnet")
    with pytest.raises(
        ValueError, match=r"too small: every axis needs at least patch_size x 2\^\(stages - 1\) = 2 x 2\^3 = 16"
    ):
        SwinUNETR(image_size=(16, 16, 12))
    with pytest.raises(ValueError, match="not a multiple of its num_heads"):
        SwinUNETR(image_size=SIZE, feature_size=8)
