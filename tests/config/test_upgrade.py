"""Tests for tfreg/config/upgrade.py: every v0.1.1 rule on its own, then a whole v0.1.1 config."""

import copy
import logging

import pytest
import yaml

from tfreg.config import Provenance, upgrade_config, upgrade_config_with_notes


def upgraded(config):
    new, changed = upgrade_config(config)
    assert changed
    return new


# ---------------------------------------------------------------------- dataset
def test_dataset_dir_per_split():
    old = {
        "dataset": {
            "dir": {"train": "data/train", "valid": "data/valid", "test": ["data/t1", "data/t2"]},
            "format": "nifti",
            "type": "paired",
            "labeled": True,
            "moving_image_shape": [16, 16, 16],
            "fixed_image_shape": [8, 8, 8],
        }
    }
    assert upgraded(old) == {
        "dataset": {
            "train": {"dir": "data/train", "format": "nifti", "labeled": True},
            "valid": {"dir": "data/valid", "format": "nifti", "labeled": True},
            "test": {"dir": ["data/t1", "data/t2"], "format": "nifti", "labeled": True},
            "type": "paired",
            "moving_image_shape": [16, 16, 16],
            "fixed_image_shape": [8, 8, 8],
        }
    }


def test_dataset_only_listed_splits_are_created():
    old = {"dataset": {"dir": {"train": "a", "test": ""}, "format": "h5", "labeled": False, "type": "unpaired"}}
    assert upgraded(old) == {
        "dataset": {
            "train": {"dir": "a", "format": "h5", "labeled": False},
            "test": {"dir": "", "format": "h5", "labeled": False},
            "type": "unpaired",
        }
    }


def test_dataset_existing_split_keys_win_over_upgraded_ones():
    # A v0.1.1 base file merged with a 1.0 override of one split.
    old = {"dataset": {"dir": {"train": "old"}, "format": "h5", "labeled": True, "train": {"dir": "new"}}}
    assert upgraded(old) == {"dataset": {"train": {"dir": "new", "format": "h5", "labeled": True}}}


# ---------------------------------------------------------------------- model
def test_model_local_becomes_method_and_backbone():
    old = {
        "train": {
            "model": {
                "method": "ddf",
                "backbone": "local",
                "local": {"num_channel_initial": 16, "extract_levels": [0, 1, 2, 3]},
            }
        }
    }
    assert upgraded(old) == {
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 16, "extract_levels": [0, 1, 2, 3]},
        }
    }


def test_model_global_extract_levels_become_depth_max():
    old = {
        "train": {
            "model": {
                "method": "ddf",
                "backbone": "global",
                "global": {"num_channel_initial": 4, "extract_levels": [0, 3, 1]},
            }
        }
    }
    expected_backbone = {"name": "global", "num_channel_initial": 4, "depth": 3}
    assert upgraded(old) == {"train": {"method": "ddf", "backbone": expected_backbone}}


def test_model_local_keeps_extract_levels():
    old = {"train": {"model": {"method": "dvf", "backbone": "local", "local": {"extract_levels": [0, 3]}}}}
    assert upgraded(old)["train"]["backbone"] == {"name": "local", "extract_levels": [0, 3]}


def test_model_without_argument_section():
    old = {"train": {"model": {"method": "conditional", "backbone": "unet"}}}
    assert upgraded(old) == {"train": {"method": "conditional", "backbone": {"name": "unet"}}}


def test_model_unused_backbone_sections_dropped_with_warning(caplog):
    old = {
        "train": {
            "model": {
                "method": "ddf",
                "backbone": "unet",
                "unet": {"num_channel_initial": 8, "depth": 3},
                "local": {"num_channel_initial": 16},
            }
        }
    }
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        new = upgraded(old)
    assert new == {"train": {"method": "ddf", "backbone": {"name": "unet", "num_channel_initial": 8, "depth": 3}}}
    assert "['local']" in caplog.text


# ---------------------------------------------------------------------- loss
def test_dissimilarity_moves_up():
    image = {"name": "ssd", "weight": 1.0}
    regularization = {"name": "bending", "weight": 0.5}
    old = {"train": {"loss": {"dissimilarity": {"image": image}, "regularization": regularization}}}
    assert upgraded(old) == {"train": {"loss": {"image": image, "regularization": regularization}}}


def test_image_loss_arguments_flattened():
    image = {"name": "lncc", "weight": 0.1, "lncc": {"kernel_size": 7, "kernel_type": "gaussian"}}
    old = {"train": {"loss": {"image": image}}}
    assert upgraded(old) == {
        "train": {"loss": {"image": {"name": "lncc", "weight": 0.1, "kernel_size": 7, "kernel_type": "gaussian"}}}
    }


