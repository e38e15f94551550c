"""config/dfsa_*.yaml: the chest X-ray stages of He, He and Cao (2022) pass the config checker and agree with
each other (data folders, segmenter architecture, checkpoint and encoder paths)."""

import os

import pytest

from tfreg.config.loader import load_configs
from tfreg.config.validate import validate_config
from tfreg.registry import REGISTRY

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DATASETS = ("jsrt", "montgomery", "shenzhen")


def _config(name):
    return load_configs(os.path.join(REPO_ROOT, "config", name), write_updated=False)


@pytest.mark.parametrize("dataset", DATASETS)
def test_segmenter_config_is_valid_and_is_the_paper_set_up(dataset):
    config = validate_config(_config(f"dfsa_segmenter_{dataset}.yaml"), check_dirs=False)
    train = config["train"]
    assert train["method"] == "segmentation"
    assert train["backbone"] == {"name": "unet_segmenter", "channels": [16, 32, 64, 128, 256], "norm": "batch"}
    assert train["head"] == {"num_classes": 1, "activation": "sigmoid"}
    # CE + 1.75 ct, the contour norm as a root mean square
    assert train["loss"]["segmentation"] == {
        "name": "contour-ce",
        "weight": 1.0,
        "contour_weight": 1.75,
        "normalize": True,
    }
    assert train["optimizer"] == {"name": "Adam", "learning_rate": 1.0e-3}
    assert config["dataset"]["image_shape"] == [64, 64] and config["dataset"]["type"] == "unpaired"
    assert config["dataset"]["train"]["dir"] == f"data/{dataset}/64/train"
    assert config["dataset"]["test"]["dir"] == f"data/{dataset}/256/test"


@pytest.mark.parametrize("dataset", DATASETS)
def test_registration_config_matches_its_segmenter(dataset):
    registration = _config(f"dfsa_{dataset}.yaml")
    segmenter = _config(f"dfsa_segmenter_{dataset}.yaml")
    train = registration["train"]
    assert train["method"] == "dfsa" and train["backbone"] == {"name": "dfsa_unet", "num_branches": 4}
    assert train["segmenter"]["backbone"] == segmenter["train"]["backbone"]
    assert train["segmenter"]["head"] == segmenter["train"]["head"]
    assert train["segmenter"]["shared"] is True and train["segmenter"]["trainable"] is False
    assert train["attention"] == {"name": "masking", "binary": True}
    ckpt = train["init_from"]["path"]
    assert ckpt.startswith(f"logs/dfsa_segmenter_{dataset}/save/ckpt-")
    assert int(ckpt.rsplit("-", 1)[1]) == segmenter["train"]["epochs"]  # its last checkpoint
    assert train["init_from"]["parts"] == {"segmenter/backbone": "backbone", "segmenter/head": "head"}
    assert train["loss"]["image"] == [
        {"name": "ncc", "weight": 1.0},
        {"name": "ssim", "weight": 1.0, "padding": "same"},
    ]
    assert train["loss"]["label"] == [
        {"name": "cross-entropy", "weight": 1.0},
        {"name": "embedding", "weight": 0.1, "encoder": f"logs/dfsa_label_autoencoder_{dataset}/save/encoder.keras"},
    ]
    # 3.5 on the field in a spatial transformer's [-1, 1] units, as the paper's AC-RegNet-based code
    assert train["loss"]["regularization"] == {"name": "tv", "weight": 3.5, "units": "normalized"}
    assert train["preprocess"]["batch_size"] == 32 and train["optimizer"]["learning_rate"] == 1.0e-3
    # the same data (the registration pairs sample no single label)
    # (the registration test split takes every ordered pair: He, He and Cao's protocol)
    registration_data = dict(registration["dataset"])
    assert registration_data["test"].pop("pairs") == "all"
    assert {k: v for k, v in segmenter["dataset"].items() if k != "sample_label"} == registration_data
    if "dfsa" not in REGISTRY.names("model_class"):
        pytest.skip("train.method dfsa is not registered in this checkout: the config checker cannot check it yet")
    validate_config(registration, check_dirs=False)
