"""Loading DeepReg 1.0 checkpoints (written with DeepReg's object graph, see deepreg_tree.py) into tfreg models:
every weight gets its value, and the forward pass equals DeepReg's recomputed with plain TensorFlow ops."""

import os

import numpy as np
import pytest

from tests.engine.deepreg_tree import (
    DeepRegTree,
    checkpoint_folder,
    deepreg_global_forward,
    deepreg_unet_forward,
    save_deepreg_checkpoint,
)
from tfreg.engine.checkpoint import CheckpointError, make_checkpoint, named_weights
from tfreg.engine.deepreg_checkpoint import (
    adapt_config,
    inspect_checkpoint,
    load_deepreg_checkpoint,
)
from tfreg.registry import REGISTRY

SIZE = (8, 10, 6)  # not multiples of 4: the decoder's output padding is exercised


def build_model(backbone: dict, method: str = "ddf", size=SIZE):
    model = REGISTRY.build_model(
        config=dict(
            name=method,
            moving_image_size=size,
            fixed_image_size=size,
            labeled=False,
            config={"backbone": dict(backbone), "loss": {"image": {"name": "ssd"}}},
        )
    )
    zeros = np.zeros((1,) + size, np.float32)
    model({"moving_image": zeros, "fixed_image": zeros, "indices": np.zeros((1, model.index_size), np.float32)})
    return model


def backbone_input(seed=1, size=SIZE):
    """(1, *size, 2): the moving and fixed images as the backbone sees them (same grid: no resize)."""
    return np.random.default_rng(seed).uniform(0, 1, (1,) + size + (2,)).astype(np.float32)


def assert_bijection(model, values):
    """Every model weight holds one checkpoint value and every value is used once (random values are distinct)."""
    remaining = {path: value for path, value in values.items()}
    for key, weight in named_weights(model).items():
        array = np.asarray(weight.numpy())
        matches = [p for p, v in remaining.items() if v.shape == array.shape and np.array_equal(v, array)]
        assert len(matches) == 1, f"{key} matches {matches}"
        del remaining[matches[0]]
    assert not remaining, f"checkpoint values not loaded: {sorted(remaining)}"