def test_image_loss_arguments_flattened_in_a_list():
    images = [{"name": "ssd", "weight": 1}, {"name": "gmi", "weight": 2, "gmi": {"num_bins": 16}}]
    old = {"train": {"loss": {"image": images}}}
    assert upgraded(old)["train"]["loss"]["image"] == [
        {"name": "ssd", "weight": 1},
        {"name": "gmi", "weight": 2, "num_bins": 16},
    ]


def test_label_single_scale():
    old = {
        "train": {
            "loss": {
                "label": {
                    "name": "single_scale",
                    "weight": 1.0,
                    "single_scale": {"loss_type": "jaccard"},
                    "multi_scale": {"loss_type": "dice", "loss_scales": [0, 1]},
                }
            }
        }
    }
    assert upgraded(old) == {"train": {"loss": {"label": {"name": "jaccard", "weight": 1.0}}}}


def test_label_multi_scale():
    old = {
        "train": {
            "loss": {
                "label": {
                    "name": "multi_scale",
                    "weight": 0.5,
                    "single_scale": {"loss_type": "jaccard"},
                    "multi_scale": {"loss_type": "cross-entropy", "loss_scales": [0, 1, 2, 4]},
                }
            }
        }
    }
    expected_label = {"name": "cross-entropy", "weight": 0.5, "scales": [0, 1, 2, 4]}
    assert upgraded(old) == {"train": {"loss": {"label": expected_label}}}


def test_rename_mean_squared_to_ssd_label_and_image():
    old = {
        "train": {
            "loss": {
                "image": {"name": "mean-squared", "weight": 1.0},
                "label": {"name": "single_scale", "weight": 1.0, "single_scale": {"loss_type": "mean-squared"}},
            }
        }
    }
    assert upgraded(old)["train"]["loss"] == {
        "image": {"name": "ssd", "weight": 1.0},
        "label": {"name": "ssd", "weight": 1.0},
    }


def test_rename_dice_generalized_to_dice():
    old = {"train": {"loss": {"label": {"name": "dice_generalized", "weight": 1.0}}}}
    assert upgraded(old)["train"]["loss"]["label"] == {"name": "dice", "weight": 1.0}


def test_rename_neg_weight_to_background_weight():
    old = {"train": {"loss": {"label": {"name": "dice", "weight": 1.0, "neg_weight": 0.2}}}}
    assert upgraded(old)["train"]["loss"]["label"] == {"name": "dice", "weight": 1.0, "background_weight": 0.2}


@pytest.mark.parametrize(
    "energy, expected",
    [
        ("bending", {"name": "bending", "weight": 0.5}),
        ("gradient-l2", {"name": "gradient", "weight": 0.5, "l1": False}),
        ("gradient-l1", {"name": "gradient", "weight": 0.5, "l1": True}),
    ],
)
def test_regularization_energy_type(energy, expected):
    old = {"train": {"loss": {"regularization": {"weight": 0.5, "energy_type": energy}}}}
    assert upgraded(old)["train"]["loss"]["regularization"] == expected


def test_regularization_unknown_energy_type_becomes_name_for_the_validator():
    old = {"train": {"loss": {"regularization": {"weight": 0.5, "energy_type": "jacobian"}}}}
    assert upgraded(old)["train"]["loss"]["regularization"] == {"name": "jacobian", "weight": 0.5}


# ---------------------------------------------------------------------- optimizer, preprocess
@pytest.mark.parametrize("old_name, new_name", [("adam", "Adam"), ("sgd", "SGD"), ("rms", "RMSprop")])
def test_optimizer(old_name, new_name):
    old = {
        "train": {
            "optimizer": {
                "name": old_name,
                "adam": {"learning_rate": 0.001},
                "sgd": {"learning_rate": 0.01, "momentum": 0.9},
                "rms": {"learning_rate": 0.0001, "momentum": 0.5},
            }
        }
    }
    args = {
        "adam": {"learning_rate": 0.001},
        "sgd": {"learning_rate": 0.01, "momentum": 0.9},
        "rms": {"learning_rate": 0.0001, "momentum": 0.5},
    }
    assert upgraded(old)["train"]["optimizer"] == {"name": new_name, **args[old_name]}


def test_optimizer_without_section():
    assert upgraded({"train": {"optimizer": {"name": "adam"}}}) == {"train": {"optimizer": {"name": "Adam"}}}


