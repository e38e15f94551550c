"""DeepReg's own config files (its repository's config/ and examples/ folders), the combinations DeepReg's tests
merge them in, and a working folder laid out as DeepReg's repository root so that their relative paths resolve.

The copies are in tests/fixtures/deepreg_configs/{config,config/test,examples}/ (verbatim, with a two-line header
naming the source path and commit); DeepReg's two quick-mode overrides, config/test/demo_paired.yaml and
demo_unpaired_grouped.yaml, have one home, this repository's config/test/, which the demos also read.

DeepReg's tests ran from its repository root with paths such as ``config/test/ddf.yaml`` and data under
``data/test/{nifti,h5}/...``; :func:`deepreg_root` builds such a root in a temporary folder: a file symlink per
config (so that the ``updated_<name>`` file written after a v0.1.1 upgrade lands there, not in the fixtures),
``data/test/nifti`` linked to ``$TFREG_TEST_DATA/deepreg_test/nifti``, ``data/test/h5`` converted from those NIfTI
folders with tfreg's converter (the shared h5 folder lacks most label files), and the two demo dataset folders
that config/test/grouped_mr_heart_v011.yaml and examples/config_efficient_net.yaml name, linked to the grouped
and paired NIfTI test data.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Dict, List

from tests.conftest import REPO_ROOT, data_root

FIXTURES = REPO_ROOT / "tests" / "fixtures" / "deepreg_configs"

#: DeepReg's config/test/ files: partial configs, merged with others (a model part, a data part, labeled/unlabeled)
CONFIG_TEST = [
    "affine",
    "conditional",
    "ddf",
    "demo_paired",
    "demo_unpaired_grouped",
    "dvf",
    "grouped_h5",
    "grouped_mr_heart_v011",
    "grouped_nifti",
    "labeled",
    "paired_h5",
    "paired_nifti",
    "unlabeled",
    "unpaired_h5",
    "unpaired_nifti",
    "unpaired_nifti_multi_dirs",
    "unpaired_nifti_no_valid",
]
#: DeepReg's config/ files: whole configs
CONFIG = ["unpaired_labeled_ddf", "unpaired_unlabeled_ddf", "unpaired_unlabeled_ddf_512", "unpaired_unlabeled_dvf"]
#: DeepReg's examples/ YAMLs: whole configs naming components that the example's Python file registers
EXAMPLES = [
    "config_custom_backbone",
    "config_custom_image_label_loss",
    "config_custom_image_loss",
    "config_custom_parameterized_image_label_loss",
    "config_efficient_net",
]
DEEPREG_PATHS = (
    [f"config/test/{n}.yaml" for n in CONFIG_TEST]
    + [f"config/{n}.yaml" for n in CONFIG]
    + [f"examples/{n}.yaml" for n in EXAMPLES]
)
#: the files written for DeepReg v0.1.1 (``train.model``, ``dataset.dir``), upgraded when loaded
V011 = {
    "config/test/grouped_mr_heart_v011.yaml",
    "config/unpaired_unlabeled_ddf.yaml",
    "config/unpaired_unlabeled_ddf_512.yaml",
    "config/unpaired_unlabeled_dvf.yaml",
}
#: an example between the two forms: ``dataset.dir`` as in v0.1.1, ``train`` as in 1.0
MIXED = {"examples/config_custom_image_loss.yaml"}
QUICK = {"paired": "config/test/demo_paired.yaml", "other": "config/test/demo_unpaired_grouped.yaml"}


def repo_path(deepreg_path: str) -> Path:
    """Where DeepReg's file ``deepreg_path`` is kept in this repository."""
    if deepreg_path in (QUICK["paired"], QUICK["other"]):
        return REPO_ROOT / deepreg_path
    return FIXTURES / deepreg_path


