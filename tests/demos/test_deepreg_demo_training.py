"""Each of DeepReg's twelve demo YAMLs trains one epoch with tfreg on data converted from a tiny archive in the
release's layout, through the demo's own scripts: ``demo_data.py --source <archive>``, ``demo_train.py``
(DeepReg's default quick mode: the YAML, then ``config/test/demo_*.yaml`` with 16^3 images and one epoch)
and, once per demo, ``demo_predict.py`` on the test split.

The run's saved config is checked to be the demo YAML's ``train`` section unchanged (but for the quick
mode's epochs) with the quick image sizes, and predict's Dice against the files it wrote (NumPy).
"""

import csv
import glob
import importlib
import os

import numpy as np
import pytest
import yaml

from tests.demos import deepreg_fixtures as fx
from tfreg.data.image_io import read_image

# whole-system runs of 15-70 s each on two busy CPU cores: CI runs them in its separate slow step
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.slow]

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _lung(root, cases):
    return fx.write_lung_release(root, cases)[0]


#: demo -> archive writer (the fixture releases of tests/demos/test_deepreg_demo_data.py)
ARCHIVES = {
    "grouped_mask_prostate_longitudinal": lambda root: fx.write_longi_masks_release(root, [1, 2, 3, 10, 11])[0],
    "grouped_mr_heart": lambda root: fx.write_heart_release(root, [101, 102, 103, 201])[0],
    "paired_ct_lung": lambda root: _lung(root, 4),
    "paired_mrus_brain": lambda root: fx.write_resect_release(root, {"train": [1, 2, 4], "test": [3, 5]})[0],
    "paired_mrus_prostate": lambda root: fx.write_mrus_release(root, 11)[0],
    "unpaired_ct_abdomen": lambda root: fx.write_abdomen_release(root, [1, 2, 3, 4, 21, 22, 23, 24])[0],
    "unpaired_ct_lung": lambda root: _lung(root, 10),
    "unpaired_mr_brain": lambda root: fx.write_hippocampus_release(root, [1, 3, 5, 311, 312])[0],
    "unpaired_us_prostate_cv": lambda root: fx.write_trus_release(root)[0],
}
#: (demo, demo_train.py options, the YAML it trains, whether to predict too)
RUNS = [
    ("grouped_mask_prostate_longitudinal", [], "grouped_mask_prostate_longitudinal_ddf.yaml", True),
    ("grouped_mask_prostate_longitudinal", ["--dvf"], "grouped_mask_prostate_longitudinal_dvf.yaml", False),
    ("grouped_mr_heart", [], "grouped_mr_heart.yaml", True),
    ("paired_ct_lung", [], "paired_ct_lung.yaml", True),
    ("paired_mrus_brain", [], "paired_mrus_brain.yaml", True),
    ("paired_mrus_prostate", [], "paired_mrus_prostate.yaml", True),
    ("unpaired_ct_abdomen", ["--method", "comb"], "unpaired_ct_abdomen_comb.yaml", True),
    ("unpaired_ct_abdomen", ["--method", "unsup"], "unpaired_ct_abdomen_unsup.yaml", False),
    ("unpaired_ct_abdomen", ["--method", "weakly"], "unpaired_ct_abdomen_weakly.yaml", False),
    ("unpaired_ct_lung", [], "unpaired_ct_lung.yaml", True),
    ("unpaired_mr_brain", [], "unpaired_mr_brain.yaml", True),
    ("unpaired_us_prostate_cv", [], "unpaired_us_prostate_cv.yaml", True),
]


def _binary_dice(a, b):
    a, b = a >= 0.5, b >= 0.5
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total


def _check_predictions(out, labeled):
    with open(os.path.join(out, "metrics.csv"), newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert rows, "no test pair was predicted"
    for row in rows:
        pair = "_".join(str(int(i)) for i in yaml.safe_load(row["pair_index"]))
        folder = os.path.join(out, f"pair_{pair}")
        assert os.path.isfile(os.path.join(folder, "ddf.nii.gz"))
        if labeled:
            label = os.path.join(folder, f"label_{row['label_index']}")
            pred, _ = read_image(os.path.join(label, "pred_fixed_label.nii.gz"))
            fixed, _ = read_image(os.path.join(label, "fixed_label.nii.gz"))
            assert float(row["label_binary_dice"]) == pytest.approx(_binary_dice(pred, fixed), abs=1e-5)
        else:
            assert row["label_binary_dice"] == ""


@pytest.mark.parametrize("demo, options, config_name, predict", RUNS, ids=[r[2][: -len(".yaml")] for r in RUNS])
def test_one_epoch_of_the_deepreg_yaml(demo, options, config_name, predict, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the scripts change to the repository root; this restores the directory after
    folder = tmp_path / "demo"
    archive = ARCHIVES[demo](str(tmp_path / "release"))
    assert importlib.import_module(f"demos.{demo}.demo_data").main(["--dir", str(folder), "--source", archive]) == 0

    exp = importlib.import_module(f"demos.{demo}.demo_train").main(["--dir", str(folder), "-g", ""] + options)
    assert os.path.isfile(os.path.join(exp, "save", "ckpt-1.index"))
    with open(os.path.join(exp, "config.yaml")) as stream:
        saved = yaml.safe_load(stream)
    with open(os.path.join(REPO_ROOT, "demos", demo, config_name)) as stream:
        demo_yaml = yaml.safe_load(stream)
    # the YAML's train section as DeepReg wrote it; the quick config sets epochs and save_period only
    expected = dict(demo_yaml["train"], epochs=1, save_period=1)
    saved["train"]["preprocess"].pop("num_parallel_calls")  # tfreg's default (-1) written out
    assert saved["train"] == expected
    dataset = saved["dataset"]
    if dataset["type"] == "paired":
        assert (dataset["moving_image_shape"], dataset["fixed_image_shape"]) == ([16, 16, 16], [8, 8, 8])
    else:
        assert dataset["image_shape"] == [16, 16, 16]
    for split in ("train", "valid", "test"):
        dirs = dataset[split]["dir"]
        assert all(d.startswith(str(folder / "dataset")) for d in (dirs if isinstance(dirs, list) else [dirs]))

    if predict:
        args = ["--dir", str(folder), "-g", ""] + options
        out = importlib.import_module(f"demos.{demo}.demo_predict").main(args)
        runs = "logs_predict/" + options[1] if options[:1] == ["--method"] else "logs_predict"
        assert glob.glob(str(folder / runs / "*" / "test")) == [out]
        _check_predictions(out, labeled=dataset["test"]["labeled"])