def test_absent_data_augmentation_becomes_affine():
    old = {"train": {"preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1}}}
    expected = {"batch_size": 2, "shuffle_buffer_num_batch": 1, "data_augmentation": {"name": "affine"}}
    assert upgraded(old) == {"train": {"preprocess": expected}}


@pytest.mark.parametrize("augmentation", [None, {"name": "ddf", "field_strength": 2}, [{"name": "affine"}]])
def test_present_data_augmentation_kept(augmentation):
    config = {"train": {"preprocess": {"batch_size": 2, "data_augmentation": augmentation}}}
    new, changed = upgrade_config(config)
    assert not changed
    assert new == config


# ---------------------------------------------------------------------- whole configs
V011_YAML = """
dataset:
  dir:
    train: "data/test/h5/paired/train"
    valid: "data/test/h5/paired/test"
    test: "data/test/h5/paired/test"
  format: "h5"
  type: "paired"
  labeled: true
  moving_image_shape: [16, 16, 16]
  fixed_image_shape: [8, 8, 8]

train:
  model:
    method: "ddf"
    backbone: "global"
    local:
      num_channel_initial: 4
      extract_levels: [0, 1, 2, 3]
    global:
      num_channel_initial: 4
      extract_levels: [0, 1, 2]
  loss:
    dissimilarity:
      image:
        name: "lncc"
        weight: 0.1
        lncc:
          kernel_size: 9
          kernel_type: "rectangular"
      label:
        weight: 1.0
        name: "multi_scale"
        single_scale:
          loss_type: "dice"
        multi_scale:
          loss_type: "dice_generalized"
          loss_scales: [0, 1, 2, 4, 8, 16, 32]
          neg_weight: 0.1
    regularization:
      weight: 0.5
      energy_type: "gradient-l1"
  preprocess:
    batch_size: 2
    shuffle_buffer_num_batch: 1
  optimizer:
    name: "adam"
    adam:
      learning_rate: 1.0e-3
    sgd:
      learning_rate: 1.0e-4
      momentum: 0.9
    rms:
      learning_rate: 1.0e-4
      momentum: 0.9
  epochs: 2
  save_period: 2
"""

V10_EXPECTED = {
    "dataset": {
        "train": {"dir": "data/test/h5/paired/train", "format": "h5", "labeled": True},
        "valid": {"dir": "data/test/h5/paired/test", "format": "h5", "labeled": True},
        "test": {"dir": "data/test/h5/paired/test", "format": "h5", "labeled": True},
        "type": "paired",
        "moving_image_shape": [16, 16, 16],
        "fixed_image_shape": [8, 8, 8],
    },
    "train": {
        "method": "ddf",
        "backbone": {"name": "global", "num_channel_initial": 4, "depth": 2},
        "loss": {
            "image": {"name": "lncc", "weight": 0.1, "kernel_size": 9, "kernel_type": "rectangular"},
            "label": {"name": "dice", "weight": 1.0, "scales": [0, 1, 2, 4, 8, 16, 32], "background_weight": 0.1},
            "regularization": {"name": "gradient", "weight": 0.5, "l1": True},
        },
        "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1, "data_augmentation": {"name": "affine"}},
        "optimizer": {"name": "Adam", "learning_rate": 0.001},
        "epochs": 2,
        "save_period": 2,
    },
}


def test_whole_v011_config():
    old = yaml.safe_load(V011_YAML)
    before = copy.deepcopy(old)
    new, changed = upgrade_config(old)
    assert changed
    assert new == V10_EXPECTED
    assert old == before, "the input must not be modified"


def test_upgrade_is_idempotent_and_a_10_config_is_unchanged():
    new, changed = upgrade_config(V10_EXPECTED)
    assert not changed
    assert new == V10_EXPECTED
    assert new is not V10_EXPECTED


def test_notes_describe_the_changes():
    _, notes = upgrade_config_with_notes(yaml.safe_load(V011_YAML))
    text = "\n".join(notes)
    assert "train.model" in text and "optimizer 'adam' became 'Adam'" in text
    assert upgrade_config_with_notes(V10_EXPECTED)[1] == []


def test_non_mapping_is_left_alone():
    assert upgrade_config([1, 2]) == ([1, 2], False)


def test_provenance_follows_moved_keys():
    old = yaml.safe_load(V011_YAML)
    prov = Provenance(["base.yaml", "over.yaml"])
    prov.record_tree((), old, "base.yaml")
    prov.record(("train", "loss", "dissimilarity", "image", "lncc", "kernel_size"), "over.yaml")
    prov.record(("dataset", "dir", "valid"), "over.yaml")
    upgrade_config(old, prov)
    assert prov.source("train.loss.image.kernel_size") == "over.yaml"
    assert prov.source("train.loss.image.kernel_type") == "base.yaml"
    assert prov.source("dataset.valid.dir") == "over.yaml"
    assert prov.source("dataset.valid.format") == "base.yaml"
    assert prov.source("train.backbone.depth") == "base.yaml"
    assert prov.source("train.loss.label.name") == "base.yaml"
    # Nothing is left under the old paths.
    assert not any(path[:2] == ("train", "model") for path in prov)
    assert not any(path[:3] == ("train", "loss", "dissimilarity") for path in prov)
