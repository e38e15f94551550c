"""demos/spine_ctmr_rigidity: demo_data.py writes the phantom offline (checked against the files, read here),
the tfreg_preprocess command line and its absence, demo_train.py's dataset facts and override, and (slow) a
1-epoch training of one of van Ulsen's configurations from config/ plus prediction and evaluation."""

import csv
import json
import os

import numpy as np
import pytest
import yaml

from demos.spine_ctmr_rigidity import demo_data, demo_train
from tfreg.data.image_io import read_image

FOLDERS = ("moving_images", "fixed_images", "moving_labels", "fixed_labels", "ddfs")


@pytest.fixture(scope="module")
def tiny_demo(tmp_path_factory):
    folder = tmp_path_factory.mktemp("spine")
    assert demo_data.main(["--tiny", "--source", "synthetic", "--dir", str(folder)]) == 0
    return folder


def test_demo_data_writes_the_phantom_layout_offline(tiny_demo):
    dataset = tiny_demo / "dataset"
    record = json.load(open(dataset / "conversion.json"))
    assert record["converter"] == "rigid_phantom" and record["source"] == "synthetic"
    assert record["shape"] == [24, 24, 24] and record["num_labels"] == 2
    assert record["splits"] == {"train": ["pair_000", "pair_001"], "valid": ["pair_002"], "test": ["pair_003"]}
    assert record["motion"]["margin"] == 1.0 and record["motion"]["ramp"] == 3.0
    for split, names in record["splits"].items():
        assert sorted(os.listdir(dataset / split)) == sorted(FOLDERS)
        for name in names:
            moving, geometry = read_image(str(dataset / split / "moving_images" / f"{name}.nii.gz"))
            labels, _ = read_image(str(dataset / split / "moving_labels" / f"{name}.nii.gz"), dtype=None)
            ddf, _ = read_image(str(dataset / split / "ddfs" / f"{name}.nii.gz"))
            assert moving.shape == labels.shape == (24, 24, 24) and ddf.shape == (24, 24, 24, 3)
            np.testing.assert_allclose(geometry.spacing, record["spacing_mm"])
            assert set(np.unique(labels)) == {0, 1, 2}
            assert moving[labels > 0].mean() > moving[(labels == 0) & (moving > 0.1)].mean()  # bright "CT" bones
    assert demo_data.main(["--tiny", "--source", "synthetic", "--dir", str(tiny_demo)]) == 1  # needs --overwrite


def test_dataset_facts_from_the_record_or_the_files(tiny_demo, tmp_path):
    facts = demo_train.dataset_facts(str(tiny_demo / "dataset"))
    assert facts == {"shape": [24, 24, 24], "num_labels": 2, "splits": ["train", "valid", "test"]}
    # without the phantom's record (tfreg_preprocess output): the same facts from the files
    copy = tmp_path / "dataset"
    os.makedirs(copy)
    os.symlink(tiny_demo / "dataset" / "train", copy / "train")
    assert demo_train.dataset_facts(str(copy)) == {"shape": [24, 24, 24], "num_labels": 2, "splits": ["train"]}
    override = demo_train.data_override(str(tmp_path), {"shape": [320, 320, 96], "num_labels": 3, "splits": ["train"]})
    dataset = override["dataset"]
    assert dataset["valid"] is None and dataset["test"] is None  # the config's folders are not left behind
    assert dataset["train"]["dir"] == str(copy / "train") and dataset["num_labels"] == 3
    assert dataset["moving_image_shape"] == dataset["fixed_image_shape"] == [320, 320, 96]
    with pytest.raises(SystemExit, match="demo_data.py"):
        demo_train.dataset_facts(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="method must be one of"):
        demo_train.method_config("rigid")
    for method in demo_train.METHODS:
        config = yaml.safe_load(open(demo_train.method_config(method)))
        assert config["train"]["backbone"]["name"] == "thesis_unet"


def test_preprocess_command_line():
    argv = demo_data.preprocess_argv("in/train", "out/train")
    assert (
        argv
        == (
            "--input in/train --out out/train --spacing 1 1 1 --align label --align_labels 5 --crop_size 320 320 96 "
            "--crop_labels 3 4 5 --keep_labels 3 4 5 --percentiles 1 99"
        ).split()
    )
    assert (
        demo_data.preprocess_argv("a", "b", (7, 8), crop_size=(24, 24, 24), overwrite=True)[-16:]
        == (
            "--align_labels 8 --crop_size 24 24 24 --crop_labels 7 8 --keep_labels 7 8 --percentiles 1 99 --overwrite"
        ).split()
    )


def test_input_without_a_train_folder_is_refused(tmp_path, capsys):
    assert demo_data.main(["--input", str(tmp_path), "--dir", str(tmp_path / "demo")]) == 1
    assert "has no train/ folder" in capsys.readouterr().err