def _combinations() -> Dict[str, List[str]]:
    """The merges DeepReg's tests trained: model part + data part + labeled/unlabeled (its test/output suite),
    dvf and conditional on labelled unpaired NIfTI, the multi-folder and no-validation data configs, the whole
    configs (test/unit/test_train.py also adds config/test/affine.yaml), the v0.1.1 file and the examples."""
    test = "config/test/{}.yaml".format
    combos = {}
    for layout in ("paired", "unpaired", "grouped"):
        for fmt in ("nifti", "h5"):
            for labels in ("labeled", "unlabeled"):
                combos[f"ddf_{layout}_{fmt}_{labels}"] = [test("ddf"), test(f"{layout}_{fmt}"), test(labels)]
    combos["dvf_unpaired_nifti_labeled"] = [test("ddf"), test("dvf"), test("unpaired_nifti"), test("labeled")]
    combos["conditional_unpaired_nifti_labeled"] = [
        test("ddf"),
        test("conditional"),
        test("unpaired_nifti"),
        test("labeled"),
    ]
    combos["ddf_unpaired_nifti_multi_dirs_unlabeled"] = [
        test("ddf"),
        test("unpaired_nifti_multi_dirs"),
        test("unlabeled"),
    ]
    # DeepReg's older suite also merged unlabeled.yaml here; in the 1.0 forms that merge sets valid: {labeled:
    # false} under the file's valid: null (see test_no_valid_with_unlabeled_is_refused_naming_the_file)
    combos["ddf_unpaired_nifti_no_valid"] = [test("ddf"), test("unpaired_nifti_no_valid")]
    for name in CONFIG:
        combos[name] = [f"config/{name}.yaml"]
    combos["unpaired_labeled_ddf_affine"] = ["config/unpaired_labeled_ddf.yaml", test("affine")]
    combos["grouped_mr_heart_v011"] = [test("grouped_mr_heart_v011")]
    for name in EXAMPLES:
        combos[name] = [f"examples/{name}.yaml"]
    return combos


COMBINATIONS = _combinations()

#: combination -> 1.0-form files whose plain merge DeepReg said it equals, both followed by the same quick-mode
#: override. DeepReg's test_config_parser.py asserted the first and the v0.1.1 upgrade of
#: grouped_mr_heart_v011.yaml giving the grouped_mr_heart demo YAML; its older suite asserted that
#: unpaired_unlabeled_ddf.yaml is ddf + unpaired_nifti + unlabeled. The v0.1.1 files lack 1.0's explicit
#: ``num_parallel_calls: -1`` (the default), and the 512^3 and dvf ones differ only in image_shape and epochs,
#: which the quick override sets.
_UNLABELED_PARTS = ["config/test/ddf.yaml", "config/test/unpaired_nifti.yaml", "config/test/unlabeled.yaml"]
EQUIVALENT = {
    "unpaired_labeled_ddf": ["config/test/ddf.yaml", "config/test/unpaired_nifti.yaml", "config/test/labeled.yaml"],
    "unpaired_unlabeled_ddf": _UNLABELED_PARTS,
    "unpaired_unlabeled_ddf_512": _UNLABELED_PARTS,
    "unpaired_unlabeled_dvf": _UNLABELED_PARTS[:1] + ["config/test/dvf.yaml"] + _UNLABELED_PARTS[1:],
    "grouped_mr_heart_v011": ["demos/grouped_mr_heart/grouped_mr_heart.yaml"],
}


#: the merges trained in tests/engine/test_train_deepreg_repo_configs.py (its docstring says why these): every
#: file is in one of them, in the 1.0 reference of one, or equal to one (test_every_file_is_trained_...)
TRAINED = [
    "ddf_paired_nifti_labeled",
    "ddf_paired_h5_unlabeled",
    "unpaired_labeled_ddf",
    "ddf_unpaired_h5_labeled",
    "unpaired_unlabeled_ddf_512",
    "ddf_grouped_nifti_unlabeled",
    "ddf_grouped_h5_labeled",
    "unpaired_unlabeled_dvf",
    "conditional_unpaired_nifti_labeled",
    "ddf_unpaired_nifti_multi_dirs_unlabeled",
    "ddf_unpaired_nifti_no_valid",
    "unpaired_labeled_ddf_affine",
    "grouped_mr_heart_v011",
    "config_custom_backbone",
    "config_custom_image_label_loss",
    "config_custom_parameterized_image_label_loss",
    "config_efficient_net",
]


def quick_override(paths: List[str]) -> str:
    """DeepReg's quick-mode file for a merge: 16^3 (paired: 16^3 moving, 8^3 fixed) images, one epoch."""
    merged = merge_yaml(paths)
    dataset = merged.get("dataset") or {}
    return QUICK["paired" if dataset.get("type") == "paired" else "other"]


