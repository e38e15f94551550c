"""The joint model (macJNet): labelled-pair selection, the loss tensors per visible/hidden pair against
NumPy references, where the gradients of each loss category go, the alternating schedule, and config errors."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf
import yaml
from scipy import ndimage

from tfreg.config import ConfigError, validate_config
from tfreg.engine.custom_loop import gradient_step
from tfreg.models import JointModel
from tfreg.models.joint import labeled_pairs, visible_pair_indices

SEGMENTER = {"backbone": {"name": "unet_segmenter", "channels": [4, 8]}, "head": {"num_classes": 1}}
LOSS = {
    "image": {"name": "ssd", "weight": 1.0},
    "label": {"name": "dice", "weight": 2.0},
    "regularization": {"name": "gradient", "weight": 0.5},
    "segmentation": {"name": "dice", "weight": 1.0, "smooth_nr": 0.0},
}


class ConstantShift(keras.layers.Layer):
    """A stand-in registration backbone: a constant DDF of ``shift`` voxels along axis 0, plus a trainable
    scalar so that gradients can reach it."""

    def __init__(self, shift, ndim, **kwargs):
        super().__init__(**kwargs)
        self.shift, self.ndim = float(shift), ndim
        self.scale = self.add_weight(shape=(), initializer="ones", name="scale")

    def call(self, x, training=None):
        one = keras.ops.ones_like(x[..., :1])
        zeros = keras.ops.zeros_like(x[..., :1])
        parts = [one * self.shift * self.scale] + [zeros] * (self.ndim - 1)
        return keras.ops.concatenate(parts, axis=-1)


def train_config(**joint):
    return {
        "backbone": {"name": "unet", "num_channel_initial": 4, "depth": 2},
        "segmenter": dict(SEGMENTER),
        "loss": dict(LOSS),
        "joint": joint,
    }


def batch(shape, seed=0, pairs=(0, 1)):
    rng = np.random.default_rng(seed)
    images = {k: rng.random((len(pairs),) + shape).astype("float32") for k in ("moving_image", "fixed_image")}
    labels = {k: (rng.random((len(pairs),) + shape) > 0.5).astype("float32") for k in ("moving_label", "fixed_label")}
    indices = np.stack([np.asarray(pairs, "float32"), np.zeros(len(pairs), "float32")], axis=1)
    return dict(images, **labels, indices=indices)


def numpy(outputs):
    return {k: keras.ops.convert_to_numpy(v) for k, v in outputs.items()}


def shifted(x, shift):
    """``x[i + shift]`` along axis 1 (the first spatial axis), zero outside: warp by a constant DDF."""
    offsets = [0, shift] + [0] * (x.ndim - 2)
    return ndimage.shift(x, [-o for o in offsets], order=1, mode="constant", cval=0.0)


def test_labeled_pairs_exact_count_reproducible_and_nested():
    for n, fraction in [(90, 0.3), (10, 0.05), (7, 1.0), (7, 0.0)]:
        visible = labeled_pairs(n, fraction, seed=3)
        assert visible.sum() == int(round(fraction * n))
        np.testing.assert_array_equal(visible, labeled_pairs(n, fraction, seed=3))
    small, large = labeled_pairs(90, 0.1, seed=1), labeled_pairs(90, 0.3, seed=1)
    assert np.all(large[small])  # a larger fraction keeps the smaller one's pairs
    assert not np.array_equal(labeled_pairs(90, 0.3, seed=1), labeled_pairs(90, 0.3, seed=2))
    with pytest.raises(ValueError, match="labeled_fraction"):
        labeled_pairs(10, 1.5)


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 8)])
def test_loss_tensors_of_visible_and_hidden_pairs(shape):
    ndim = len(shape)
    # 2 training pairs, half labelled: exactly one pair is visible
    model = JointModel(
        shape,
        shape,
        index_size=2,
        labeled=True,
        config=train_config(labeled_fraction=0.5, seed=0),
        backbone=ConstantShift(1, ndim),
        num_pairs=2,
        label_count=1,
    )
    x = batch(shape)
    visible = labeled_pairs(2, 0.5, seed=0)
    assert visible_pair_indices(model) == np.flatnonzero(visible).tolist()
    out = numpy(model(x, training=True))
    seg_m, seg_f = out["moving_segmentation"][..., 0], out["fixed_segmentation"][..., 0]
    np.testing.assert_allclose(out["ddf"][..., 0], 1.0)
    for b in range(2):
        if visible[b]:
            reg_m, reg_f = x["moving_label"][b], x["fixed_label"][b]
            target_f, target_m, pred_m = x["fixed_label"][b], x["moving_label"][b], seg_m[b]
        else:
            reg_m, reg_f = (seg_m[b] >= 0.5).astype("float32"), (seg_f[b] >= 0.5).astype("float32")
            target_f = shifted(seg_m[b : b + 1], 1)[0]  # the consistency target: seg_M warped by the field
            target_m = pred_m = np.zeros(shape, "float32")
        np.testing.assert_allclose(out["registration_fixed_label"][b], reg_f, atol=1e-6)
        np.testing.assert_allclose(out["registration_pred_fixed_label"][b], shifted(reg_m[None], 1)[0], atol=1e-5)
        np.testing.assert_allclose(out["segmentation_target"][b], target_f, atol=1e-5)
        np.testing.assert_allclose(out["segmentation_pred"][b], seg_f[b], atol=1e-6)
        np.testing.assert_allclose(out["segmentation_target"][2 + b], target_m, atol=1e-6)
        np.testing.assert_allclose(out["segmentation_pred"][2 + b], pred_m, atol=1e-6)
    np.testing.assert_allclose(out["pred_fixed_label"], shifted(x["moving_label"], 1), atol=1e-5)
    # validation and prediction see every label
    out = numpy(model(x, training=False))
    np.testing.assert_allclose(out["registration_fixed_label"], x["fixed_label"])
    np.testing.assert_allclose(out["segmentation_target"][2:], x["moving_label"])


def test_soft_pseudo_labels_and_fractions_0_and_1():
    shape = (8, 8)
    x = batch(shape)
    for fraction, expected in [(0.0, False), (1.0, True)]:
        model = JointModel(
            shape,
            shape,
            index_size=2,
            labeled=True,
            config=train_config(labeled_fraction=fraction, pseudo_labels="soft"),
            backbone=ConstantShift(0, 2),
            label_count=1,
        )
        out = numpy(model(x, training=True))
        reference = x["fixed_label"] if expected else out["fixed_segmentation"][..., 0]
        np.testing.assert_allclose(out["registration_fixed_label"], reference, atol=1e-6)


def _values(variables):
    return [keras.ops.convert_to_numpy(v).copy() for v in variables]


def _changed(before, variables):
    return [not np.array_equal(b, a) for b, a in zip(before, _values(variables))]


def test_each_phase_steps_only_its_own_network_and_gradients_stay_in_their_category():
    shape = (8, 8)
    model = JointModel(
        shape, shape, index_size=2, labeled=True, config=train_config(labeled_fraction=0.5), num_pairs=2, label_count=1
    )
    x = {k: tf.constant(v) for k, v in batch(shape).items()}
    model(x)
    groups = model.parameter_groups()
    # make the zero-initialised DDF head non-zero so that every loss depends on the registration network
    for v in model.backbone.trainable_variables:
        v.assign(v + 0.01)
    for category, reached, untouched in [
        ("label", "registration", "segmentation"),
        ("segmentation", "segmentation", "registration"),
    ]:
        with tf.GradientTape() as tape:
            loss = model.compute_loss(x=x, y_pred=model(x, training=True), categories=(category,))
        grads = tape.gradient(loss, groups[reached] + groups[untouched])
        n = len(groups[reached])
        assert any(g is not None and float(tf.reduce_max(tf.abs(g))) > 0 for g in grads[:n]), category
        assert all(g is None or float(tf.reduce_max(tf.abs(g))) == 0 for g in grads[n:]), category
    optimizers = {name: keras.optimizers.Adam(1e-2) for name in groups}
    steps = {
        "registration": gradient_step(
            model, optimizers["registration"], lambda: groups["registration"], ("image", "label", "regularization")
        ),
        "segmentation": gradient_step(
            model, optimizers["segmentation"], lambda: groups["segmentation"], ("segmentation",)
        ),
    }
    for phase, other in [("registration", "segmentation"), ("segmentation", "registration")]:
        before = {name: _values(vs) for name, vs in groups.items()}
        steps[phase](x)
        assert any(_changed(before[phase], groups[phase])), phase
        assert not any(_changed(before[other], groups[other])), phase


def _full_config(tmp_path, train, joint=None):
    return {
        "dataset": {
            "train": {"dir": str(tmp_path), "format": "nifti", "labeled": True},
            "type": "paired",
            "moving_image_shape": [8, 8, 8],
            "fixed_image_shape": [8, 8, 8],
        },
        "train": dict(
            train,
            method="joint",
            optimizers={
                "registration": {"name": "Adam", "learning_rate": 2e-5},
                "segmentation": {"name": "Adam", "learning_rate": 1e-5},
            },
            trainer={"name": "alternating"},
            preprocess={"batch_size": 1, "shuffle_buffer_num_batch": 1},
            epochs=1,
            save_period=1,
        ),
    }


@pytest.mark.parametrize(
    "change, message",
    [
        (
            lambda t: t["joint"].update(labeled_fraction=1.5),
            r"train\.joint\.labeled_fraction: must be a number in \[0, 1\]",
        ),
        (lambda t: t["joint"].update(fraction=0.3), r"train\.joint\.fraction: unknown key"),
        (lambda t: t["joint"].update(pseudo_labels="hard"), r"train\.joint\.pseudo_labels"),
        (lambda t: t["segmenter"].update(target="roi"), r"train\.segmenter\.target"),
        (lambda t: t.update(attention={"name": "masking"}), r"train\.attention"),
    ],
)
def test_config_errors_name_the_key(tmp_path, change, message):
    train = train_config(labeled_fraction=0.3)
    change(train)
    with pytest.raises(ConfigError, match=message):
        validate_config(_full_config(tmp_path, train), check_dirs=False)


def test_unlabeled_data_and_a_head_that_does_not_fit_the_labels_are_refused(tmp_path):
    config = _full_config(tmp_path, train_config(labeled_fraction=1.0))
    config["dataset"]["train"]["labeled"] = False
    with pytest.raises(ConfigError, match="needs labeled data"):
        validate_config(config, check_dirs=False)
    with pytest.raises(ValueError, match=r"train\.segmenter\.head\.num_classes=1 does not fit the data"):
        JointModel((8, 8), (8, 8), index_size=2, labeled=True, config=train_config(), label_count=3)
    with pytest.raises(ValueError, match="needs the number of training pairs"):
        JointModel((8, 8), (8, 8), index_size=2, labeled=True, config=train_config(labeled_fraction=0.3))


def test_swapped_segmenter_modalities_are_warned(tmp_path, caplog):
    saved = tmp_path / "seg_ct" / "save"
    saved.mkdir(parents=True)
    (saved / "config.yaml").write_text(yaml.safe_dump({"train": {"method": "segmentation", "modality": "CT"}}))
    train = train_config(labeled_fraction=0.3, moving_modality="MR", fixed_modality="CT")
    parts = {"moving_segmenter/backbone": "backbone", "moving_segmenter/head": "head"}
    train["init_from"] = [{"path": os.path.join(str(saved), "ckpt-1"), "parts": parts}]
    with caplog.at_level("WARNING"):
        validate_config(_full_config(tmp_path, train), check_dirs=False)
    assert "moving_segmenter" in caplog.text and "trained on CT" in caplog.text and "swapped" in caplog.text
    caplog.clear()
    train["init_from"][0]["parts"] = {"fixed_segmenter/backbone": "backbone", "fixed_segmenter/head": "head"}
    with caplog.at_level("WARNING"):
        validate_config(_full_config(tmp_path, train), check_dirs=False)
    assert "swapped" not in caplog.text
