"""DeepReg's config/, config/test/ and examples/ YAMLs train one epoch with tfreg, unchanged, merged as DeepReg's
tests merged them and followed by DeepReg's quick-mode file (config/test/demo_paired.yaml or
demo_unpaired_grouped.yaml: 16^3 images (paired: 8^3 fixed), one epoch), run from a folder laid out as DeepReg's
repository root (tests/config/deepreg_repo.py) on DeepReg's test data.

Each run is checked for its checkpoint, the saved config being DeepReg's merge of the files (its
``update_nested_dict`` rule, re-written in the helper; for the v0.1.1 files, the 1.0 files DeepReg said they
equal), the loss terms the method and labels call for, and finite losses. The example YAMLs name components
that DeepReg's example scripts register; ours, in the same shape, are registered under those names
(:func:`tests.config.deepreg_repo.example_registry`).

Which merges train here (17 runs: 7-9 minutes measured on two CPU cores shared with other work, load 5): every
file of the three folders is in at least one, and so is every data layout x format, with and without labels,
every method and every v0.1.1 file. The merges left out are the same configs as a trained one
(tests/config/test_deepreg_repo_configs.py checks that they merge equal): ddf + unpaired_nifti + labeled is
config/unpaired_labeled_ddf.yaml; ddf + unpaired_nifti + unlabeled is config/unpaired_unlabeled_ddf.yaml and,
after the quick override, config/unpaired_unlabeled_ddf_512.yaml; ddf + dvf + unpaired_nifti + unlabeled is
config/unpaired_unlabeled_dvf.yaml; examples/config_custom_image_loss.yaml is
config_custom_image_label_loss.yaml under another loss name (registered to the same class). The others differ
from a trained merge only in their labels (ddf and dvf on the remaining layout x format x labels pairs); each
of them validates on the data in the config test.
"""

import os

import numpy as np
import pytest
import yaml

from tests.config import deepreg_repo as repo
from tfreg.engine.train import train

# whole-system runs of 10-50 s each on two busy CPU cores: CI runs them in its separate slow step
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.slow]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return repo.deepreg_root_or_skip(tmp_path_factory)


def _expected_config(name, paths):
    """DeepReg's merge of the files, as tfreg saves it (DeepReg 1.0's defaults written out)."""
    if name in repo.EQUIVALENT:
        expected = repo.merge_yaml(repo.EQUIVALENT[name] + paths[-1:])
    elif any(p in repo.MIXED for p in paths):  # the pre-1.0 example: the later example under the old loss name
        expected = repo.merge_yaml(["examples/config_custom_image_label_loss.yaml"] + paths[-1:])
        expected["train"]["loss"]["image"]["name"] = "custom_image_loss"
    else:
        expected = repo.merge_yaml(paths)
    preprocess = expected["train"]["preprocess"]
    preprocess.setdefault("data_augmentation", {"name": "affine"})
    preprocess.setdefault("num_parallel_calls", -1)
    return expected


def _expected_loss_terms(config):
    """The loss categories the model computes: conditional has only label losses (DeepReg skipped the others),
    and label losses need labels."""
    loss, method = config["train"]["loss"], config["train"]["method"]
    categories = ["label"] if method == "conditional" else ["image", "label", "regularization"]
    if not config["dataset"]["train"]["labeled"]:
        categories.remove("label")
    return sorted(c for c in categories if c in loss)


@pytest.mark.parametrize("name", repo.TRAINED)
def test_one_epoch_of_deepregs_config(name, root, tmp_path, monkeypatch):
    monkeypatch.chdir(root)  # the YAMLs' paths are relative to DeepReg's repository root
    paths = repo.COMBINATIONS[name] + [repo.quick_override(repo.COMBINATIONS[name])]
    registry = repo.example_registry() if name.startswith("config_") else None
    model, exp = train(
        gpu="", config_path=paths, exp_name=name, log_dir=str(tmp_path / "logs"), verbose=0, registry=registry
    )
    assert os.path.isfile(os.path.join(exp, "save", "ckpt-1.index"))

    with open(os.path.join(exp, "config.yaml")) as stream:
        saved = yaml.safe_load(stream)
    expected = _expected_config(name, paths)
    assert saved == expected
    assert saved["train"]["epochs"] == 1
    if saved["dataset"]["type"] == "paired":
        assert (saved["dataset"]["moving_image_shape"], saved["dataset"]["fixed_image_shape"]) == ([16] * 3, [8] * 3)
    else:
        assert saved["dataset"]["image_shape"] == [16] * 3

    terms = sorted({wl.log_name.split("/")[1].split("_")[0] for wl in model.weighted_losses})
    assert terms == _expected_loss_terms(saved)
    results = {t.name: float(t.result()) for t in model.trackers}
    assert results and all(np.isfinite(v) for v in results.values()), results

    if repo.COMBINATIONS[name][0] in repo.V011:
        # DeepReg wrote the upgraded config as updated_<first file> next to it: here, in DeepReg's root
        first = repo.COMBINATIONS[name][0]
        updated = root / os.path.dirname(first) / ("updated_" + os.path.basename(first))
        assert updated.is_file() and not (repo.FIXTURES / os.path.dirname(first) / updated.name).exists()
