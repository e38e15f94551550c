"""DeepReg's demo YAMLs, kept verbatim in tests/fixtures/deepreg_configs/, pass tfreg's config loader and checker
unchanged, and are the files the demos under demos/ train with.

The one-epoch training of each YAML on data in the release's layout is in test_deepreg_demo_training.py
(it runs the demo's demo_train.py, which merges DeepReg's quick config after the same YAML).
"""

import glob
import os
import re

import pytest

from tfreg.config.loader import load_configs
from tfreg.config.validate import validate_config

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(REPO_ROOT, "tests", "fixtures", "deepreg_configs")
CONFIGS = sorted(os.path.basename(p) for p in glob.glob(os.path.join(FIXTURES, "*.yaml")))
HEADER = re.compile(r"^# Copied verbatim from DeepRegNet/DeepReg (demos/(\w+)/(\w+\.yaml)) at commit ([0-9a-f]{40})\n")
#: (method, backbone, image shape or (moving, fixed) shapes, epochs) of each YAML, from DeepReg's demos
EXPECTED = {
    "grouped_mask_prostate_longitudinal_ddf.yaml": ("ddf", "local", [128, 128, 32], 5000),
    "grouped_mask_prostate_longitudinal_dvf.yaml": ("dvf", "local", [128, 128, 32], 5000),
    "grouped_mr_heart.yaml": ("ddf", "local", [128, 128, 28], 4000),
    "paired_ct_lung.yaml": ("ddf", "local", ([96, 96, 104], [96, 96, 104]), 8000),
    "paired_mrus_brain.yaml": ("ddf", "local", ([256, 256, 288], [256, 256, 288]), 2000),
    "paired_mrus_prostate.yaml": ("ddf", "local", ([69, 69, 64], [47, 63, 44]), 5000),
    "unpaired_ct_abdomen_comb.yaml": ("ddf", "unet", [77, 64, 102], 5000),
    "unpaired_ct_abdomen_unsup.yaml": ("ddf", "unet", [77, 64, 102], 5000),
    "unpaired_ct_abdomen_weakly.yaml": ("ddf", "unet", [77, 64, 102], 5000),
    "unpaired_ct_lung.yaml": ("ddf", "local", [96, 96, 104], 5000),
    "unpaired_mr_brain.yaml": ("dvf", "unet", [64, 64, 64], 200),
    "unpaired_us_prostate_cv.yaml": ("ddf", "local", [64, 100, 100], 6000),
}


def test_every_deepreg_demo_yaml_is_kept():
    assert CONFIGS == sorted(EXPECTED)


@pytest.mark.parametrize("name", CONFIGS)
def test_the_copy_names_its_source_and_is_the_demo_yaml(name):
    with open(os.path.join(FIXTURES, name), encoding="utf-8") as stream:
        text = stream.read()
    match = HEADER.match(text)
    assert match, f"{name}: the first line must name the DeepReg path and commit"
    assert match.group(3) == name
    # the demo folder trains with this very file
    with open(os.path.join(REPO_ROOT, match.group(1)), encoding="utf-8") as stream:
        assert stream.read() == text


@pytest.mark.parametrize("name", CONFIGS)
def test_tfreg_reads_the_yaml_unchanged(name, tmp_path):
    path = os.path.join(FIXTURES, name)
    before = sorted(os.listdir(FIXTURES))
    config = validate_config(load_configs(path, write_updated=False), check_dirs=False)
    assert sorted(os.listdir(FIXTURES)) == before  # nothing upgraded: no updated_<name> written
    method, backbone, shapes, epochs = EXPECTED[name]
    train, dataset = config["train"], config["dataset"]
    assert (train["method"], train["backbone"]["name"], train["epochs"]) == (method, backbone, epochs)
    if isinstance(shapes, tuple):
        assert (dataset["moving_image_shape"], dataset["fixed_image_shape"]) == shapes
    else:
        assert dataset["image_shape"] == shapes
    # DeepReg's explicit augmentation, loss names and optimiser are kept as written
    assert train["preprocess"]["data_augmentation"] == {"name": "affine"}
    assert train["optimizer"]["name"] == "Adam"
    assert train["loss"]["label"]["name"] == "dice" and train["loss"]["label"]["scales"] == [0, 1, 2, 4, 8, 16]