@pytest.mark.parametrize("functional", [True, False])
def test_localnet_checkpoint_loads_and_predicts_as_deepreg(tmp_path, functional):
    tree = DeepRegTree(seed=0)
    levels = [0, 1, 2]
    backbone = tree.unet(in_channels=2, nci=2, depth=2, extract_levels=levels, local=True)
    prefix = save_deepreg_checkpoint(backbone, checkpoint_folder(tmp_path, "local"), functional=functional)
    found = inspect_checkpoint(prefix)
    assert (found.version, found.backbone) == ("1.0", "local")
    assert found.backbone_path == ("model/_model/layer_with_weights-0" if functional else "model/layer_with_weights-0")

    train = {"backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": levels}}
    assert adapt_config(train, found) == {"decode_residual": True}
    model = build_model(train["backbone"])
    plan = load_deepreg_checkpoint(model, found)
    assert len(plan) == len(tree.values) == len(named_weights(model))
    assert_bijection(model, tree.values)
    # two places spelled out: the first encoder kernel, and the output convolution of level 0, which DeepReg
    # 1.0's Extraction stores as its convolution of level 2 (index 2), applied to the finest level
    weights = named_weights(model)
    np.testing.assert_array_equal(
        weights["backbone/encoders/0/0/conv/kernel"].numpy(), tree.values["_encode_convs/0/layer-0/_layer/kernel"]
    )
    np.testing.assert_array_equal(
        weights["backbone/out_convs/0/kernel"].numpy(), tree.values["_output_block/layers/2/layer-0/kernel"]
    )

    x = backbone_input()
    expected = deepreg_unet_forward(x, tree.values, 2, levels, local=True, image_size=SIZE)
    got = np.asarray(model.backbone(x, training=False))
    assert np.abs(expected).max() > 0.1  # a real signal, not a zero-initialised output
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_unet_checkpoint_with_concatenated_skips_predicts_as_deepreg(tmp_path):
    tree = DeepRegTree(seed=3)
    backbone = tree.unet(in_channels=2, nci=2, depth=2, extract_levels=[0], local=False, concat_skip=True)
    prefix = save_deepreg_checkpoint(backbone, checkpoint_folder(tmp_path, "unet"))
    found = inspect_checkpoint(prefix)
    assert found.backbone == "unet"
    train = {"backbone": {"name": "unet", "num_channel_initial": 2, "depth": 2, "concat_skip": True}}
    adapt_config(train, found)
    model = build_model(train["backbone"], method="dvf")
    load_deepreg_checkpoint(model, prefix)
    assert_bijection(model, tree.values)
    x = backbone_input(seed=4)
    expected = deepreg_unet_forward(x, tree.values, 2, [0], local=False, image_size=SIZE, concat_skip=True)
    got = np.asarray(model.backbone(x, training=False))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_globalnet_checkpoint_gives_deepreg_theta_and_ddf(tmp_path):
    tree = DeepRegTree(seed=5)
    backbone = tree.global_net(in_channels=2, nci=2, depth=2, image_size=SIZE)
    prefix = save_deepreg_checkpoint(backbone, checkpoint_folder(tmp_path, "global"))
    found = inspect_checkpoint(prefix)
    assert found.backbone == "global"
    train = {"backbone": {"name": "global", "num_channel_initial": 2, "extract_levels": [0, 1, 2]}}
    assert adapt_config(train, found) == {"encode_kernel_sizes": 3, "bottom_residual": True}
    model = build_model(train["backbone"])
    load_deepreg_checkpoint(model, prefix)
    assert_bijection(model, tree.values)
    x = backbone_input(seed=6)
    ddf, theta = model.backbone(x, training=False)
    expected_ddf, expected_theta = deepreg_global_forward(x, tree.values, 2, SIZE)
    np.testing.assert_allclose(np.asarray(theta), expected_theta, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(np.asarray(ddf), expected_ddf, rtol=1e-4, atol=1e-3)


def test_refused_loads_name_the_variables_and_assign_nothing(tmp_path):
    tree = DeepRegTree(seed=7)
    levels = [0, 1, 2]
    prefix = save_deepreg_checkpoint(
        tree.unet(in_channels=2, nci=2, depth=2, extract_levels=levels, local=True), checkpoint_folder(tmp_path, "a")
    )
    # tfreg's default LocalNet has no decoder residual blocks: DeepReg's have no place
    model = build_model({"name": "local", "num_channel_initial": 2, "extract_levels": levels})
    before = {k: v.numpy().copy() for k, v in named_weights(model).items()}
    with pytest.raises(CheckpointError) as err:
        load_deepreg_checkpoint(model, prefix)
    message = str(err.value)
    assert "no place in the model: _decode_convs/0/layer_with_weights-1/_layers/0/kernel," in message
    assert "decode_residual" in message
    assert all(np.array_equal(before[k], v.numpy()) for k, v in named_weights(model).items())

    # other channel counts: both shapes named
    model = build_model({"name": "local", "num_channel_initial": 4, "extract_levels": levels, "decode_residual": True})
    with pytest.raises(
        CheckpointError, match=r"backbone/encoders/0/0/conv/kernel \(7, 7, 7, 2, 4\) <- .*\(7, 7, 7, 2, 2\)"
    ):
        load_deepreg_checkpoint(model, prefix)

    # a UNet checkpoint into a LocalNet
    unet = save_deepreg_checkpoint(
        DeepRegTree(8).unet(in_channels=2, nci=2, depth=2, extract_levels=[0], local=False),
        checkpoint_folder(tmp_path, "b"),
    )
    model = build_model({"name": "local", "num_channel_initial": 2, "extract_levels": levels, "decode_residual": True})
    with pytest.raises(CheckpointError, match="DeepReg's 'unet' backbone .* is 'local'"):
        load_deepreg_checkpoint(model, unet)


def test_a_variable_missing_from_the_checkpoint_names_the_unfilled_weight(tmp_path):
    tree = DeepRegTree(seed=9)
    backbone = tree.unet(in_channels=2, nci=2, depth=2, extract_levels=[0, 1, 2], local=True)
    del getattr(backbone._decode_convs[1], "layer-1")._norms[0].beta  # no longer tracked, so not saved
    prefix = save_deepreg_checkpoint(backbone, checkpoint_folder(tmp_path, "c"))
    model = build_model(
        {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1, 2], "decode_residual": True}
    )
    with pytest.raises(CheckpointError, match="does not fill: backbone/decode_residuals/0/block1/norm/beta"):
        load_deepreg_checkpoint(model, prefix)


