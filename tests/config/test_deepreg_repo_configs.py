"""Every YAML in DeepReg's repository outside demos/ (config/, config/test/, examples/), kept verbatim, loads in
tfreg unchanged, and every merge DeepReg's tests made of them validates against the test data; the merges are
DeepReg's (its ``update_nested_dict`` rule, re-written in tests/config/deepreg_repo.py) and the upgraded v0.1.1
files equal the 1.0 files DeepReg said they equal.

DeepReg's demo YAMLs are in tests/demos/test_deepreg_configs.py; the one-epoch trainings of these merges are in
tests/engine/test_train_deepreg_repo_configs.py. The copies were taken from DeepReg's repository (the newest
version of each path found; the commit is in each file's first line): config/test/{affine,ddf}.yaml at fec0136,
the config/test data parts at cd9da6b/bdbdc73/e8f7149, config/unpaired_labeled_ddf.yaml at e8f7149, and the three
other config/*.yaml, which exist only in DeepReg's v0.1.1 form (e100713), upgraded when loaded.
"""

import os
import re

import pytest

from tests.config import deepreg_repo as repo
from tfreg.config.errors import ConfigError
from tfreg.config.loader import load_configs, load_configs_with_provenance
from tfreg.config.upgrade import upgrade_config
from tfreg.config.validate import validate_config

HEADER = re.compile(
    r"^# Copied verbatim from DeepRegNet/DeepReg ((?:config|examples)/[\w/]+\.yaml) at commit ([0-9a-f]{40})\n"
    r"# \(DeepReg(?:'s)? ([^\n]*); only these two header lines are added\)[^\n]*\n"
)
AUGMENTATION = {"name": "affine"}  # DeepReg 1.0's default where train.preprocess.data_augmentation is absent


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """DeepReg's repository root for these configs (tests/config/deepreg_repo.py), as the working folder."""
    return repo.deepreg_root_or_skip(tmp_path_factory)


def _with_default_augmentation(config: dict) -> dict:
    preprocess = config.get("train", {}).get("preprocess")
    if isinstance(preprocess, dict) and "data_augmentation" not in preprocess:
        preprocess["data_augmentation"] = dict(AUGMENTATION)
    return config


# ---------------------------------------------------------------------- the copies
def test_every_yaml_of_deepregs_config_and_examples_folders_is_kept():
    kept = sorted(
        str(p.relative_to(repo.FIXTURES))
        for folder in ("config", "examples")
        for p in (repo.FIXTURES / folder).rglob("*.yaml")
    )
    # DeepReg's quick-mode files live in config/test/ of this repository (the demos read them there)
    assert sorted(kept + list(repo.QUICK.values())) == sorted(repo.DEEPREG_PATHS)
    assert len(repo.DEEPREG_PATHS) == 17 + 4 + 5
    assert all((repo.REPO_ROOT / q).is_file() and not (repo.FIXTURES / q).exists() for q in repo.QUICK.values())


@pytest.mark.parametrize("deepreg_path", repo.DEEPREG_PATHS)
def test_the_copy_names_its_source_path_commit_and_form(deepreg_path):
    with open(repo.repo_path(deepreg_path), encoding="utf-8") as stream:
        text = stream.read()
    match = HEADER.match(text)
    assert match, f"{deepreg_path}: the first two lines must name the DeepReg path, commit and form"
    assert match.group(1) == deepreg_path
    form = match.group(3)
    if deepreg_path in repo.V011:
        assert form.startswith("v0.1.1-format")
    elif deepreg_path in repo.MIXED:
        assert "v0.1.1 form" in form and "1.0 form" in form
    elif deepreg_path not in repo.QUICK.values():
        assert form.startswith("1.0-format")


@pytest.mark.parametrize("deepreg_path", repo.DEEPREG_PATHS)
def test_each_file_loads_alone_as_written_or_upgraded(deepreg_path):
    path = repo.repo_path(deepreg_path)
    before = sorted(os.listdir(path.parent))
    loaded = load_configs(str(path), write_updated=False)
    assert sorted(os.listdir(path.parent)) == before  # no updated_<name> written next to the copy
    written = repo.read_yaml(deepreg_path)
    _, changed = upgrade_config(written)
    if deepreg_path in repo.V011 or deepreg_path in repo.MIXED:
        assert changed  # the values are checked against DeepReg's 1.0 files in test_upgraded_files_equal_...
        assert "dir" not in loaded["dataset"] and "model" not in loaded["train"]
    else:
        # a 1.0 file is read as written; affine.yaml has no data_augmentation and gets DeepReg 1.0's default
        assert loaded == _with_default_augmentation(written)


PARTS = [p for p in repo.DEEPREG_PATHS if p.startswith("config/test/") and p not in repo.V011]


@pytest.mark.parametrize("deepreg_path", PARTS)
def test_a_partial_file_alone_is_refused_naming_the_missing_section(deepreg_path):
    written = repo.read_yaml(deepreg_path)
    missing = [key for key in ("dataset", "train") if key not in written]
    with pytest.raises(ConfigError) as err:
        validate_config(load_configs(str(repo.repo_path(deepreg_path)), write_updated=False), check_dirs=False)
    message = str(err.value)
    assert all(f"missing required key '{key}'" in message for key in missing), message
    if not missing:  # labeled.yaml / demo_*.yaml have both sections, each incomplete
        assert "missing required key 'type'" in message


