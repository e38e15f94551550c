"""Tests for tfreg/config/loader.py: loading, merging, provenance, the updated_ file, saving, --max_epochs."""

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tfreg.config import (
    ConfigError,
    ConfigFileNotFoundError,
    apply_max_epochs,
    load_configs,
    load_configs_with_provenance,
    merge_configs,
    save_config,
)
from tfreg.config import loader as loader_module

# A complete 1.0 config: loading it upgrades nothing.
V10 = """
dataset:
  train: {dir: data/train, format: nifti, labeled: true}
  valid: {dir: data/valid, format: nifti, labeled: true}
  type: paired
  moving_image_shape: [16, 16, 16]
  fixed_image_shape: [8, 8, 8]
train:
  method: ddf
  backbone: {name: local, num_channel_initial: 4, extract_levels: [0, 1, 2]}
  loss:
    image: {name: lncc, weight: 0.1}
    regularization: {name: bending, weight: 0.5}
  preprocess:
    batch_size: 2
    shuffle_buffer_num_batch: 1
    data_augmentation: {name: affine}
  optimizer: {name: Adam, learning_rate: 1.0e-4}
  epochs: 10
  save_period: 5
"""

# The same config in DeepReg v0.1.1 form (only the optimizer section is old).
V011_OPTIMIZER = V10.replace(
    "optimizer: {name: Adam, learning_rate: 1.0e-4}", "optimizer: {name: adam, adam: {learning_rate: 1.0e-4}}"
)


def write(folder: Path, name: str, text: str) -> str:
    path = folder / name
    path.write_text(text)
    return str(path)


# ---------------------------------------------------------------------- loading and merging
def test_load_one_file_str_and_path(tmp_path):
    path = write(tmp_path, "a.yaml", V10)
    expected = yaml.safe_load(V10)
    assert load_configs(path) == expected
    assert load_configs(Path(path)) == expected
    assert load_configs([path]) == expected


def test_later_file_wins_dicts_merge_lists_replace(tmp_path):
    base = write(tmp_path, "base.yaml", V10)
    over = write(
        tmp_path,
        "over.yaml",
        "train:\n  epochs: 1\n  backbone: {extract_levels: [3]}\n  loss: {image: [{name: ssd, weight: 2.0}]}\n"
        "dataset: {valid: null}\n",
    )
    config = load_configs([base, over])
    assert config["train"]["epochs"] == 1
    assert config["train"]["save_period"] == 5
    # Dicts merge key by key, lists are replaced whole.
    assert config["train"]["backbone"] == {"name": "local", "num_channel_initial": 4, "extract_levels": [3]}
    assert config["train"]["loss"] == {
        "image": [{"name": "ssd", "weight": 2.0}],
        "regularization": {"name": "bending", "weight": 0.5},
    }
    # null replaces too.
    assert config["dataset"]["valid"] is None