@pytest.mark.slow
def test_input_runs_tfreg_preprocess_on_every_split(tiny_demo, tmp_path):
    """The phantom's dataset as a user's data (bones 1 and 2 as the "vertebrae"): each split preprocessed into
    dataset/<split> at the crop size (1 mm: 40 voxels hold both bones), the labels kept 1..2, and demo_train
    reads the facts from the files."""
    argv = ["--input", str(tiny_demo / "dataset"), "--vertebra-labels", "1", "2", "--crop-size", "40", "40", "40"]
    assert demo_data.main(argv + ["--dir", str(tmp_path / "mine")]) == 0
    dataset = tmp_path / "mine" / "dataset"
    for split in ("train", "valid", "test"):
        for folder in FOLDERS[:4]:
            names = os.listdir(dataset / split / folder)
            assert names and all(n.endswith(".nii.gz") for n in names)
        labels, _ = read_image(str(dataset / split / "moving_labels" / names[0]), dtype=None)
        assert labels.shape == (40, 40, 40) and set(np.unique(labels)) == {0, 1, 2}
    facts = demo_train.dataset_facts(str(dataset))
    assert facts == {"shape": [40, 40, 40], "num_labels": 2, "splits": ["train", "valid", "test"]}


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_two_configurations_train_one_epoch_predict_evaluate_and_compare(tiny_demo):
    """demo_train --method us_rp --test from config/rigidity_us_rp.yaml on the 24^3 phantom, then demo_predict:
    the evaluation's DSC of each bone equals the DSC of the written label files; then WS, compared with it."""
    from demos.spine_ctmr_rigidity import demo_predict

    cwd = os.getcwd()
    try:
        exp = demo_train.main(["--method", "us_rp", "--test", "--dir", str(tiny_demo), "-g", ""])
        out = demo_predict.main(["--method", "us_rp", "--test", "--dir", str(tiny_demo), "-g", ""])
    finally:
        os.chdir(cwd)
    saved = yaml.safe_load(open(os.path.join(exp, "save", "config.yaml")))
    assert saved["train"]["backbone"]["name"] == "thesis_unet"
    assert saved["dataset"]["num_labels"] == 2 and saved["dataset"]["sample_label"] == "stack"
    rigidity = [r for r in saved["train"]["loss"]["regularization"] if r["name"] == "rigidity"][0]
    assert rigidity["weight"] == 0.2 and rigidity["mask"] == "moving_label"
    with open(os.path.join(out, "evaluation.csv"), newline="") as stream:
        rows = list(csv.DictReader(stream))
    labels = {row["label"] for row in rows}
    assert {"0", "1", demo_predict.UNION_LABEL} <= labels
    for row in rows:
        if row["label"] in ("0", "1"):
            folder = os.path.join(out, row["pair"], f"label_{row['label']}")
            fixed, _ = read_image(os.path.join(folder, "fixed_label.nii.gz"))
            pred, _ = read_image(os.path.join(folder, "pred_fixed_label.nii.gz"))
            a, b = fixed > 0.5, pred > 0.5
            assert float(row["dice"]) == pytest.approx(2.0 * (a & b).sum() / (a.sum() + b.sum()), abs=1e-6)
            assert row["jac_det_std_in_label"] != ""
    assert os.path.isfile(os.path.join(out, "jacobian.png"))
    assert demo_predict.latest_evaluation(str(tiny_demo), "us_rp", "test", True) == os.path.join(out, "evaluation.csv")
    with pytest.raises(FileNotFoundError, match="--method ws --test first"):
        demo_predict.latest_evaluation(str(tiny_demo), "ws", "test", True)

    # WS (Dice in the loss) against the US-RP run: the per-pair differences of the two evaluations
    try:
        demo_train.main(["--method", "ws", "--test", "--dir", str(tiny_demo), "-g", ""])
        out_ws = demo_predict.main(
            ["--method", "ws", "--baseline", "us_rp", "--test", "--dir", str(tiny_demo), "-g", ""]
        )
    finally:
        os.chdir(cwd)

    def by_label(path, column):
        with open(path, newline="") as stream:
            return {row["label"]: float(row[column]) for row in csv.DictReader(stream)}

    compared = by_label(os.path.join(out_ws, "compare_jac_det_std_in_label_vs_us_rp.csv"), "mean_diff")
    ws = by_label(os.path.join(out_ws, "evaluation.csv"), "jac_det_std_in_label")
    us_rp = by_label(os.path.join(out, "evaluation.csv"), "jac_det_std_in_label")
    for label in ("0", "1", demo_predict.UNION_LABEL):  # one test pair: the mean difference is that pair's
        assert compared[label] == pytest.approx(ws[label] - us_rp[label], abs=1e-9)
