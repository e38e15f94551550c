"""tfreg_train with ``train.method: segmentation`` on DeepReg's unpaired labeled layout, from the WSSAMNet
segmenter config in ``config/`` merged with a data YAML (as a user runs it), resumed with ``-k``."""

import glob
import os
from pathlib import Path

import numpy as np
import pytest
import yaml

from tests.data.helpers import write_nifti_folder
from tfreg.data.image_io import read_image

REPO = Path(__file__).resolve().parents[2]
WSSAMNET = str(REPO / "config" / "wssamnet_segmenter.yaml")


def write_threshold_data(root, num_labels, count=4, shape=(8, 8, 8), seed=0, geometry=None):
    """``images/`` and ``labels/`` (NIfTI, with ``geometry``: default 1 mm): smooth random images; label channel
    ``c`` is ``image > 0.4 + 0.2 c``."""
    rng = np.random.default_rng(seed)
    images, labels = {}, {}
    for i in range(count):
        image = rng.random(shape)
        for axis in range(3):  # a little smoothing, so that the threshold gives blobs
            image = (image + np.roll(image, 1, axis) + np.roll(image, -1, axis)) / 3
        image = (image - image.min()) / (image.max() - image.min())
        images[f"case{i}"] = image.astype(np.float32)
        masks = np.stack([image > 0.4 + 0.2 * c for c in range(num_labels)], -1).astype(np.float32)
        labels[f"case{i}"] = masks[..., 0] if num_labels == 1 else masks
    write_nifti_folder(os.path.join(root, "images"), images, geometry=geometry)
    write_nifti_folder(os.path.join(root, "labels"), labels, geometry=geometry)
    return str(root)


def data_yaml(tmp, data_dir, **train):
    """The user's second YAML: data dirs and a tiny run (8^3, 2 epochs, no augmentation)."""
    config = {
        "dataset": {"train": {"dir": data_dir}, "valid": {"dir": data_dir}, "image_shape": [8, 8, 8]},
        "train": {
            "epochs": 2,
            "save_period": 1,
            "preprocess": {"batch_size": 2, "data_augmentation": None},
            "optimizer": {"learning_rate": 1.0e-2},
            **train,
        },
    }
    path = tmp / "data.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def checkpoints(exp):
    return sorted(os.path.basename(p) for p in glob.glob(os.path.join(exp, "save", "ckpt-*.index")))


