"""tfreg.engine.predict on DeepReg's paired test data: output tree, geometry, metrics, errors."""

import csv
import os

import numpy as np
import pytest
import SimpleITK as sitk

from tests.conftest import data_root
from tests.engine.deepreg_configs import paired_config, write_config
from tfreg.data.image_io import read_image
from tfreg.engine.checkpoint import CheckpointError
from tfreg.engine.predict import predict


@pytest.fixture(scope="module")
def predicted(trained, tmp_path_factory):
    out = tmp_path_factory.mktemp("predict")
    ckpt = os.path.join(trained["exp"], "save", "ckpt-2")
    path = predict(ckpt_path=ckpt, split="test", log_dir=str(out), exp_name="pred", batch_size=2)
    return dict(path=path, root=out, ckpt=ckpt)


def test_tree_and_csv_columns(predicted):
    path = predicted["path"]
    assert path.endswith(os.path.join("pred", "test"))
    pairs = sorted(d for d in os.listdir(path) if d.startswith("pair_"))
    assert pairs == ["pair_0", "pair_1"]  # the two test cases, in sorted file order
    for pair in pairs:
        files = sorted(os.listdir(os.path.join(path, pair)))
        assert {"moving_image.nii.gz", "fixed_image.nii.gz", "pred_fixed_image.nii.gz", "ddf.nii.gz"} <= set(files)
        labels = [f for f in files if f.startswith("label_")]
        assert labels, files
        for label in labels:
            assert sorted(os.listdir(os.path.join(path, pair, label))) == [
                "fixed_label.nii.gz",
                "moving_label.nii.gz",
                "pred_fixed_label.nii.gz",
            ]
    with open(os.path.join(path, "metrics.csv")) as handle:
        rows = list(csv.DictReader(handle))
    # DeepReg's columns first, then tfreg's surface distances and folding count, then the inference time
    assert list(rows[0]) == [
        "image_ssd", "label_binary_dice", "label_tre", "pair_index", "label_index",
        "label_hd_mm", "label_assd_mm", "ddf_folding_count", "inference_time_s",
    ]  # fmt: skip
    n_labels = sum(len([f for f in os.listdir(os.path.join(path, p)) if f.startswith("label_")]) for p in pairs)
    assert len(rows) == n_labels and {r["pair_index"] for r in rows} == {"[0]", "[1]"}
    assert os.path.isfile(os.path.join(path, "metrics_stats_per_label.csv"))
    assert os.path.isfile(os.path.join(path, "metrics_stats_overall.csv"))
    assert os.path.isfile(os.path.join(os.path.dirname(path), "config.yaml"))


def test_inference_time_is_the_batch_forward_time_shared_by_its_samples(predicted):
    """batch_size 2: the samples of one batch share one value (the batch's seconds / 2), positive and finite."""
    with open(os.path.join(predicted["path"], "metrics.csv")) as handle:
        seconds = [float(r["inference_time_s"]) for r in csv.DictReader(handle)]
    assert all(np.isfinite(seconds)) and min(seconds) > 0
    for k in range(0, len(seconds) - 1, 2):
        assert seconds[k] == seconds[k + 1]
    # a forward pass of an 8^3 model on CPU takes well under a second; tracing (seconds) is not in it
    assert max(seconds) < 2.0


def test_outputs_match_the_restored_model_and_csv(trained, predicted):
    """The written DDF is the trained model's output for the same inputs, and the CSV agrees with the files."""
    pair = os.path.join(predicted["path"], "pair_0")
    moving, _ = read_image(os.path.join(pair, "moving_image.nii.gz"))
    fixed, _ = read_image(os.path.join(pair, "fixed_image.nii.gz"))
    ddf, _ = read_image(os.path.join(pair, "ddf.nii.gz"))
    assert moving.shape == (16, 16, 16) and fixed.shape == (8, 8, 8) and ddf.shape == (8, 8, 8, 3)
    inputs = {"moving_image": moving[None], "fixed_image": fixed[None], "indices": np.zeros((1, 2), np.float32)}
    expected = trained["model"](inputs, training=False)["ddf"].numpy()[0]
    np.testing.assert_allclose(ddf, expected, atol=1e-5)
    pred, _ = read_image(os.path.join(pair, "pred_fixed_image.nii.gz"))
    with open(os.path.join(predicted["path"], "metrics.csv")) as handle:
        row = next(r for r in csv.DictReader(handle) if r["pair_index"] == "[0]")
    assert float(row["image_ssd"]) == pytest.approx(np.mean((fixed.astype(np.float64) - pred) ** 2), rel=1e-5)


