"""tfreg.models.lapirn: the level tensors the losses see, the full-resolution outputs, labels and config errors."""

import copy

import keras
import numpy as np
import pytest

from tfreg.config import ConfigError, validate_config
from tfreg.models.lapirn import LapIRNModel

BACKBONE = {"name": "lapirn", "num_channels": 4, "num_residual_blocks": 1}
LOSS = {"image": {"name": "ssd", "weight": 2.0}, "regularization": {"name": "gradient-forward", "weight": 0.5}}


def model(size=(16, 16), labeled=False, backbone=BACKBONE, loss=LOSS):
    return LapIRNModel(
        moving_image_size=size,
        fixed_image_size=size,
        labeled=labeled,
        config={"backbone": dict(backbone), "loss": copy.deepcopy(loss)},
    )


def inputs(size=(16, 16), batch=2, labels=None, seed=0):
    rng = np.random.default_rng(seed)
    x = {
        "moving_image": rng.random((batch,) + size).astype("float32"),
        "fixed_image": rng.random((batch,) + size).astype("float32"),
        "indices": np.zeros((batch, 2), "float32"),
    }
    if labels is not None:
        x["moving_label"] = (rng.random((batch,) + size + labels) > 0.5).astype("float32")
        x["fixed_label"] = (rng.random((batch,) + size + labels) > 0.5).astype("float32")
    return x


def box_mean(a, factor):
    """``(B, *S)`` -> ``(B, *S / factor)``: the mean of each ``factor^n`` block (NumPy reference)."""
    shape = (a.shape[0],) + sum(((s // factor, factor) for s in a.shape[1:]), ())
    return a.reshape(shape).mean(axis=tuple(range(2, len(shape), 2)))


def test_full_level_tensors_are_deepreg_s():
    net = model(size=(8, 16, 8))
    x = inputs((8, 16, 8))
    out = net(x)
    assert tuple(out["ddf"].shape) == (2, 8, 16, 8, 3)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["ddf"]), 0.0)  # zero last convolutions
    for level, full in (("level_ddf", "ddf"), ("level_pred_fixed_image", "pred_fixed_image")):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(out[level]), keras.ops.convert_to_numpy(out[full]))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(out["level_fixed_image"]), x["fixed_image"])


def test_losses_are_computed_on_the_active_level_grid():
    """Stage 1 of 3 on 16x16: the image loss compares the 4x4 box means of the images (zero field at init),
    2 * mean((fixed_1 - moving_1)^2); the regulariser of a zero field is 0."""
    net = model()
    x = inputs()
    net.backbone.set_stage(1)
    out = net(x)
    assert tuple(out["level_ddf"].shape) == (2, 4, 4, 2)
    assert tuple(out["level_fixed_image"].shape) == (2, 4, 4) == tuple(out["level_pred_fixed_image"].shape)
    assert tuple(out["ddf"].shape) == (2, 16, 16, 2) and tuple(out["pred_fixed_image"].shape) == (2, 16, 16)
    fixed, moving = box_mean(x["fixed_image"], 4), box_mean(x["moving_image"], 4)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["level_fixed_image"]), fixed, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["level_pred_fixed_image"]), moving, atol=1e-6)
    total = float(net.loss_total(x, out))
    np.testing.assert_allclose(total, 2.0 * np.mean((fixed - moving) ** 2), rtol=1e-5)
    # at the full level, on the full grid
    net.backbone.set_stage(3)
    total = float(net.loss_total(x, net(x)))
    np.testing.assert_allclose(total, 2.0 * np.mean((x["fixed_image"] - x["moving_image"]) ** 2), rtol=1e-5)


@pytest.mark.parametrize("labels", [(), (3,)])
def test_labels_one_or_several_channels_are_warped_at_full_resolution(labels):
    net = model(labeled=True, loss=dict(LOSS, label={"name": "dice", "weight": 1.0}))
    net.backbone.set_stage(2)
    x = inputs(labels=labels)
    out = net(x)
    assert tuple(out["pred_fixed_label"].shape) == (2, 16, 16) + labels
    # a zero field warps nothing away
    np.testing.assert_allclose(keras.ops.convert_to_numpy(out["pred_fixed_label"]), x["moving_label"], atol=1e-6)
    assert np.isfinite(float(net.compute_loss(x, None, out)))


def test_needs_the_lapirn_backbone():
    with pytest.raises(ValueError, match="needs the lapirn backbone"):
        model(backbone={"name": "local", "num_channel_initial": 2, "extract_levels": [0]})


def test_config_refuses_another_backbone():
    config = {
        "dataset": {
            "train": {"dir": "d", "format": "nifti", "labeled": False},
            "type": "paired",
            "moving_image_shape": [16, 16, 16],
            "fixed_image_shape": [16, 16, 16],
        },
        "train": {
            "method": "lapirn",
            "backbone": {"name": "unet", "num_channel_initial": 2, "depth": 2},
            "loss": LOSS,
            "optimizer": {"name": "Adam", "learning_rate": 1e-4},
            "preprocess": {"batch_size": 1},
            "epochs": 2,
            "save_period": 1,
        },
    }
    with pytest.raises(ConfigError, match="train.backbone.name: method 'lapirn' needs the lapirn backbone"):
        validate_config(config, check_dirs=False)


def test_a_loss_too_large_for_the_coarsest_level_is_refused_at_build():
    # 16^3: level 1 works on 4^3, within macMIND's 4-voxel reach (distances 2 and 4)
    loss = {"image": {"name": "macmind"}, "regularization": {"name": "gradient", "weight": 0.5}}
    with pytest.raises(
        ValueError, match=r"loss/image_MacMINDLoss.*needs every spatial size > 4 voxels, got \(4, 4, 4\)"
    ):
        model(size=(16, 16, 16), loss=loss)
    built = model(size=(32, 32, 32), loss=loss)  # level 1 on 8^3 is fine
    assert built.tensor_shape("level_ddf") == (8, 8, 8, 3)
