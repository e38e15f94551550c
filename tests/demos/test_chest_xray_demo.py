"""demos/chest_xray_dfsa: demo_data.py --synthetic for each release (convert + check against the synthetic
release's own files, read here with Pillow and NumPy), and demo_train.py's stage overrides.

The three-stage training and the full-resolution prediction run in the slow step."""

import json
import os

import numpy as np
import pytest
from PIL import Image

from demos.chest_xray_dfsa import demo_data, demo_train
from tests.data_scripts.xray_fixtures import mask_reference
from tfreg.data.image_io import read_image


def _source_mask(source, dataset, case):
    """The merged lung mask of ``case`` as published in the synthetic release (``(rows, cols)`` bool)."""

    def png(path):
        with Image.open(path) as picture:
            return np.asarray(picture.convert("L")) >= 128

    if dataset == "montgomery":
        return png(os.path.join(source, "ManualMask", "leftMask", case + ".png")) | png(
            os.path.join(source, "ManualMask", "rightMask", case + ".png")
        )
    if dataset == "shenzhen":
        return png(os.path.join(source, "mask", case + "_mask.png"))
    fold = "fold1" if int(case[-3:]) % 2 else "fold2"
    gifs = [os.path.join(source, "scr", fold, "masks", f"{side} lung", case + ".gif") for side in ("left", "right")]
    return png(gifs[0]) | png(gifs[1])