def test_nan_values_and_damaged_files_are_refused(tmp_path):
    import glob

    tree = DeepRegTree(seed=16)
    backbone = tree.unet(in_channels=2, nci=2, depth=1, extract_levels=[0, 1], local=True)
    getattr(backbone._encode_convs[0], "layer-0")._norm.beta.assign([np.nan, 0.0])
    prefix = save_deepreg_checkpoint(backbone, checkpoint_folder(tmp_path, "nan"))
    model = build_model(
        {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1], "decode_residual": True}, size=(8, 8, 8)
    )
    with pytest.raises(CheckpointError, match="NaN/infinite values in backbone/encoders/0/0/norm/beta"):
        load_deepreg_checkpoint(model, prefix)

    prefix = save_deepreg_checkpoint(
        DeepRegTree(17).unet(in_channels=2, nci=2, depth=1, extract_levels=[0, 1], local=True),
        checkpoint_folder(tmp_path, "cut"),
    )
    (data,) = glob.glob(prefix + ".data-*")
    with open(data, "r+b") as handle:
        handle.truncate(os.path.getsize(data) // 2)
    with pytest.raises(CheckpointError, match="cannot be read: its files are truncated or damaged"):
        load_deepreg_checkpoint(model, prefix)


def test_asymmetric_extract_levels_are_refused(tmp_path):
    tree = DeepRegTree(seed=10)
    prefix = save_deepreg_checkpoint(
        tree.unet(in_channels=2, nci=2, depth=3, extract_levels=[0, 1, 3], local=True),
        checkpoint_folder(tmp_path, "d"),
    )
    model = build_model(
        {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1, 3], "decode_residual": True},
        size=(8, 8, 8),
    )
    with pytest.raises(CheckpointError, match="indexes its levels from the wrong end"):
        load_deepreg_checkpoint(model, prefix)


def test_deepreg_01_and_tfreg_checkpoints_are_told_apart(tmp_path):
    import tensorflow as tf

    from tests.engine.deepreg_tree import Node

    # DeepReg 0.1's LocalNet (model.save_weights: the model is the root)
    old = Node()
    old._downsample_blocks = [Node()]
    old._downsample_blocks[0]._conv3d_block = Node()
    old._downsample_blocks[0]._conv3d_block.kernel = tf.Variable(np.ones((3, 3, 3, 2, 2), np.float32))
    old._extract_layers = [Node()]
    root = Node()
    setattr(root, "layer_with_weights-0", old)
    path = tf.train.Checkpoint(root=root).write(os.path.join(str(tmp_path), "weights-epoch10.ckpt"))
    found = inspect_checkpoint(path)
    assert (found.version, found.backbone) == ("0.1", "local")
    with pytest.raises(CheckpointError, match="DeepReg 0.1 local backbone"):
        adapt_config({"backbone": {"name": "local"}}, found)

    # a tfreg checkpoint holds no DeepReg backbone
    model = build_model({"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]})
    saved = make_checkpoint(model).write(os.path.join(str(tmp_path), "tfreg", "ckpt-1"))
    assert inspect_checkpoint(saved) is None
    with pytest.raises(CheckpointError, match="holds no DeepReg backbone"):
        load_deepreg_checkpoint(model, saved)
    assert inspect_checkpoint(os.path.join(str(tmp_path), "missing", "ckpt-3")) is None


def test_adapt_config_refuses_a_contradicting_config(tmp_path):
    tree = DeepRegTree(seed=11)
    found = inspect_checkpoint(
        save_deepreg_checkpoint(
            tree.unet(in_channels=2, nci=2, depth=1, extract_levels=[0, 1], local=True),
            checkpoint_folder(tmp_path, "e"),
        )
    )
    with pytest.raises(CheckpointError, match="decode_residual: True; the config sets False"):
        adapt_config({"backbone": {"name": "local", "decode_residual": False}}, found, "-k")
    with pytest.raises(CheckpointError, match="train.backbone.name is 'unet'"):
        adapt_config({"backbone": {"name": "unet"}}, found)


# ---------------------------------------------------------------------------------------------- wiring
def deepreg_demo_config(tmp_path, **train):
    """A DeepReg-style config (no tfreg options) over a tiny paired, unlabeled dataset on the model grid."""
    from tests.data.helpers import write_paired
    from tests.engine.deepreg_configs import write_config

    for split, ids in (("train", ["a", "b"]), ("test", ["c"])):
        write_paired(str(tmp_path / "data" / split), ids, moving_shape=SIZE, fixed_shape=SIZE, num_labels=None)
    split = lambda name: {"dir": str(tmp_path / "data" / name), "format": "nifti", "labeled": False}  # noqa: E731
    config = {
        "dataset": {
            "train": split("train"),
            "test": split("test"),
            "type": "paired",
            "moving_image_shape": list(SIZE),
            "fixed_image_shape": list(SIZE),
        },
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1, 2]},
            "loss": {"image": {"name": "ssd", "weight": 1.0}},
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-9},
            "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1},
            "epochs": 1,
            "save_period": 1,
            **train,
        },
    }
    return write_config(config, tmp_path / "deepreg.yaml")


