"""tfreg/engine/build.py: every label channel reaches the losses that score them (integer label maps and one-hot
files, NIfTI and HDF5), and check_label_channels refuses, before training, losses that want other channels."""

import os

import numpy as np
import pytest
import yaml

from tests.data.helpers import image, write_h5, write_nifti_folder
from tfreg.engine.build import build_loader, build_model, check_label_channels, split_dataset

SHAPE = (8, 8, 8)
IDS = ("a", "b", "c")


def label_maps(k, seed=0):
    """``{id: (moving map, fixed map)}``, integer values 0..k, every value present in each map."""
    rng = np.random.default_rng(seed)
    maps = {}
    for i in IDS:
        pair = []
        for _ in range(2):
            values = rng.integers(0, k + 1, SHAPE).astype(np.uint8)
            values.flat[: k + 1] = np.arange(k + 1)
            pair.append(values)
        maps[i] = tuple(pair)
    return maps


def one_hot(label_map, k):
    """The foreground channels of an integer map, by hand: channel c is ``map == c + 1``."""
    return np.stack([label_map == c for c in range(1, k + 1)], axis=-1).astype(np.float32)


def write_data(root, k, layout):
    """Paired data whose labels are integer maps (``layout`` ``nifti-map``) or one-hot files (``h5-one-hot``)."""
    maps = label_maps(k)
    arrays = {
        "moving_images": {i: image(SHAPE, 2 * n) for n, i in enumerate(IDS)},
        "fixed_images": {i: image(SHAPE, 2 * n + 1) for n, i in enumerate(IDS)},
    }
    if layout == "nifti-map":
        arrays["moving_labels"] = {i: m for i, (m, _) in maps.items()}
        arrays["fixed_labels"] = {i: f for i, (_, f) in maps.items()}
        for folder, values in arrays.items():
            write_nifti_folder(os.path.join(root, folder), values)
    else:
        arrays["moving_labels"] = {i: one_hot(m, k) for i, (m, _) in maps.items()}
        arrays["fixed_labels"] = {i: one_hot(f, k) for i, (_, f) in maps.items()}
        for folder, values in arrays.items():
            write_h5(os.path.join(root, folder + ".h5"), values)
    return maps


def config(root, k, layout, label=None, regularization=None, sample_label="stack"):
    split = {"dir": str(root), "format": "nifti" if layout == "nifti-map" else "h5", "labeled": True}
    dataset = {"train": split, "type": "paired", "moving_image_shape": list(SHAPE), "fixed_image_shape": list(SHAPE)}
    if layout == "nifti-map":
        dataset["num_labels"] = k  # integer maps 0..k read as k one-hot channels
    if sample_label is not None:
        dataset["sample_label"] = sample_label
    loss = {"label": label or {"name": "multiclass-dice", "weight": 1.0}}
    if regularization is not None:
        loss["regularization"] = regularization
    return {
        "dataset": dataset,
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]},
            "loss": loss,
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-3},
            "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1, "data_augmentation": None},
            "epochs": 1,
            "save_period": 1,
        },
    }


def check(cfg, split="train"):
    loader = build_loader(cfg, split, required=True)
    try:
        check_label_channels(cfg, loader, split)
    finally:
        loader.close()


@pytest.mark.parametrize("layout", ["nifti-map", "h5-one-hot"])
def test_every_label_channel_reaches_a_multi_class_loss(tmp_path, layout):
    k = 3
    maps = write_data(str(tmp_path), k, layout)
    cfg = config(tmp_path, k, layout)
    loader = build_loader(cfg, "train", required=True)
    try:
        check_label_channels(cfg, loader)
        batch = next(iter(split_dataset(cfg, loader, training=False, batch_size=2, repeat=False)))
        ids = [str(d[-1]) for d in loader.loader_moving_image.get_data_ids()]
        model = build_model(cfg, loader)
    finally:
        loader.close()
    assert batch["fixed_label"].shape == (2,) + SHAPE + (k,)
    for row, index in enumerate(batch["indices"].numpy()[:, 0].astype(int)):
        moving_map, fixed_map = maps[ids[index].split(".")[0]]
        np.testing.assert_array_equal(batch["moving_label"][row].numpy(), one_hot(moving_map, k))
        np.testing.assert_array_equal(batch["fixed_label"][row].numpy(), one_hot(fixed_map, k))
    inputs = {key: value.numpy() for key, value in batch.items()}
    outputs = model(inputs, training=False)
    total = float(model.loss_total(inputs, outputs))
    # independent reference: -mean over the batch and the k classes of each class's soft Dice
    from tfreg.losses.base import EPS

    t = inputs["fixed_label"].astype(np.float64)
    p = np.asarray(outputs["pred_fixed_label"], dtype=np.float64)
    assert p.shape == t.shape
    axes = (1, 2, 3)
    dice = (2 * np.sum(t * p, axis=axes) + EPS) / (np.sum(t, axis=axes) + np.sum(p, axis=axes) + EPS)
    assert dice.shape == (2, k)
    assert total == pytest.approx(-np.mean(dice), rel=1e-5)