@pytest.mark.parametrize("dataset", ["jsrt", "montgomery", "shenzhen"])
def test_demo_data_synthetic_converts_each_release(tmp_path, dataset):
    argv = ["--synthetic", "--dataset", dataset, "--cases", "8", "--shape", "32", "32", "--sizes", "16", "32"]
    assert demo_data.main(argv + ["--dir", str(tmp_path)]) == 0
    dataset_dir = tmp_path / "dataset"
    record = json.load(open(dataset_dir / "conversion.json"))
    assert record["converter"] == dataset and record["sizes"] == [16, 32]
    usable = 6 if dataset == "shenzhen" else 8  # Shenzhen's last two synthetic images have no mask
    assert [len(record["splits"][s]) for s in ("train", "test")] == [usable - usable // 3, usable // 3]
    source = str(tmp_path / "dataset_source" / f"{dataset}-synthetic")
    for split, cases in record["splits"].items():
        for case in cases:
            for size in (16, 32):
                image, geometry = read_image(str(dataset_dir / str(size) / split / "images" / f"{case}.nii.gz"))
                label, _ = read_image(str(dataset_dir / str(size) / split / "labels" / f"{case}.nii.gz"), dtype=None)
                assert image.shape == label.shape == (size, size) and 0.0 <= image.min() and image.max() <= 1.0
                # tfreg's (i, j) is (x, y): the transpose of the (rows, cols) picture
                np.testing.assert_array_equal(label.T, mask_reference(_source_mask(source, dataset, case), size))
                lungs = label.astype(bool)
                assert image[lungs].mean() < image[~lungs].mean()  # dark lungs (JSRT inverted)
    with pytest.raises(SystemExit):
        demo_data.main(["--synthetic", "--shape", "32", "32", "32", "--dir", str(tmp_path)])  # 2 sizes for X-rays
    assert demo_data.main(["--synthetic", "--dir", str(tmp_path)]) == 1  # dataset/ exists: --overwrite needed


def test_demo_train_overrides(tmp_path):
    override = demo_train.data_override(str(tmp_path), [64, 256], test=False)["dataset"]
    assert override["image_shape"] == [64, 64]
    assert override["train"]["dir"].endswith(os.path.join("dataset", "64", "train"))
    assert override["test"]["dir"].endswith(os.path.join("dataset", "256", "test"))
    assert demo_train.data_override(str(tmp_path), [64, 256], test=True)["dataset"]["image_shape"] == [16, 16]
    labels = demo_train.embedding_labels("dfsa_jsrt.yaml", "x/encoder.keras")
    assert labels == [
        {"name": "cross-entropy", "weight": 1.0},
        {"name": "embedding", "weight": 0.1, "encoder": "x/encoder.keras"},
    ]
    with pytest.raises(SystemExit, match="conversion.json is missing"):
        demo_train.converted_dataset(str(tmp_path / "dataset"))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_segmenter_stage_trains_from_its_config_on_the_synthetic_pictures(tmp_path):
    """Stage 1 alone, its saved config checked: config/dfsa_segmenter_jsrt.yaml + the demo YAML."""
    import yaml

    from demos import staged_demo

    argv = ["--synthetic", "--cases", "6", "--shape", "32", "32", "--sizes", "16", "32", "--dir", str(tmp_path)]
    assert demo_data.main(argv) == 0
    cwd = os.getcwd()
    os.chdir(staged_demo.REPO_ROOT)  # the demo YAML's paths are relative to the repository root
    try:
        override = demo_train.data_override(str(tmp_path), [16, 32], test=True)
        configs = [staged_demo.repo_config("dfsa_segmenter_jsrt.yaml"), demo_train.DEMO_CONFIG]
        exp = staged_demo.run_stage("segmenter", configs, override, str(tmp_path), "run-test", 1, "")
    finally:
        os.chdir(cwd)
    assert staged_demo.last_checkpoint(exp).endswith(os.path.join("save", "ckpt-1"))
    saved = yaml.safe_load(open(os.path.join(exp, "save", "config.yaml")))
    assert saved["train"]["method"] == "segmentation" and saved["dataset"]["image_shape"] == [16, 16]
    assert saved["train"]["backbone"]["channels"] == [16, 32, 64, 128, 256]
    assert saved["dataset"]["train"]["dir"] == str(tmp_path / "dataset" / "16" / "train")


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_three_stages_train_from_config_and_predict_at_full_resolution(tmp_path):
    """demo_train --test: segmenter, label auto-encoder (save/encoder.keras) and the dfsa registration network,
    each from its config/ YAML on 16 x 16 pictures; demo_predict --test: the 32 x 32 test pictures at full
    resolution over every ordered pair, the paper's columns consistent with the written files."""
    import csv

    import yaml

    from demos.chest_xray_dfsa import demo_predict

    argv = ["--synthetic", "--cases", "8", "--shape", "32", "32", "--sizes", "16", "32", "--dir", str(tmp_path)]
    assert demo_data.main(argv) == 0
    cwd = os.getcwd()
    try:
        exp = demo_train.main(["--test", "--dir", str(tmp_path), "-g", ""])
        out = demo_predict.main(["--test", "--dir", str(tmp_path), "-g", ""])
    finally:
        os.chdir(cwd)
    saved = yaml.safe_load(open(os.path.join(exp, "save", "config.yaml")))
    assert saved["train"]["method"] == "dfsa" and saved["train"]["backbone"]["name"] == "dfsa_unet"
    encoder = [e for e in saved["train"]["loss"]["label"] if e["name"] == "embedding"][0]["encoder"]
    assert encoder.endswith(os.path.join("autoencoder", "save", "encoder.keras"))
    assert os.path.isfile(encoder if os.path.isabs(encoder) else os.path.join(demo_train.REPO_ROOT, encoder))

    test_images = os.listdir(tmp_path / "dataset" / "32" / "test" / "images")
    with open(os.path.join(out, "metrics.csv"), newline="") as stream:
        rows = list(csv.DictReader(stream))
    n = len(test_images)
    assert n >= 2 and len(rows) == n * (n - 1)  # every ordered pair (dataset.test.pairs: all)
    for row in rows[:3]:
        pair = "_".join(str(int(i)) for i in yaml.safe_load(row["pair_index"]))
        folder = os.path.join(out, f"pair_{pair}")
        pred, _ = read_image(os.path.join(folder, f"label_{row['label_index']}", "pred_fixed_label.nii.gz"))
        fixed, _ = read_image(os.path.join(folder, f"label_{row['label_index']}", "fixed_label.nii.gz"))
        ddf, _ = read_image(os.path.join(folder, "ddf.nii.gz"))
        seg, _ = read_image(os.path.join(folder, "fixed_segmentation.nii.gz"))
        assert pred.shape[:2] == fixed.shape[:2] == ddf.shape[:2] == seg.shape[:2] == (32, 32)  # not the 16 grid
        a, b = fixed > 0.5, pred > 0.5
        dice = 2.0 * np.logical_and(a, b).sum() / max(a.sum() + b.sum(), 1)
        assert float(row["label_binary_dice"]) == pytest.approx(dice, abs=1e-6)
        for column in ("label_hd_mm", "label_assd_mm", "ddf_folding_count"):
            assert row[column] != ""
