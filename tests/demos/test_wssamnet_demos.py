"""The three segmentation-guided demos end to end on their tiny synthetic data (CPU, about a minute each).

Each test runs ``demo_data.py --synthetic``, ``demo_train.py --test`` and ``demo_predict.py --test`` as the
scripts' ``main`` functions (one process: TensorFlow is imported once) in a temporary demo folder
(``--dir``), then checks the predictions against what the files say, computed here with NumPy:
Dice of the written warped labels (OASIS, Abdomen CT->MR), and the landmark distances of the source CSVs
(BraTSReg).
"""

import csv
import glob
import importlib
import os

import numpy as np
import pytest
import yaml

from tfreg.data.image_io import read_image

# whole-system runs (up to a minute each): CI runs them in its separate slow step
pytestmark = [pytest.mark.filterwarnings("ignore::UserWarning"), pytest.mark.slow]


def _main(demo, script):
    return importlib.import_module(f"demos.{demo}.{script}").main


def _rows(path):
    with open(path, newline="") as stream:
        return list(csv.DictReader(stream))


def _binary_dice(a, b):
    a, b = a > 0.5, b > 0.5
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total


def _check_dice_column(out):
    """metrics.csv's label_binary_dice is the Dice of the written pred_fixed_label and fixed_label files."""
    rows = _rows(os.path.join(out, "metrics.csv"))
    assert rows
    for row in rows:
        pair = "_".join(str(int(i)) for i in yaml.safe_load(row["pair_index"]))
        folder = os.path.join(out, f"pair_{pair}", f"label_{row['label_index']}")
        pred, _ = read_image(os.path.join(folder, "pred_fixed_label.nii.gz"))
        fixed, _ = read_image(os.path.join(folder, "fixed_label.nii.gz"))
        assert float(row["label_binary_dice"]) == pytest.approx(_binary_dice(pred, fixed), abs=1e-5)


def _stage_configs(tmp_path):
    (run,) = glob.glob(str(tmp_path / "logs_train" / "*-test"))
    return run, {
        os.path.basename(os.path.dirname(os.path.dirname(p))): yaml.safe_load(open(p))
        for p in glob.glob(os.path.join(run, "*", "save", "config.yaml"))
    }


def test_oasis_wssamnet_pp_demo(tmp_path, capsys):
    folder = ["--dir", str(tmp_path)]
    assert (
        _main("oasis_wssamnet_pp", "demo_data")(["--synthetic", "--cases", "6", "--shape", "24", "24", "24"] + folder)
        == 0
    )
    assert sorted(os.listdir(tmp_path / "dataset")) == ["checksums.sha256", "conversion.json", "test", "train", "valid"]
    exp = _main("oasis_wssamnet_pp", "demo_train")(["--test"] + folder)
    run, configs = _stage_configs(tmp_path)
    assert exp == os.path.join(run, "register_contour")
    assert configs["segmenter"]["train"]["method"] == "segmentation"
    registration = configs["register_contour"]
    assert registration["train"]["attention"]["name"] == "contour"
    assert registration["dataset"]["image_shape"] == [16, 16, 16] and registration["train"]["epochs"] == 1
    # the frozen segmenter comes from stage 1's last checkpoint, with the config's parts
    assert registration["train"]["init_from"]["path"] == os.path.join(run, "segmenter", "save", "ckpt-1")
    assert registration["train"]["init_from"]["parts"] == {"segmenter/backbone": "backbone", "segmenter/head": "head"}

    out = _main("oasis_wssamnet_pp", "demo_predict")(["--test"] + folder)
    assert out.startswith(str(tmp_path / "logs_predict")) and out.endswith("test")
    pairs = sorted(glob.glob(os.path.join(out, "pair_*")))
    assert pairs
    for name in ("ddf", "moving_segmentation", "fixed_segmentation", "moving_attention", "fixed_attention"):
        assert os.path.isfile(os.path.join(pairs[0], f"{name}.nii.gz")), name
    _check_dice_column(out)
    assert "label_binary_dice" in capsys.readouterr().out