def test_nifti_outputs_keep_the_input_geometry(predicted):
    """Model-space geometry: the file's physical extent covered by the resized grid (0.4 mm files)."""
    source = data_root() / "deepreg_test/nifti/paired/test/fixed_images/case000025.nii.gz"
    src = sitk.ReadImage(str(source))
    out = sitk.ReadImage(os.path.join(predicted["path"], "pair_0", "pred_fixed_image.nii.gz"))
    expected_spacing = np.asarray(src.GetSpacing()) * np.asarray(src.GetSize()) / np.asarray(out.GetSize())
    np.testing.assert_allclose(out.GetSpacing(), expected_spacing, rtol=1e-5)
    np.testing.assert_allclose(out.GetDirection(), src.GetDirection(), atol=1e-6)
    # half-pixel resize: voxel 0 of the new grid is centred half a new voxel inside the old extent
    start = np.asarray(src.TransformContinuousIndexToPhysicalPoint([-0.5] * 3))
    shift = np.asarray(src.GetDirection()).reshape(3, 3) @ (0.5 * np.asarray(out.GetSpacing()))
    np.testing.assert_allclose(out.GetOrigin(), start + shift, atol=1e-4)


def test_existing_output_is_kept_unless_overwrite(predicted):
    marker = os.path.join(predicted["path"], "keep.txt")
    open(marker, "w").close()
    with pytest.raises(FileExistsError, match="--overwrite"):
        predict(ckpt_path=predicted["ckpt"], split="test", log_dir=str(predicted["root"]), exp_name="pred")
    assert os.path.exists(marker)
    predict(
        ckpt_path=predicted["ckpt"],
        split="test",
        log_dir=str(predicted["root"]),
        exp_name="pred",
        overwrite=True,
        save_nifti=False,
        save_png=True,
    )
    assert not os.path.exists(marker)
    pngs = os.listdir(os.path.join(predicted["path"], "pair_0", "fixed_image"))
    assert sorted(pngs) == [f"depth{k}_fixed_image.png" for k in range(8)]
    assert not [d for d in os.listdir(predicted["root"] / "pred") if d.startswith(".")]  # no scratch folder left


def test_predict_other_split_and_bad_inputs(trained, tmp_path):
    ckpt = os.path.join(trained["exp"], "save", "ckpt-1")
    path = predict(ckpt_path=ckpt, split="valid", log_dir=str(tmp_path), exp_name="v")
    assert path.endswith(os.path.join("v", "valid"))  # DeepReg always wrote test/
    with pytest.raises(CheckpointError, match="checkpoint not found"):
        predict(ckpt_path=os.path.join(trained["exp"], "save", "ckpt-9"), split="test", log_dir=str(tmp_path))
    with pytest.raises(CheckpointError, match=r"DeepReg 0\.1's '\.ckpt' files .* are not read"):
        predict(ckpt_path=str(tmp_path / "model.ckpt"), split="test", log_dir=str(tmp_path))
    other = paired_config(data_root())
    other["train"]["backbone"]["num_channel_initial"] = 8
    # refused against the training config saved beside the checkpoint, before the weights are compared
    with pytest.raises(ValueError, match=r"train\.backbone is .*'num_channel_initial': 8.* trained with"):
        predict(
            ckpt_path=ckpt,
            split="test",
            log_dir=str(tmp_path),
            exp_name="o",
            config_path=write_config(other, tmp_path / "other.yaml"),
        )
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="--split"):
        predict(ckpt_path=ckpt, split="testing", log_dir=str(tmp_path))
