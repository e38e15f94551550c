"""config/rigidity_*.yaml: van Ulsen's four configurations (US, US-RP, WS, WS-RP) are the thesis' losses and
protocol, and each trains and predicts from config/ on tiny integer-label-map data."""

import glob
import os

import numpy as np
import pytest
import yaml

from tfreg.config.errors import ConfigError
from tfreg.config.loader import load_configs
from tfreg.config.validate import validate_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MI = {"name": "gmi", "num_bins": 24}
GRADIENT = {"name": "gradient", "weight": 2.0}
#: the thesis' Table (section 4.2): (MI weight, Dice weight or None, rigidity weight or None)
THESIS = {"us": (1.0, None, None), "us_rp": (1.0, None, 0.2), "ws": (0.5, 0.5, None), "ws_rp": (0.5, 0.5, 0.4)}


def _config(method):
    return load_configs(os.path.join(REPO_ROOT, "config", f"rigidity_{method}.yaml"), write_updated=False)


def _as_list(value):
    return value if isinstance(value, list) else [value]


@pytest.mark.parametrize("method", sorted(THESIS))
def test_each_configuration_is_the_thesis_set_up(method):
    config = validate_config(_config(method), check_dirs=False)
    mi_weight, dice_weight, rigidity_weight = THESIS[method]
    train, dataset = config["train"], config["dataset"]
    assert train["method"] == "ddf"
    assert train["backbone"] == {"name": "thesis_unet", "num_channel_initial": 4, "depth": 3}
    assert train["loss"]["image"] == dict(MI, weight=mi_weight)
    if dice_weight is None:
        assert train["loss"].get("label") is None
    else:
        assert train["loss"]["label"] == {"name": "multiclass-dice", "weight": dice_weight}
    regularizers = _as_list(train["loss"]["regularization"])
    assert regularizers[0] == GRADIENT
    if rigidity_weight is None:
        assert len(regularizers) == 1
    else:
        # the unwarped moving vertebrae, their union: one mean over every vertebra voxel
        assert regularizers[1] == {
            "name": "rigidity",
            "weight": rigidity_weight,
            "mask": "moving_label",
            "combine": "union",
        }
    assert train["optimizer"] == {"name": "Adam", "learning_rate": 4.0e-4, "beta_1": 0.9, "beta_2": 0.999}
    assert train["preprocess"]["batch_size"] == 1 and train["preprocess"]["data_augmentation"] is None
    assert train["epochs"] == 1000
    assert dataset["moving_image_shape"] == dataset["fixed_image_shape"] == [320, 320, 96]
    assert dataset["num_labels"] == 3 and dataset["sample_label"] == "stack"


def test_selecting_label_channels_needs_stacked_labels():
    config = _config("us_rp")
    config["dataset"]["sample_label"] = "sample"
    config["train"]["loss"]["regularization"][1]["channels"] = [0, 2]
    with pytest.raises(ConfigError, match=r"regularization\[1\]\.mask: selects channels \[0, 2\].*sample_label: stack"):
        validate_config(config, check_dirs=False)


def test_rigidity_on_unlabeled_data_is_refused():
    config = _config("us_rp")
    config["dataset"]["train"]["labeled"] = False
    config["dataset"]["valid"]["labeled"] = False
    with pytest.raises(ConfigError, match="takes 'mask' from 'moving_label'"):
        validate_config(config, check_dirs=False)


def _write_data(root, count=2, shape=(16, 16, 16)):
    """Paired integer label maps (0 = background, 1..3 = three boxes) with random images."""
    from tfreg.data.image_io import save_image

    rng = np.random.default_rng(0)
    for k in range(count):
        for role in ("moving", "fixed"):
            label = np.zeros(shape, np.uint8)
            shift = int(role == "fixed")
            label[3 + shift : 7, 3:7, 3:7] = 1
            label[8:12, 4 + shift : 9, 5:10] = 2
            label[4:8, 10:14, 9 + shift : 14] = 3
            for sub, array in ((f"{role}_images", rng.random(shape).astype(np.float32)), (f"{role}_labels", label)):
                os.makedirs(os.path.join(root, sub), exist_ok=True)
                save_image(array, os.path.join(root, sub, f"case{k}.nii.gz"))
    return root


@pytest.mark.slow
def test_the_four_configurations_train_and_predict_on_tiny_data(tmp_path):
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    splits = {s: _write_data(str(tmp_path / "data" / s)) for s in ("train", "valid", "test")}
    override = {
        "dataset": {
            **{s: {"dir": d} for s, d in splits.items()},
            "moving_image_shape": [16, 16, 16],
            "fixed_image_shape": [16, 16, 16],
        },
        "train": {"epochs": 1, "save_period": 1},
    }
    override_path = tmp_path / "tiny.yaml"
    override_path.write_text(yaml.safe_dump(override))
    for method in sorted(THESIS):
        config_path = os.path.join(REPO_ROOT, "config", f"rigidity_{method}.yaml")
        _, exp = train(config_path=[config_path, str(override_path)], log_dir=str(tmp_path), exp_name=method, verbose=0)
        ckpt = os.path.join(exp, "save", "ckpt-1")
        assert os.path.isfile(ckpt + ".index")
        predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path), exp_name=f"pred_{method}")
        out = tmp_path / f"pred_{method}" / "test"
        # stacked training labels are predicted one label channel per folder
        assert sorted(os.path.basename(p) for p in glob.glob(str(out / "pair_0" / "label_*"))) == [
            "label_0",
            "label_1",
            "label_2",
        ]
        assert (out / "metrics.csv").is_file()