def test_wssamnet_segmenter_config_loads_and_validates():
    from tfreg.config import load_configs, validate_config

    config = validate_config(load_configs(WSSAMNET, write_updated=False), check_dirs=False)
    train = config["train"]
    assert train["method"] == "segmentation"
    assert train["backbone"]["name"] == "unet_segmenter" and train["backbone"]["channels"] == [8, 16, 32]
    assert train["head"] == {"num_classes": 1, "activation": "sigmoid"}
    assert train["loss"]["segmentation"]["name"] == "focal"
    assert config["dataset"]["type"] == "unpaired"


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_train_and_resume_with_the_cli(tmp_path):
    from tfreg.cli.train import main

    data = write_threshold_data(tmp_path / "data", num_labels=1)
    extra = data_yaml(tmp_path, data)
    logs = str(tmp_path / "logs")
    assert main(["-c", WSSAMNET, extra, "--log_dir", logs, "-l", "run", "-v", "0"]) == 0
    exp = os.path.join(logs, "run")
    assert checkpoints(exp) == ["ckpt-1.index", "ckpt-2.index"]
    saved = yaml.safe_load(open(os.path.join(exp, "config.yaml")))
    assert saved["train"]["method"] == "segmentation" and saved["train"]["backbone"]["channels"] == [8, 16, 32]
    # the logs carry the segmentation loss and the Dice metric under DeepReg's naming
    from tests.engine.test_train import _event_tags

    for split in ("train", "validation"):
        tags = _event_tags(os.path.join(exp, split))
        for name in ("epoch_loss/segmentation_FocalLoss", "epoch_metric/Dice", "epoch_metric/fixed_label_mean"):
            assert name in tags, sorted(tags)
        assert "epoch_metric/TRE" not in tags
    # resume from ckpt-2 for one more epoch (-k, DeepReg's flag)
    assert (
        main(["-c", WSSAMNET, extra, "--log_dir", logs, "-l", "resumed", "-k", os.path.join(exp, "save", "ckpt-2")]
             + ["--max_epochs", "3", "-v", "0"])
        == 0
    )  # fmt: skip
    assert checkpoints(os.path.join(logs, "resumed")) == ["ckpt-3.index"]


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_resume_restores_the_segmenter_weights(tmp_path):
    import keras
    import tensorflow as tf

    from tfreg.engine.train import train

    data = write_threshold_data(tmp_path / "data", num_labels=2)
    extra = data_yaml(tmp_path, data, head={"num_classes": None})
    model, exp = train(config_path=[WSSAMNET, extra], log_dir=str(tmp_path / "logs"), exp_name="a", verbose=0)
    assert model.num_classes == 2  # read from the label files
    ckpt = os.path.join(exp, "save", "ckpt-1")
    reader = tf.train.load_checkpoint(ckpt)
    keys = [k for k in reader.get_variable_to_shape_map() if k.startswith("model/head/") and "OPTIMIZER" not in k]
    assert keys, sorted(reader.get_variable_to_shape_map())
    # resume from ckpt-1: when training starts again, the head holds the checkpoint's weights
    seen = {}

    class AtStart(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            seen.update(kernel=self.model.head.kernel.numpy().copy(), bias=self.model.head.bias.numpy().copy())

    train(
        config_path=[WSSAMNET, extra], ckpt_path=ckpt, log_dir=str(tmp_path / "logs"), exp_name="b", verbose=0,
        callbacks=[AtStart()],
    )  # fmt: skip
    saved = {k.split("/")[2]: reader.get_tensor(k) for k in keys}  # model/head/<name>/.ATTRIBUTES/...
    np.testing.assert_array_equal(seen["kernel"], saved["kernel"])
    np.testing.assert_array_equal(seen["bias"], saved["bias"])
    assert not np.array_equal(model.head.kernel.numpy(), saved["kernel"])  # epoch 2 had moved them

    # the trained segmenter's parts start another model (what train.init_from and composite models use)
    from tfreg.engine.checkpoint import restore_parts
    from tfreg.models import SegmentationModel

    fresh = SegmentationModel((8, 8, 8), config=model.config, label_count=2)
    fresh({"moving_image": np.zeros((1, 8, 8, 8), np.float32), "fixed_image": np.zeros((1, 8, 8, 8), np.float32)})
    counts = restore_parts(fresh, ckpt, ["backbone", "head"])
    assert counts["head"] == 2 and counts["backbone"] > 10
    np.testing.assert_array_equal(fresh.head.kernel.numpy(), saved["kernel"])


def test_more_label_channels_than_the_head_is_an_error_before_training(tmp_path):
    from tfreg.engine.train import train

    data = write_threshold_data(tmp_path / "data", num_labels=3)
    extra = data_yaml(tmp_path, data)  # the WSSAMNet config's head has num_classes 1
    logs = tmp_path / "logs"
    with pytest.raises(ValueError, match=r"head.num_classes=1 does not fit the data: the label files have 3 label"):
        train(config_path=[WSSAMNET, extra], log_dir=str(logs), exp_name="bad", verbose=0)
    assert not (logs / "bad").exists()


def test_unlabeled_data_is_a_config_error(tmp_path):
    from tfreg.config.errors import ConfigError
    from tfreg.engine.train import train

    data = write_threshold_data(tmp_path / "data", num_labels=1)
    extra = tmp_path / "unlabeled.yaml"
    extra.write_text(yaml.safe_dump({"dataset": {"train": {"dir": data, "labeled": False}, "valid": {"dir": data}}}))
    with pytest.raises(ConfigError, match=r"train.method: 'segmentation' learns from label maps and needs labeled"):
        train(config_path=[WSSAMNET, str(extra)], log_dir=str(tmp_path / "logs"), exp_name="x", verbose=0)


def test_multi_unets_tiles_that_do_not_divide_the_images_are_an_error_before_training(tmp_path):
    from tfreg.engine.train import train

    data = write_threshold_data(tmp_path / "data", num_labels=1)
    # one file (merging a second YAML would merge the two backbone sections key by key)
    config = yaml.safe_load(open(WSSAMNET))
    config["train"]["backbone"] = {"name": "multi_unets", "tiles": [3, 2, 2], "unet": {"channels": [2, 4]}}
    config["dataset"].update(train={"dir": data, "format": "nifti", "labeled": True}, image_shape=[8, 8, 8])
    del config["dataset"]["valid"]
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(config))
    logs = tmp_path / "logs"
    with pytest.raises(
        ValueError, match=r"train.backbone 'multi_unets' .*tiles \[3, 2, 2\] do not divide image_size \(8, 8, 8\)"
    ):
        train(config_path=str(path), log_dir=str(logs), exp_name="bad", verbose=0)
    assert not (logs / "bad").exists()