def test_abdomen_ctmr_wssamnet_pp_demo(tmp_path):
    folder = ["--dir", str(tmp_path)]
    assert _main("abdomen_ctmr_wssamnet_pp", "demo_data")(["--synthetic", "--shape", "24", "24", "24"] + folder) == 0
    _main("abdomen_ctmr_wssamnet_pp", "demo_train")(["--test"] + folder)
    run, configs = _stage_configs(tmp_path)
    assert configs["segmenter_ct"]["train"]["segment"] == "moving"
    assert configs["segmenter_mr"]["train"]["segment"] == "fixed"
    init_from = configs["register"]["train"]["init_from"]
    assert [entry["path"] for entry in init_from] == [
        os.path.join(run, stage, "save", "ckpt-1") for stage in ("segmenter_ct", "segmenter_mr")
    ]
    assert [sorted(entry["parts"]) for entry in init_from] == [
        ["moving_segmenter/backbone", "moving_segmenter/head"],
        ["fixed_segmenter/backbone", "fixed_segmenter/head"],
    ]

    out = _main("abdomen_ctmr_wssamnet_pp", "demo_predict")(["--test"] + folder)
    assert out.endswith("valid")
    (pair,) = glob.glob(os.path.join(out, "pair_*"))  # the one registration_val pair
    segmentation, _ = read_image(os.path.join(pair, "moving_segmentation.nii.gz"))
    assert segmentation.shape == (16, 16, 16, 4)  # the four organs
    _check_dice_column(out)


def test_brats_reg_wssamnet_demo(tmp_path):
    folder = ["--dir", str(tmp_path)]
    args = ["--synthetic", "--cases", "4", "--shape", "24", "24", "16"] + folder
    assert _main("brats_reg_wssamnet", "demo_data")(args) == 0
    pretrain_images = sorted(os.listdir(tmp_path / "dataset_pretrain" / "train" / "images"))
    assert len(pretrain_images) == 4  # the 2 training cases, both time points
    _main("brats_reg_wssamnet", "demo_train")(["--test"] + folder)
    run, configs = _stage_configs(tmp_path)
    assert configs["pretrain"]["dataset"]["type"] == "self_paired"
    register = configs["register"]
    assert register["train"]["init_from"] == {
        "path": os.path.join(run, "pretrain", "save", "ckpt-1"),
        "parts": ["backbone"],
    }
    assert register["train"]["segmenter"]["target"] == "roi" and register["dataset"]["landmark_roi_size"] == 3

    out = _main("brats_reg_wssamnet", "demo_predict")(["--test"] + folder)
    (row,) = _rows(os.path.join(out, "metrics.csv"))  # the one test case
    (case,) = os.listdir(tmp_path / "dataset" / "test" / "fixed_images")
    case = case[: -len(".nii.gz")]
    # before registration, AE is the physical distance of corresponding landmarks, straight from the CSVs
    moving = np.loadtxt(tmp_path / "dataset" / "test" / "moving_landmarks" / f"{case}.csv", delimiter=",", skiprows=1)
    fixed = np.loadtxt(tmp_path / "dataset" / "test" / "fixed_landmarks" / f"{case}.csv", delimiter=",", skiprows=1)
    distances = np.linalg.norm(moving[:, 1:] - fixed[:, 1:], axis=1)
    assert int(row["landmark_count"]) == len(distances)
    assert float(row["landmark_median_ae_before"]) == pytest.approx(np.median(distances), abs=1e-3)
    assert float(row["landmark_mean_ae_before"]) == pytest.approx(np.mean(distances), abs=1e-3)
    assert 0.0 <= float(row["landmark_robustness"]) <= 1.0
    (pair,) = glob.glob(os.path.join(out, "pair_*"))
    for name in ("ddf", "moving_segmentation", "fixed_segmentation", "moving_attention", "fixed_attention"):
        assert os.path.isfile(os.path.join(pair, f"{name}.nii.gz")), name