# ---------------------------------------------------------------------- DeepReg's merges
def test_every_file_is_in_a_combination():
    used = {p for paths in repo.COMBINATIONS.values() for p in paths} | set(repo.QUICK.values())
    assert used == set(repo.DEEPREG_PATHS)


def test_every_file_is_trained_or_in_a_config_equal_to_a_trained_one():
    """The slow test trains repo.TRAINED; the other merges are the same configs as a trained one (checked here and
    in test_upgraded_files_equal_... / test_the_pre_10_example_...) or differ from one only in their labels."""
    assert set(repo.TRAINED) <= set(repo.COMBINATIONS)
    trained = {p for n in repo.TRAINED for p in repo.COMBINATIONS[n] + repo.EQUIVALENT.get(n, [])}
    same = [n for n in repo.EQUIVALENT if any(repo.EQUIVALENT[n] == repo.EQUIVALENT.get(t) for t in repo.TRAINED)]
    covered = trained | {p for n in same for p in repo.COMBINATIONS[n]} | repo.MIXED
    assert covered >= set(repo.DEEPREG_PATHS) - set(repo.QUICK.values())


@pytest.mark.parametrize("name", sorted(repo.COMBINATIONS))
def test_every_combination_merges_as_deepreg_and_validates_on_the_test_data(name, root, monkeypatch):
    monkeypatch.chdir(root)  # the YAMLs' data dirs are relative to DeepReg's repository root
    paths = repo.COMBINATIONS[name]
    config, provenance = load_configs_with_provenance(paths, write_updated=False)
    if not any(p in repo.V011 or p in repo.MIXED for p in paths):
        assert config == _with_default_augmentation(repo.merge_yaml(paths))
    checked = validate_config(config, provenance, registry=repo.example_registry(), check_dirs=True)
    dataset = checked["dataset"]
    for split in ("train", "valid", "test"):
        if dataset.get(split) is None:
            assert name == "ddf_unpaired_nifti_no_valid" and split == "valid"
            continue
        dirs = dataset[split]["dir"]
        assert all((root / d).is_dir() for d in (dirs if isinstance(dirs, list) else [dirs]))
        if "_unlabeled" in name:
            assert dataset[split]["labeled"] is False


@pytest.mark.parametrize("name", sorted(repo.EQUIVALENT))
def test_upgraded_files_equal_the_10_files_deepreg_said_they_equal(name):
    """DeepReg's test_config_parser.py: unpaired_labeled_ddf.yaml is ddf + unpaired_nifti + labeled, and
    grouped_mr_heart_v011.yaml upgrades to the grouped_mr_heart demo YAML; the v0.1.1 whole configs are the 1.0
    parts merged (after the quick override, which sets their differing image_shape and epochs)."""
    paths, reference = repo.COMBINATIONS[name], repo.EQUIVALENT[name]
    if name == "grouped_mr_heart_v011":
        got = load_configs(str(repo.repo_path(paths[0])), write_updated=False)
        assert got == repo.read_yaml(reference[0])
        return
    quick = repo.quick_override(paths)
    got = load_configs([str(repo.repo_path(p)) for p in paths + [quick]], write_updated=False)
    expected = repo.merge_yaml(reference + [quick])
    if any(p in repo.V011 for p in paths):
        # v0.1.1 had no num_parallel_calls key; 1.0's files write its default, -1, which tfreg also fills in
        assert expected["train"]["preprocess"].pop("num_parallel_calls") == -1
        assert validate_config(got, check_dirs=False)["train"]["preprocess"]["num_parallel_calls"] == -1
    assert got == expected


def test_the_pre_10_example_is_the_later_one_under_its_old_loss_name():
    got = load_configs(str(repo.repo_path("examples/config_custom_image_loss.yaml")), write_updated=False)
    expected = repo.read_yaml("examples/config_custom_image_label_loss.yaml")
    assert got["train"]["loss"]["image"].pop("name") == "custom_image_loss"
    assert expected["train"]["loss"]["image"].pop("name") == "root_mean_square"
    assert got == expected


def test_no_valid_with_unlabeled_is_refused_naming_the_file():
    """config/test/unpaired_nifti_no_valid.yaml has ``valid:`` (null); DeepReg's older suite also merged
    unlabeled.yaml, whose ``valid: {labeled: false}`` then has no dir. DeepReg 1.0's merge fails on it with a
    TypeError; tfreg's merge replaces the null, and validation names the key and the file."""
    paths = ["config/test/ddf.yaml", "config/test/unpaired_nifti_no_valid.yaml", "config/test/unlabeled.yaml"]
    with pytest.raises(TypeError, match="NoneType"):
        repo.merge_yaml(paths)
    config, provenance = load_configs_with_provenance([str(repo.repo_path(p)) for p in paths], write_updated=False)
    with pytest.raises(ConfigError, match=r"dataset\.valid: missing required key 'dir'.*unlabeled\.yaml"):
        validate_config(config, provenance, check_dirs=False)


@pytest.mark.parametrize("name", repo.EXAMPLES)
def test_an_example_without_its_python_components_is_refused_naming_them(name):
    path = repo.repo_path(f"examples/{name}.yaml")
    config = load_configs(str(path), write_updated=False)
    backbone, image_loss = config["train"]["backbone"]["name"], config["train"]["loss"]["image"]["name"]
    unregistered = backbone if backbone not in ("local", "unet", "global") else image_loss
    with pytest.raises(ConfigError, match=rf"'{unregistered}' is not registered"):
        validate_config(config, check_dirs=False)
