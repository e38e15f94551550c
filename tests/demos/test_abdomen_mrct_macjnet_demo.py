"""demos/abdomen_mrct_macjnet: demo_data.py on a tiny synthetic release in Learn2Reg's layout (MR -> CT, the
liver alone, affine pre-alignment, the training grid over the CT's field of view; checked against the source
files read here), the command lines and argument handling of the three scripts, and (slow, once the macJNet
configs are in config/) the four training stages, the full-resolution prediction and the evaluation."""

import csv
import glob
import json
import os

import numpy as np
import pytest
import SimpleITK as sitk
import yaml

from demos import staged_demo
from demos.abdomen_mrct_macjnet import demo_data, demo_predict, demo_train
from tfreg.data.image_io import read_image

FOLDERS = ("moving_images", "fixed_images", "moving_labels", "fixed_labels")
SOURCE = os.path.join("dataset_source", "AbdomenMRCT-synthetic")
CONFIGS_PRESENT = all(
    os.path.isfile(os.path.join(staged_demo.REPO_ROOT, "config", name)) for name in demo_train.STAGES.values()
)


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("macjnet")
    argv = ["--synthetic", "--cases", "3", "--shape", "24", "24", "24", "--grid-shape", "16", "16", "12"]
    assert demo_data.main(argv + ["--dir", str(folder)]) == 0
    return folder


def _array(path):
    return np.transpose(sitk.GetArrayFromImage(sitk.ReadImage(str(path))))


def test_demo_data_converts_aligns_and_resamples(tiny_demo):
    dataset = tiny_demo / "dataset"
    source = tiny_demo / SOURCE
    converted = json.load(open(tiny_demo / "dataset_l2r" / "conversion.json"))
    assert converted["direction"] == {"moving": "MR", "fixed": "CT"} and converted["options"]["labels"] == [1]
    splits = {"train": ["AbdomenMRCT_0001", "AbdomenMRCT_0002"], "valid": ["AbdomenMRCT_0003"]}
    for split, ids in splits.items():
        assert sorted(n[: -len(".nii.gz")] for n in os.listdir(dataset / split / "fixed_images")) == ids
        for pid in ids:
            ct = sitk.ReadImage(str(source / "imagesTr" / f"{pid}_0001.nii.gz"))
            record = json.load(open(dataset / split / "transforms" / f"{pid}.json"))
            assert record["rigid"]["type"] == "AffineTransform" and record["options"]["align_transform"] == "affine"
            assert record["options"]["registration"]["mi_bins"] == 64
            assert record["inputs"]["fixed_image"].endswith(os.path.join("fixed_images", f"{pid}.nii.gz"))
            fixed, geometry = read_image(str(dataset / split / "fixed_images" / f"{pid}.nii.gz"))
            labels = [read_image(str(dataset / split / f / f"{pid}.nii.gz"), dtype=None)[0] for f in FOLDERS[2:]]
            assert all(set(np.unique(label)) <= {0, 1} and label.any() for label in labels)  # the liver alone
            extent = np.asarray(ct.GetSize()) * np.asarray(ct.GetSpacing())
            if split == "train":
                # 16 x 16 x 12 voxels over the CT's 48 mm field of view: 3 x 3 x 4 mm, the outer corner kept
                assert fixed.shape == (16, 16, 12)
                np.testing.assert_allclose(np.asarray(geometry.spacing) * (16, 16, 12), extent, rtol=1e-5)
                corner = np.asarray(ct.GetOrigin()) - np.asarray(ct.GetSpacing()) / 2
                np.testing.assert_allclose(np.asarray(geometry.origin) - np.asarray(geometry.spacing) / 2, corner)
            else:
                # on the CT's own grid: the CT's 1st/99th percentiles mapped to [0, 1] (NumPy, here)
                assert fixed.shape == ct.GetSize()
                np.testing.assert_allclose(geometry.spacing, ct.GetSpacing(), atol=1e-6)
                values = _array(source / "imagesTr" / f"{pid}_0001.nii.gz").astype(np.float64)
                low, high = np.percentile(values, [1, 99])
                np.testing.assert_allclose(fixed, np.clip((values - low) / (high - low), 0, 1), atol=1e-5)
                # the liver of the CT is the fixed label, unchanged on its grid
                np.testing.assert_array_equal(
                    labels[1], (_array(source / "labelsTr" / f"{pid}_0001.nii.gz") == 1).astype(np.uint8)
                )
    # the converted data needs --overwrite to be rebuilt
    assert demo_data.main(["--synthetic", "--dir", str(tiny_demo)]) == 1


def test_command_lines():
    assert demo_data.convert_argv("src", "out") == [
        "src", "out", "--moving", "MR", "--labels", "1", "--label-format", "integer"
    ]  # fmt: skip
    assert demo_data.preprocess_argv("in", "out", (128, 128, 96)) == [
        "--input", "in", "--out", "out", "--align", "image", "--align_transform", "affine", "--mi_bins", "64",
        "--shape", "128", "128", "96", "--percentiles", "1", "99", "-q",
    ]  # fmt: skip
    assert "--shape" not in demo_data.preprocess_argv("in", "out", None)
    # the arguments are the tools' own: both parsers accept them
    from data_scripts import learn2reg_abdomen_ctmr  # noqa: F401  (its parser is built in main)
    from tfreg.cli.preprocess import build_parser

    args = build_parser().parse_args(demo_data.preprocess_argv("in", "out", (128, 128, 96)))
    assert args.shape == [128, 128, 96] and args.align_transform == "affine" and args.mi_bins == 64