@pytest.mark.slow  # a whole training: the main CI step stays under 15 minutes
def test_trains_and_predicts_on_integer_label_maps(tmp_path):
    """``dataset.num_labels: 2``: label files are maps 0 / 1 / 2 (``image`` thresholded at 0.4 and 0.6); the
    softmax head gets 3 classes from the data, and the predicted masks have the two structures' channels."""
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    data = write_threshold_data(tmp_path / "data", num_labels=2)
    # the same structures as one integer map: 0 background, 1 = (> 0.4 only), 2 = (> 0.6), exclusive
    labels = os.path.join(data, "labels")
    maps = {}
    for name in sorted(os.listdir(labels)):
        masks, _ = read_image(os.path.join(labels, name))
        maps[name[: -len(".nii.gz")]] = (masks[..., 0] + masks[..., 1]).astype(np.uint8)
        os.remove(os.path.join(labels, name))
    write_nifti_folder(labels, maps)
    extra = data_yaml(tmp_path, data, head={"num_classes": None, "activation": "softmax"})
    config = yaml.safe_load(open(extra))
    config["dataset"].update(num_labels=2, test={"dir": data, "format": "nifti", "labeled": True})
    open(extra, "w").write(yaml.safe_dump(config))
    logs = str(tmp_path / "logs")
    model, exp = train(config_path=[WSSAMNET, extra], log_dir=logs, exp_name="maps", verbose=0)
    assert model.num_classes == 3 and model.activation == "softmax"
    out = predict(ckpt_path=os.path.join(exp, "save", "ckpt-2"), split="test", log_dir=logs, exp_name="pred")
    # the labels written beside the predictions are the channels (map == k)
    pair = sorted(p for p in os.listdir(out) if p.startswith("pair_"))[0]
    moving = int(pair.split("_")[1])
    name = sorted(maps)[moving]
    for k in (1, 2):
        written, _ = read_image(os.path.join(out, pair, f"label_{k - 1}", "moving_label.nii.gz"))
        np.testing.assert_array_equal(written, maps[name] == k)
    mask, _ = read_image(os.path.join(out, pair, "moving_segmentation_mask.nii.gz"))
    assert mask.shape == (8, 8, 8, 2)
    assert os.path.isfile(os.path.join(out, "segmentation_metrics.csv"))


def test_a_label_map_with_more_structures_than_the_head_is_an_error_before_training(tmp_path):
    from tfreg.engine.train import train

    data = write_threshold_data(tmp_path / "data", num_labels=1)
    rng = np.random.default_rng(0)
    labels = os.path.join(data, "labels")
    maps = {name[: -len(".nii.gz")]: rng.integers(0, 4, (8, 8, 8)).astype(np.uint8) for name in os.listdir(labels)}
    write_nifti_folder(labels, maps)
    extra = data_yaml(tmp_path, data)  # the WSSAMNet config's head: num_classes 1, sigmoid
    config = yaml.safe_load(open(extra))
    config["dataset"]["num_labels"] = 3
    open(extra, "w").write(yaml.safe_dump(config))
    logs = tmp_path / "logs"
    with pytest.raises(ValueError, match=r"head.num_classes=1 does not fit the data: the label files have 3 label"):
        train(config_path=[WSSAMNET, extra], log_dir=str(logs), exp_name="bad", verbose=0)
    assert not (logs / "bad").exists()
