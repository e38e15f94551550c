"""Tiny DeepReg-1.0 configs over ../shared/data/deepreg_test for the engine and CLI tests."""

import copy
from pathlib import Path

import yaml


def paired_config(data_root: Path, method: str = "ddf", epochs: int = 2, **train_overrides) -> dict:
    """Paired, labeled nifti data resized to 16^3 (moving) / 8^3 (fixed); a small local backbone."""
    base = data_root / "deepreg_test" / "nifti" / "paired"
    split = lambda name: {"dir": str(base / name), "format": "nifti", "labeled": True}  # noqa: E731
    config = {
        "dataset": {
            "train": split("train"),
            "valid": split("test"),
            "test": split("test"),
            "type": "paired",
            "moving_image_shape": [16, 16, 16],
            "fixed_image_shape": [8, 8, 8],
        },
        "train": {
            "method": method,
            "backbone": {"name": "local", "num_channel_initial": 4, "extract_levels": [0, 1, 2]},
            "loss": {
                "image": {"name": "lncc", "weight": 0.1},
                "label": {"name": "dice", "weight": 1.0, "scales": [0, 1]},
                "regularization": {"name": "bending", "weight": 0.5},
            },
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-3},
            "preprocess": {"batch_size": 4, "shuffle_buffer_num_batch": 1, "data_augmentation": {"name": "affine"}},
            "epochs": epochs,
            "save_period": 1,
        },
    }
    if method == "affine":
        config["train"]["backbone"] = {"name": "global", "num_channel_initial": 4, "extract_levels": [0, 1, 2]}
    config["train"].update(copy.deepcopy(train_overrides))
    return config


def write_config(config: dict, path: Path) -> str:
    path.write_text(yaml.safe_dump(config))
    return str(path)