# ---------------------------------------------------------------------- DeepReg's merge, as the reference
def read_yaml(deepreg_path: str) -> dict:
    """The YAML as written (PyYAML's safe loader), from this repository's copy."""
    import yaml

    if deepreg_path.startswith("demos/"):
        path = FIXTURES / Path(deepreg_path).name
    else:
        path = repo_path(deepreg_path)
    with open(path, encoding="utf-8") as stream:
        return yaml.safe_load(stream) or {}


def update_nested(base: dict, override: dict) -> dict:
    """DeepReg's ``update_nested_dict`` (deepreg/config/parser.py), returning a new dict: a dict in ``override``
    is merged into ``base``'s value key by key, anything else replaces it. Like DeepReg's, it fails (TypeError)
    where a dict would be merged into a value that is not a dict, such as a ``null`` split."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict):
            inner = out.get(key, {})
            if not isinstance(inner, dict):
                raise TypeError(f"{type(inner).__name__!r} object does not support item assignment (key {key!r})")
            out[key] = update_nested(inner, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def merge_yaml(paths: List[str]) -> dict:
    merged: dict = {}
    for path in paths:
        merged = update_nested(merged, read_yaml(path))
    return merged


# ---------------------------------------------------------------------- the examples' components
def example_registry():
    """A copy of tfreg's registry with components registered under the names DeepReg's example YAMLs use.

    The components are ours (tests/compat/deepreg_components.py). ``efficient_net``: DeepReg's example (at the
    commit copied) subclasses its LocalNet, replacing the bottom block, with the depthwise convolution left as a
    TODO; tfreg's LocalNet stands in for it, taking the YAML's keys as that subclass did.
    """
    from tests.compat.deepreg_components import LpDistance, RootMeanSquare, TwoConvBackbone
    from tfreg.models.backbones import LocalNet
    from tfreg.registry import REGISTRY

    registry = REGISTRY.copy()
    registry.register_backbone(name="custom_backbone")(TwoConvBackbone)
    registry.register_backbone(name="efficient_net")(LocalNet)
    registry.register_loss(name="root_mean_square")(RootMeanSquare)
    registry.register_loss(name="custom_image_loss")(RootMeanSquare)
    registry.register_loss(name="lp_norm")(LpDistance)
    return registry


# ---------------------------------------------------------------------- DeepReg's repository root, with data
def deepreg_root_or_skip(tmp_path_factory) -> Path:
    """:func:`deepreg_root` in a fresh temporary folder on ``$TFREG_TEST_DATA``; skips the test (with the
    path) when DeepReg's test data is not there. For the module-scoped ``root`` fixtures."""
    import pytest

    shared = data_root()
    if not (shared / "deepreg_test").is_dir():
        pytest.skip(f"DeepReg's test data not found at {shared / 'deepreg_test'}")
    return deepreg_root(tmp_path_factory.mktemp("deepreg"), shared)


def deepreg_root(root: Path, shared_data: Path) -> Path:
    """Lay out ``root`` as DeepReg's repository root for its configs (see the module docstring); returns it."""
    from data_scripts.nifti_to_h5 import convert_nifti_to_h5

    nifti = shared_data / "deepreg_test" / "nifti"
    for deepreg_path in DEEPREG_PATHS:
        link = root / deepreg_path
        link.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(repo_path(deepreg_path), link)
    (root / "data" / "test").mkdir(parents=True)
    os.symlink(nifti, root / "data" / "test" / "nifti")
    for layout in ("paired", "unpaired", "grouped"):
        for split in ("train", "test"):
            convert_nifti_to_h5(
                str(nifti / layout / split),
                str(root / "data" / "test" / "h5" / layout / split),
                grouped=layout == "grouped",
            )
    # the demo folders named by grouped_mr_heart_v011.yaml (train/val/test) and config_efficient_net.yaml
    for demo, layout, valid in (("grouped_mr_heart", "grouped", "val"), ("paired_ct_lung", "paired", "valid")):
        dataset = root / "demos" / demo / "dataset"
        dataset.mkdir(parents=True)
        for split, source in (("train", "train"), (valid, "test"), ("test", "test")):
            os.symlink(nifti / layout / source, dataset / split)
    return root