def test_predict_with_a_deepreg_checkpoint_writes_deepregs_ddf(tmp_path):
    from tfreg.data.image_io import read_image
    from tfreg.engine.predict import predict

    tree = DeepRegTree(seed=12)
    prefix = save_deepreg_checkpoint(
        tree.unet(in_channels=2, nci=2, depth=2, extract_levels=[0, 1, 2], local=True),
        checkpoint_folder(tmp_path, "pretrained"),
    )
    config = deepreg_demo_config(tmp_path)
    out = predict(ckpt_path=prefix, config_path=config, split="test", log_dir=str(tmp_path / "logs"), exp_name="p")
    pair = os.path.join(out, "pair_0")
    moving, _ = read_image(os.path.join(pair, "moving_image.nii.gz"))
    fixed, _ = read_image(os.path.join(pair, "fixed_image.nii.gz"))
    ddf, _ = read_image(os.path.join(pair, "ddf.nii.gz"))
    # the backbone sees [moving, fixed] (DeepReg's concatenation order)
    x = np.stack([moving, fixed], -1)[None].astype(np.float32)
    expected = deepreg_unet_forward(x, tree.values, 2, [0, 1, 2], local=True, image_size=SIZE)[0]
    assert np.abs(expected).max() > 0.1
    np.testing.assert_allclose(ddf, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.mark.slow
def test_train_starts_from_a_deepreg_checkpoint_and_refuses_to_resume_it(tmp_path):
    import yaml

    from tfreg.engine.train import train

    tree = DeepRegTree(seed=13)
    prefix = save_deepreg_checkpoint(
        tree.unet(in_channels=2, nci=2, depth=2, extract_levels=[0, 1, 2], local=True),
        checkpoint_folder(tmp_path, "pretrained"),
    )
    config = deepreg_demo_config(tmp_path)
    with pytest.raises(CheckpointError, match="cannot resume from it.*train.init_from"):
        train(config_path=config, ckpt_path=prefix, log_dir=str(tmp_path / "logs"), exp_name="resume")
    assert not os.path.exists(tmp_path / "logs" / "resume")

    bad = deepreg_demo_config(tmp_path, init_from={"path": prefix, "parts": ["encoders"]})
    with pytest.raises(CheckpointError, match=r"holds one backbone: give parts: \[backbone\]"):
        train(config_path=bad, log_dir=str(tmp_path / "logs"), exp_name="bad")

    config = deepreg_demo_config(tmp_path, init_from={"path": prefix, "parts": ["backbone"]})
    model, exp = train(config_path=config, log_dir=str(tmp_path / "logs"), exp_name="init", verbose=0)
    weights = named_weights(model)
    # one epoch of Adam at learning rate 1e-9 moves a weight by about 1e-9: the kernels are DeepReg's
    for key, path in [
        ("backbone/encoders/0/0/conv/kernel", "_encode_convs/0/layer-0/_layer/kernel"),
        ("backbone/decode_residuals/1/block2/conv/kernel", "_decode_convs/0/layer-1/_layers/1/kernel"),
        ("backbone/out_convs/2/kernel", "_output_block/layers/0/layer-0/kernel"),
    ]:
        np.testing.assert_allclose(weights[key].numpy(), tree.values[path], atol=1e-6)
    with open(os.path.join(exp, "config.yaml")) as handle:
        assert yaml.safe_load(handle)["train"]["backbone"]["decode_residual"] is True


def test_register_starts_from_a_deepreg_checkpoint(tmp_path):
    """tfreg_register -k: the model loaded for the prealignment predicts DeepReg's DDF."""
    from tfreg.engine.pair_prediction import load_model

    tree = DeepRegTree(seed=14)
    prefix = save_deepreg_checkpoint(
        tree.unet(in_channels=2, nci=2, depth=2, extract_levels=[0, 1, 2], local=True),
        checkpoint_folder(tmp_path, "pretrained"),
    )
    model, moving_grid, fixed_grid = load_model(prefix, deepreg_demo_config(tmp_path))
    assert moving_grid == fixed_grid == SIZE
    x = backbone_input(seed=15)
    inputs = {"moving_image": x[..., 0], "fixed_image": x[..., 1], "indices": np.zeros((1, model.index_size), "f4")}
    expected = deepreg_unet_forward(x, tree.values, 2, [0, 1, 2], local=True, image_size=SIZE)
    got = np.asarray(model(inputs, training=False)["ddf"])
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())