def test_merge_configs_pure():
    base = {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    over = {"a": {"c": [3], "e": {"f": 1}}, "d": {"g": 2}}
    assert merge_configs(base, over) == {"a": {"b": 1, "c": [3], "e": {"f": 1}}, "d": {"g": 2}}
    assert base == {"a": {"b": 1, "c": [1, 2]}, "d": 1}
    assert over == {"a": {"c": [3], "e": {"f": 1}}, "d": {"g": 2}}


def test_merge_does_not_alias_override_values():
    over = {"a": {"b": [1]}}
    merged = merge_configs({}, over)
    merged["a"]["b"].append(2)
    assert over == {"a": {"b": [1]}}


def test_provenance_names_the_last_file(tmp_path):
    base = write(tmp_path, "base.yaml", V10)
    over = write(tmp_path, "over.yaml", "train:\n  epochs: 1\n  loss: {image: [{name: ssd, weight: 2.0}]}\n")
    _, prov = load_configs_with_provenance([base, over])
    assert prov.files == [base, over]
    assert prov.source("train.epochs") == over
    assert prov.source("train.save_period") == base
    assert prov.source(("train", "loss", "image", 0, "name")) == over
    assert prov.source("train.loss.regularization.weight") == base
    assert prov.describe("train.epochs") == f" (from {over})"
    # A path no file set (e.g. a default added later) falls back to its nearest ancestor.
    assert prov.source("train.preprocess.num_parallel_calls") == base


def test_provenance_forgets_a_replaced_subtree(tmp_path):
    base = write(tmp_path, "base.yaml", "a: {b: {c: 1, d: 2}}\n")
    over = write(tmp_path, "over.yaml", "a: {b: 5}\n")
    config, prov = load_configs_with_provenance([base, over])
    assert config == {"a": {"b": 5}}
    assert prov.source("a.b") == over
    assert prov.source("a.b.c") == over
    assert ("a", "b", "c") not in set(prov)
    assert prov.as_dict() == {"a": over, "a.b": over}


def test_provenance_describe_without_records_lists_the_files():
    from tfreg.config import Provenance

    assert Provenance(["x.yaml", "y.yaml"]).describe("train") == " (from one of x.yaml, y.yaml)"
    assert Provenance(["x.yaml"]).describe("train") == " (from x.yaml)"
    assert Provenance().describe("train") == ""


def test_empty_file_is_an_empty_override(tmp_path):
    base = write(tmp_path, "base.yaml", V10)
    empty = write(tmp_path, "empty.yaml", "# nothing here\n")
    assert load_configs([base, empty]) == yaml.safe_load(V10)


def test_exponent_without_dot_is_a_float(tmp_path):
    path = write(tmp_path, "a.yaml", "x: 1e-4\ny: '1e-4'\nz: 1.0e-4\nw: 10\n")
    assert load_configs(path, write_updated=False) == {"x": 0.0001, "y": "1e-4", "z": 0.0001, "w": 10}


# ---------------------------------------------------------------------- loading errors
def test_missing_file(tmp_path):
    missing = str(tmp_path / "nope.yaml")
    with pytest.raises(ConfigFileNotFoundError, match="nope.yaml does not exist"):
        load_configs([write(tmp_path, "a.yaml", V10), missing])
    # Catchable as both.
    with pytest.raises(FileNotFoundError):
        load_configs(missing)
    with pytest.raises(ConfigError):
        load_configs(missing)


def test_directory_instead_of_file(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_configs(str(tmp_path))


def test_empty_list_of_files():
    with pytest.raises(ConfigError, match="no config file"):
        load_configs([])


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    path = write(tmp_path, "bad.yaml", "train:\n  epochs: 1\n  loss: [a, b\n  save_period: 2\n")
    with pytest.raises(ConfigError) as info:
        load_configs(path)
    message = str(info.value)
    assert message.startswith(f"{path}:4:")
    assert "YAML syntax error" in message


def test_top_level_not_a_mapping(tmp_path):
    path = write(tmp_path, "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError, match="top level of a config must be a mapping.*got a list") as info:
        load_configs(path)
    assert path in str(info.value)


def test_python_tags_are_refused(tmp_path):
    # FullLoader-era configs could run code; the safe loader refuses the tag.
    path = write(tmp_path, "evil.yaml", "a: !!python/object/apply:os.getcwd []\n")
    with pytest.raises(ConfigError, match="evil.yaml:1:"):
        load_configs(path)


# ---------------------------------------------------------------------- ~ expansion
def test_tilde_expanded_in_dataset_dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", "/home/tester")
    text = (
        "dataset:\n  train: {dir: ~/data/train}\n  valid: {dir: [~/v1, /abs/v2]}\n  test: null\n"
        "  type: '~/not_a_dir'\n"
        "train: {preprocess: {data_augmentation: null}}\n"
    )
    config = load_configs(write(tmp_path, "a.yaml", text))
    assert config["dataset"]["train"]["dir"] == "/home/tester/data/train"
    assert config["dataset"]["valid"]["dir"] == ["/home/tester/v1", "/abs/v2"]
    assert config["dataset"]["type"] == "~/not_a_dir"


# ---------------------------------------------------------------------- upgrade and updated_ file
def test_upgrade_warns_and_writes_updated_file(tmp_path, caplog):
    path = write(tmp_path, "old.yaml", V011_OPTIMIZER.replace("dir: data/train", "dir: ~/data/train"))
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        config = load_configs(path)
    assert config["train"]["optimizer"] == {"name": "Adam", "learning_rate": 1.0e-4}
    assert f"loaded from {path}" in caplog.text
    updated = tmp_path / "updated_old.yaml"
    assert updated.exists()
    written = yaml.safe_load(updated.read_text())
    assert written["train"]["optimizer"] == {"name": "Adam", "learning_rate": 1.0e-4}
    # The file keeps the user's ~; only the returned config is expanded.
    assert written["dataset"]["train"]["dir"] == "~/data/train"
    # Loading the updated file upgrades nothing, so it writes nothing more.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        again = load_configs(str(updated))
    assert again == config
    assert caplog.text == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.yaml", "updated_old.yaml"]


def test_updated_file_named_after_the_first_file(tmp_path):
    first = write(tmp_path, "first.yaml", V011_OPTIMIZER)
    second = write(tmp_path, "second.yaml", "train: {epochs: 3}\n")
    load_configs([first, second])
    written = yaml.safe_load((tmp_path / "updated_first.yaml").read_text())
    assert written["train"]["epochs"] == 3
    assert not (tmp_path / "updated_second.yaml").exists()


def test_no_updated_file_for_a_10_config(tmp_path, caplog):
    path = write(tmp_path, "new.yaml", V10)
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        load_configs(path)
    assert caplog.text == ""
    assert [p.name for p in tmp_path.iterdir()] == ["new.yaml"]


def test_write_updated_false(tmp_path):
    load_configs(write(tmp_path, "old.yaml", V011_OPTIMIZER), write_updated=False)
    assert not (tmp_path / "updated_old.yaml").exists()


def test_existing_identical_updated_file_left_alone(tmp_path):
    path = write(tmp_path, "old.yaml", V011_OPTIMIZER)
    load_configs(path)
    updated = tmp_path / "updated_old.yaml"
    os.utime(updated, (1, 1))
    load_configs(path)
    assert updated.stat().st_mtime == 1


def test_existing_different_updated_file_not_overwritten(tmp_path, caplog):
    path = write(tmp_path, "old.yaml", V011_OPTIMIZER)
    updated = write(tmp_path, "updated_old.yaml", "mine: true\n")
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        config = load_configs(path)
    assert config["train"]["optimizer"]["name"] == "Adam"
    assert Path(updated).read_text() == "mine: true\n"
    assert "exists and differs" in caplog.text


def test_unwritable_folder_warns_instead_of_crashing(tmp_path, caplog, monkeypatch):
    path = write(tmp_path, "old.yaml", V011_OPTIMIZER)

    def refuse(config, target):
        raise PermissionError(13, "Permission denied", target)

    monkeypatch.setattr(loader_module, "save_config", refuse)
    with caplog.at_level(logging.WARNING, logger="tfreg.config"):
        config = load_configs(path)
    assert config["train"]["optimizer"]["name"] == "Adam"
    assert "Could not write the upgraded config" in caplog.text


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write to read-only folders")
def test_read_only_folder(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    path = write(folder, "old.yaml", V011_OPTIMIZER)
    folder.chmod(0o555)
    try:
        assert load_configs(path)["train"]["optimizer"]["name"] == "Adam"
        assert [p.name for p in folder.iterdir()] == ["old.yaml"]
    finally:
        folder.chmod(0o755)


# ---------------------------------------------------------------------- saving
def test_save_config_round_trip_sorted_keys(tmp_path):
    config = yaml.safe_load(V10)
    config["dataset"]["image_shape_tuple"] = (4, 5, 6)
    path = tmp_path / "logs" / "exp" / "config.yaml"
    assert save_config(config, path) == str(path)
    text = path.read_text()
    top_keys = [line.split(":")[0] for line in text.splitlines() if line and not line.startswith(" ")]
    assert top_keys == ["dataset", "train"]
    second_level = [line.split(":")[0].strip() for line in text.splitlines() if re.match(r"^  \w", line)]
    train_keys = second_level[second_level.index("backbone") :]
    assert train_keys == ["backbone", "epochs", "loss", "method", "optimizer", "preprocess", "save_period"]
    loaded = load_configs(str(path))
    config["dataset"]["image_shape_tuple"] = [4, 5, 6]
    assert loaded == config
    assert os.listdir(path.parent) == ["config.yaml"]


def test_save_config_replaces_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    path = tmp_path / "config.yaml"
    save_config({"a": 1}, path)

    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(loader_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        save_config({"a": 2}, path)
    monkeypatch.undo()
    assert yaml.safe_load(path.read_text()) == {"a": 1}
    assert os.listdir(tmp_path) == ["config.yaml"]
    save_config({"a": 3}, path)
    assert yaml.safe_load(path.read_text()) == {"a": 3}


def test_save_config_small_floats_load_back(tmp_path):
    path = tmp_path / "c.yaml"
    save_config({"lr": 1e-10, "w": 0.5}, path)
    assert load_configs(str(path)) == {"lr": 1e-10, "w": 0.5}


# ---------------------------------------------------------------------- --max_epochs
@pytest.mark.parametrize(
    "max_epochs, epochs, save_period",
    [(3, 3, 3), (7, 7, 5), (20, 20, 5), (0, 10, 5), (-1, 10, 5)],
)
def test_apply_max_epochs(max_epochs, epochs, save_period):
    config = {"train": {"epochs": 10, "save_period": 5}}
    assert apply_max_epochs(config, max_epochs) is config
    assert config == {"train": {"epochs": epochs, "save_period": save_period}}


def test_apply_max_epochs_without_save_period():
    assert apply_max_epochs({"train": {"epochs": 10}}, 4) == {"train": {"epochs": 4, "save_period": 4}}


# ---------------------------------------------------------------------- import weight
def test_importing_config_does_not_import_tensorflow():
    code = "import sys, tfreg.config; sys.exit(any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))"
    root = Path(__file__).resolve().parents[2]
    assert subprocess.run([sys.executable, "-c", code], cwd=root).returncode == 0