def test_missing_release_prints_the_download(tmp_path, capsys):
    assert demo_data.main(["--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "learn2reg.grand-challenge.org/Datasets" in err and "unzip AbdomenMRCT.zip" in err
    assert not os.path.exists(tmp_path / "dataset")


def test_stage_overrides_and_the_joint_init_from(tmp_path):
    os.makedirs(tmp_path / "dataset" / "train")
    override = demo_train.stage_override("reg", str(tmp_path), test=False)
    assert override == {
        "dataset": {"train": {"dir": str(tmp_path / "dataset" / "train"), "format": "nifti", "labeled": True}},
        "train": {},
    }
    test = demo_train.stage_override("reg", str(tmp_path), test=True)
    assert test["dataset"]["moving_image_shape"] == test["dataset"]["fixed_image_shape"] == [32, 32, 32]
    assert test["train"]["epochs"] == test["train"]["save_period"] == 3
    assert test["train"]["trainer"] == {"level_epochs": [1, 1], "freeze_epochs": 1}
    assert demo_train.stage_override("seg_mr", str(tmp_path), test=True)["train"]["backbone"] == {"channels": [4, 8]}
    joint = demo_train.stage_override("joint", str(tmp_path), test=True)["train"]
    assert joint["segmenter"] == {"backbone": {"channels": [4, 8]}} and joint["epochs"] == 1
    init_from = demo_train.joint_init_from({"reg": "r/ckpt-3", "seg_ct": "c/ckpt-1", "seg_mr": "m/ckpt-1"})
    assert init_from == [
        {"path": "r/ckpt-3", "parts": ["backbone"]},
        {"path": "m/ckpt-1", "parts": {"moving_segmenter/backbone": "backbone", "moving_segmenter/head": "head"}},
        {"path": "c/ckpt-1", "parts": {"fixed_segmenter/backbone": "backbone", "fixed_segmenter/head": "head"}},
    ]
    assert list(demo_train.STAGES) == ["reg", "seg_ct", "seg_mr", "joint"]


def test_argument_handling(tmp_path, monkeypatch, capsys):
    # no dataset: the message names demo_data.py
    with pytest.raises(SystemExit, match="demo_data.py"):
        demo_train.main(["--dir", str(tmp_path)])
    # a stage config missing from config/ is named before anything trains
    os.makedirs(tmp_path / "dataset" / "train")
    monkeypatch.setitem(demo_train.STAGES, "joint", "macjnet_missing.yaml")
    # (the first missing one: macjnet_missing.yaml once the others are in config/)
    with pytest.raises(FileNotFoundError, match=r"config/macjnet_\w+\.yaml is missing from the repository"):
        demo_train.main(["--dir", str(tmp_path)])
    assert not os.path.exists(tmp_path / "logs_train")
    # predict: no run yet, and the splits it accepts
    with pytest.raises(FileNotFoundError, match="no --test run with a joint checkpoint"):
        demo_predict.main(["--test", "--dir", str(tmp_path)])
    with pytest.raises(SystemExit):
        demo_predict.main(["--split", "test", "--dir", str(tmp_path)])
    assert "invalid choice: 'test'" in capsys.readouterr().err
    assert demo_predict.run_suffix(True) == "-joint-test" and demo_predict.run_suffix(False) == "-joint"


def _binary_dice(a, b):
    a, b = a > 0.5, b > 0.5
    return 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
@pytest.mark.skipif(not CONFIGS_PRESENT, reason="the macJNet stage configs (config/macjnet_*.yaml) are not in config/")
def test_four_stages_predict_and_evaluate(tiny_demo):
    folder = ["--dir", str(tiny_demo)]
    exp = demo_train.main(["--test"] + folder)
    (run,) = glob.glob(str(tiny_demo / "logs_train" / "*-test"))
    assert exp == os.path.join(run, "joint")
    configs = {
        stage: yaml.safe_load(open(os.path.join(run, stage, "save", "config.yaml"))) for stage in demo_train.STAGES
    }
    assert configs["seg_ct"]["train"]["segment"] == "fixed" and configs["seg_mr"]["train"]["segment"] == "moving"
    init_from = configs["joint"]["train"]["init_from"]
    assert [entry["path"] for entry in init_from] == [
        os.path.join(run, "reg", "save", "ckpt-3"),
        os.path.join(run, "seg_mr", "save", "ckpt-1"),
        os.path.join(run, "seg_ct", "save", "ckpt-1"),
    ]
    out = demo_predict.main(["--test"] + folder)
    assert out.endswith(os.path.join("-joint-test", "valid"))
    (pair,) = glob.glob(os.path.join(out, "pair_*"))  # the one registration_val pair
    ddf, _ = read_image(os.path.join(pair, "ddf.nii.gz"))
    assert ddf.shape == (24, 24, 24, 3)  # full resolution: the CT's own grid, not the 32^3 the network saw
    with open(os.path.join(out, demo_predict.EVALUATION), newline="") as stream:
        rows = list(csv.DictReader(stream))
    assert rows and all(np.isfinite(float(row["dice"])) for row in rows)
    warped = glob.glob(os.path.join(pair, "**", "pred_fixed_label.nii.gz"), recursive=True)
    fixed = glob.glob(os.path.join(pair, "**", "fixed_label.nii.gz"), recursive=True)
    assert warped and fixed
    dice = _binary_dice(read_image(warped[0])[0], read_image(fixed[0])[0])
    assert float(rows[0]["dice"]) == pytest.approx(dice, abs=1e-5)