@pytest.mark.parametrize(
    "k, label, regularization, match",
    [
        (
            3,
            {"name": "multiclass-cross-entropy", "weight": 1.0, "class_weights": [1.0, 1.0, 1.0, 1.0, 1.0]},
            None,
            r"'train' split: train.loss.label: 'multiclass-cross-entropy' wants 5 label channel\(s\) \(class_weights "
            r"has 5 class weights\), but the data gives 3 per sample",
        ),
        (
            3,
            {"name": "focal", "weight": 1.0, "multi_class": True, "alpha": [0.2, 0.8]},
            None,
            r"train.loss.label: 'focal' wants 2 label channel\(s\) \(alpha has 2 class weights\)",
        ),
        (
            1,
            {"name": "multiclass-dice", "weight": 1.0, "include_background": False},
            None,
            r"train.loss.label: 'multiclass-dice' wants at least 2 label channel\(s\) \(include_background: false "
            r"leaves out channel 0\), but the data gives 1",
        ),
        (
            3,
            None,
            [
                {"name": "bending", "weight": 0.1},
                {"name": "rigidity", "weight": 0.1, "mask": "moving_label", "channels": [0, 5]},
            ],
            r"train.loss.regularization\[1\]: 'rigidity' selects channels \[5\] of 'moving_label', but the data has 3 "
            r"label channel\(s\) \(indices 0..2\)",
        ),
    ],
)
@pytest.mark.parametrize("layout", ["nifti-map", "h5-one-hot"])
def test_a_loss_wanting_more_channels_than_the_data_is_refused(tmp_path, layout, k, label, regularization, match):
    write_data(str(tmp_path), k, layout)
    with pytest.raises(ValueError, match=match):
        check(config(tmp_path, k, layout, label=label, regularization=regularization))


@pytest.mark.parametrize("sample_label", [None, "all"])
def test_a_rigidity_mask_of_several_structures_needs_stacked_labels(tmp_path, sample_label):
    rigidity = [{"name": "bending", "weight": 0.1}, {"name": "rigidity", "weight": 0.1, "mask": "moving_label"}]
    dice = {"name": "dice", "weight": 1.0}
    write_data(str(tmp_path / "three"), 3, "nifti-map")
    with pytest.raises(
        ValueError,
        match=r"train.loss.regularization\[1\]: 'rigidity' takes 'mask' from 'moving_label', whose 3 label channels "
        r"are structures of one mask, but dataset.sample_label: .* gives one \(randomly sampled\) channel per sample",
    ):
        check(config(tmp_path / "three", 3, "nifti-map", dice, rigidity, sample_label=sample_label))
    check(config(tmp_path / "three", 3, "nifti-map", dice, rigidity, sample_label="stack"))
    # a single structure: one channel per sample is all of it
    write_data(str(tmp_path / "one"), 1, "h5-one-hot")
    check(config(tmp_path / "one", 1, "h5-one-hot", dice, rigidity, sample_label=sample_label))


def test_train_refuses_before_its_first_step_and_leaves_nothing(tmp_path):
    from tfreg.engine.train import train

    write_data(str(tmp_path / "data"), 3, "h5-one-hot")
    label = {"name": "multiclass-cross-entropy", "weight": 1.0, "class_weights": [1.0, 2.0]}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(config(tmp_path / "data", 3, "h5-one-hot", label=label)))
    with pytest.raises(ValueError, match="'multiclass-cross-entropy' wants 2 label channel"):
        train(config_path=str(path), log_dir=str(tmp_path / "logs"), exp_name="run", verbose=0)
    assert not os.path.exists(tmp_path / "logs" / "run")


def test_build_model_builds_the_losses_from_the_registry_it_is_given(tmp_path):
    # a loss registered only in a registry copy (a user's) must reach the model, not just the config checks
    import keras

    from tfreg.registry import REGISTRY

    class HalfSSD(keras.losses.Loss):
        def call(self, y_true, y_pred):
            return 0.5 * keras.ops.mean((y_true - y_pred) ** 2, axis=tuple(range(1, len(y_pred.shape))))

    registry = REGISTRY.copy()
    registry.register_loss(name="half-ssd", cls=HalfSSD)
    write_data(tmp_path, 2, "nifti-map")
    cfg = config(tmp_path, 2, "nifti-map")
    cfg["train"]["loss"] = {"image": {"name": "half-ssd", "weight": 1.0}}
    loader = build_loader(cfg, "train", required=True)
    try:
        model = build_model(cfg, loader, registry=registry)
    finally:
        loader.close()
    assert [type(w.loss) for w in model.weighted_losses] == [HalfSSD]
    assert not REGISTRY.contains("loss_class", "half-ssd")
