"""tfreg_predict with a segmentation checkpoint: the predicted masks and the per-label Dice / HD95 tables,
checked against NumPy / SciPy on the written files (non-unit, anisotropic spacing)."""

import csv
import os

import numpy as np
import pytest
import SimpleITK as sitk
import yaml
from scipy.spatial.distance import cdist

from tests.engine.test_predict_metrics import reference_hd_assd
from tests.engine.test_train_segmentation import WSSAMNET, write_threshold_data
from tfreg.data.geometry import ImageGeometry

SPACING = (1.5, 2.0, 0.75)
GEOMETRY = ImageGeometry(spacing=SPACING, origin=(3.0, -2.0, 1.0), direction=np.eye(3))


def read_nifti(path):
    """``(array in (i, j, k[, c]) order, spatial spacing)`` read with SimpleITK (not tfreg's reader); NIfTI
    stores channels as a 4th axis, which SimpleITK reads as a 4-D image."""
    image = sitk.ReadImage(str(path))
    return np.transpose(sitk.GetArrayFromImage(image)), image.GetSpacing()[:3]


def surface_points(mask, spacing):
    """Physical coordinates (mm) of the voxels of ``mask`` with a face neighbour outside it (or the array)."""
    padded = np.pad(mask, 1, constant_values=False)
    inner = np.ones_like(mask)
    for axis in range(mask.ndim):
        for shift in (-1, 1):
            inner &= np.roll(padded, shift, axis)[tuple(slice(1, -1) for _ in range(mask.ndim))]
    return np.argwhere(mask & ~inner) * np.asarray(spacing)


def reference_hd95(a, b, spacing):
    """95th percentile of the pooled directed surface distances, by brute force over all point pairs."""
    if not a.any() or not b.any():
        return np.nan
    pa, pb = surface_points(a, spacing), surface_points(b, spacing)
    distances = cdist(pa, pb)
    return float(np.percentile(np.concatenate([distances.min(axis=1), distances.min(axis=0)]), 95))


def reference_dice(a, b):
    total = a.sum() + b.sum()
    return 1.0 if total == 0 else 2.0 * np.logical_and(a, b).sum() / total


def reference_table8(a, b):
    """macJNet's Table 8 ratios of a label ``a`` (reference) and a mask ``b`` from voxel counts: recall,
    precision, |RVD| % and VOE % (NaN where the paper's formula divides by zero; 1 / 1 / - / 0 when both empty)."""
    na, nb, both = int(a.sum()), int(b.sum()), int(np.logical_and(a, b).sum())
    union = na + nb - both
    if na == nb == 0:
        return 1.0, 1.0, np.nan, 0.0
    recall_ = both / na if na else np.nan
    precision_ = both / nb if nb else np.nan
    rvd = abs(nb / na - 1) * 100 if na else np.nan
    return recall_, precision_, rvd, (1 - both / union) * 100


def assert_cell(cell, expected):
    """An empty CSV cell for NaN, else the value."""
    if np.isnan(expected):
        assert cell == ""
    else:
        assert float(cell) == pytest.approx(expected, abs=1e-12)


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def train_and_predict(tmp_path, head):
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    data = write_threshold_data(tmp_path / "data", num_labels=2, geometry=GEOMETRY)
    override = {
        "dataset": {
            "train": {"dir": data},
            "valid": {"dir": data},
            "test": {"dir": data, "format": "nifti", "labeled": True},
            "image_shape": [8, 8, 8],
        },
        "train": {
            "epochs": 3,
            "save_period": 3,
            "head": head,
            "preprocess": {"batch_size": 2, "data_augmentation": None},
            "optimizer": {"learning_rate": 3.0e-2},
        },
    }
    extra = tmp_path / "data.yaml"
    extra.write_text(yaml.safe_dump(override))
    logs = str(tmp_path / "logs")
    _, exp = train(config_path=[WSSAMNET, str(extra)], log_dir=logs, exp_name="run", verbose=0)
    return predict(ckpt_path=os.path.join(exp, "save", "ckpt-3"), split="test", log_dir=logs, exp_name="pred")


@pytest.mark.parametrize("activation", ["sigmoid", "softmax"])
def test_masks_and_per_label_csv_match_numpy_on_the_written_files(tmp_path, activation):
    out = train_and_predict(tmp_path, {"num_classes": None, "activation": activation})
    rows = read_csv(os.path.join(out, "segmentation_metrics.csv"))
    assert list(rows[0]) == [
        "pair_index", "role", "image", "label_index", "dice", "hd95_mm", "hd_mm", "assd_mm",
        "recall", "precision", "rvd_abs_pct", "voe_pct",
    ]  # fmt: skip
    # 4 images in 2 unpaired pairs, 2 label channels (sample_label: all), moving and fixed
    assert len(rows) == 8
    seen = set()
    for row in rows:
        pair = "pair_" + "_".join(row["pair_index"].strip("[]").split(", "))
        role, label = row["role"], int(row["label_index"])
        probabilities, spacing = read_nifti(os.path.join(out, pair, f"{role}_segmentation.nii.gz"))
        mask, mask_spacing = read_nifti(os.path.join(out, pair, f"{role}_segmentation_mask.nii.gz"))
        truth, _ = read_nifti(os.path.join(out, pair, f"label_{label}", f"{role}_label.nii.gz"))
        # the files keep the input's geometry
        np.testing.assert_allclose(spacing, SPACING, rtol=1e-6)
        np.testing.assert_allclose(mask_spacing, SPACING, rtol=1e-6)
        assert mask.shape == (8, 8, 8, 2) and mask.dtype == np.uint8
        # the masks decode the written probabilities: thresholded (sigmoid), argmax one-hot (softmax)
        if activation == "sigmoid":
            assert probabilities.shape == (8, 8, 8, 2)
            np.testing.assert_array_equal(mask, probabilities >= 0.5)
        else:
            assert probabilities.shape == (8, 8, 8, 3)
            winner = np.argmax(probabilities, axis=-1)
            np.testing.assert_array_equal(mask, np.stack([winner == 1, winner == 2], -1))
        # the image's own file: the row names it, and the label written is that file's channel
        assert os.path.basename(row["image"]).startswith("case")
        source_label, _ = read_nifti(os.path.join(tmp_path, "data", "labels", os.path.basename(row["image"])))
        np.testing.assert_array_equal(truth, source_label[..., label])
        a, b = truth >= 0.5, mask[..., label].astype(bool)
        assert float(row["dice"]) == pytest.approx(reference_dice(a, b), abs=1e-12)
        for column, expected in zip(("recall", "precision", "rvd_abs_pct", "voe_pct"), reference_table8(a, b)):
            assert_cell(row[column], expected)
        expected = reference_hd95(a, b, SPACING)
        if np.isnan(expected):
            assert row["hd95_mm"] == ""
        else:
            assert float(row["hd95_mm"]) == pytest.approx(expected, abs=1e-9)
            hd, mean = reference_hd_assd(a, b, SPACING)
            assert float(row["hd_mm"]) == pytest.approx(hd, abs=1e-9)
            assert float(row["assd_mm"]) == pytest.approx(mean, abs=1e-9)
        seen.add((row["image"], label))
    assert len(seen) == 8  # every image and label once

    summary = read_csv(os.path.join(out, "segmentation_metrics_per_label.csv"))
    assert [int(s["label_index"]) for s in summary] == [0, 1]
    for line in summary:
        mine = [r for r in rows if int(r["label_index"]) == int(line["label_index"])]
        dices = np.array([float(r["dice"]) for r in mine])
        hds = np.array([float(r["hd95_mm"]) for r in mine if r["hd95_mm"] != ""])
        assert int(line["count"]) == 4 and int(line["hd95_mm_count"]) == hds.size
        assert float(line["dice_mean"]) == pytest.approx(dices.mean())
        assert float(line["dice_median"]) == pytest.approx(np.median(dices))
        assert float(line["dice_std"]) == pytest.approx(dices.std(ddof=1))
        if hds.size:
            assert float(line["hd95_mm_mean"]) == pytest.approx(hds.mean())
            full = np.array([float(r["hd_mm"]) for r in mine if r["hd_mm"] != ""])
            assert float(line["hd_mm_median"]) == pytest.approx(np.median(full))
    assert list(summary[0])[-19:] == ["hd95_mm_count"] + [
        f"{m}_{s}"
        for m in ("hd_mm", "assd_mm", "recall", "precision", "rvd_abs_pct", "voe_pct")
        for s in ("mean", "median", "std")
    ]
    for line in summary:
        mine = [r for r in rows if int(r["label_index"]) == int(line["label_index"])]
        for column in ("recall", "precision", "rvd_abs_pct", "voe_pct"):
            values = np.array([float(r[column]) for r in mine if r[column] != ""])
            if values.size:
                assert float(line[f"{column}_mean"]) == pytest.approx(values.mean())
                assert float(line[f"{column}_median"]) == pytest.approx(np.median(values))

    # metrics.csv keeps DeepReg's columns; a segmentation model has no registration output to fill them
    table = read_csv(os.path.join(out, "metrics.csv"))
    assert list(table[0])[:3] == ["image_ssd", "label_binary_dice", "label_tre"]
    assert all(r["image_ssd"] == r["label_binary_dice"] == r["label_tre"] == "" for r in table)
    if activation == "sigmoid":
        # the model learnt something: the scores are not all trivial (some finite HD95, some overlap)
        assert any(r["hd95_mm"] != "" for r in rows) and max(float(r["dice"]) for r in rows) > 0


def test_segmentation_scores_of_shifted_boxes_in_mm():
    """Two 4 x 4 boxes, one shifted by one voxel along the first axis (spacing 2 x 0.5 mm): analytic values."""
    from tfreg.engine.predict_segmentation import segmentation_scores

    a = np.zeros((10, 10), bool)
    b = np.zeros((10, 10), bool)
    a[2:6, 2:6] = True
    b[3:7, 2:6] = True
    scores = segmentation_scores(a.astype(np.float32), b, spacing=(2.0, 0.5))
    assert scores["dice"] == pytest.approx(2 * 12 / 32)
    # 12 of 16 voxels shared either way, equal volumes, union 20
    assert scores["recall"] == pytest.approx(12 / 16) and scores["precision"] == pytest.approx(12 / 16)
    assert scores["rvd_abs_pct"] == 0.0 and scores["voe_pct"] == pytest.approx((1 - 12 / 20) * 100)
    inner = np.zeros((10, 10), bool)
    inner[3:5, 2:6] = True  # 8 voxels inside the label a: over-segmentation is 0, half the volume found
    small = segmentation_scores(a.astype(np.float32), inner, spacing=(2.0, 0.5))
    assert small["precision"] == 1.0 and small["recall"] == pytest.approx(0.5)
    assert small["rvd_abs_pct"] == pytest.approx(50.0) and small["voe_pct"] == pytest.approx(50.0)
    # surface of each box: 12 voxels; the ones on the rows that do not meet the other surface are 2 mm off
    assert scores["hd95_mm"] == pytest.approx(reference_hd95(a, b, (2.0, 0.5)))
    hd, mean = reference_hd_assd(a, b, (2.0, 0.5))
    assert scores["hd_mm"] == pytest.approx(hd) and scores["assd_mm"] == pytest.approx(mean)
    assert scores["hd_mm"] == pytest.approx(2.0)  # the rows that meet no surface of the other box are 2 mm off
    empty = segmentation_scores(np.zeros((10, 10)), b, spacing=(2.0, 0.5))
    assert (
        empty["dice"] == 0.0 and np.isnan(empty["hd95_mm"]) and np.isnan(empty["hd_mm"]) and np.isnan(empty["assd_mm"])
    )
    # an empty label: nothing to recall, no volume to compare to; everything predicted is wrong
    assert np.isnan(empty["recall"]) and np.isnan(empty["rvd_abs_pct"])
    assert empty["precision"] == 0.0 and empty["voe_pct"] == 100.0
    missed = segmentation_scores(a.astype(np.float32), np.zeros((10, 10), bool), spacing=(2.0, 0.5))
    assert missed["recall"] == 0.0 and np.isnan(missed["precision"]) and missed["rvd_abs_pct"] == 100.0
    none = segmentation_scores(np.zeros((10, 10)), np.zeros((10, 10), bool), spacing=(2.0, 0.5))
    assert none["recall"] == none["precision"] == 1.0 and none["voe_pct"] == 0.0 and np.isnan(none["rvd_abs_pct"])


def test_rows_skip_unlabeled_samples_and_summary_counts_each_image_once(tmp_path):
    from tfreg.engine.predict_segmentation import segmentation_rows, write_segmentation_csvs

    maps = {"moving_segmentation": "moving_label", "fixed_segmentation": "fixed_label"}
    grids = {"moving_segmentation": "moving", "fixed_segmentation": "fixed"}
    mask = np.zeros((6, 6, 1), bool)
    mask[1:4, 1:4, 0] = True
    label = mask[..., 0].astype(np.float32)
    arrays = {
        "moving_segmentation_mask": mask,
        "fixed_segmentation_mask": np.zeros_like(mask),
        "moving_label": label,
        "fixed_label": label,
    }
    geometry = ImageGeometry.identity(2)
    args = ({"moving": geometry, "fixed": geometry}, {"moving": "a.nii.gz", "fixed": "b.nii.gz"})
    assert segmentation_rows(maps, grids, arrays, [0, 1], -1, *args) == []
    rows = segmentation_rows(maps, grids, arrays, [0, 1], 0, *args)
    assert [(r["role"], r["image"], r["dice"]) for r in rows] == [
        ("moving", "a.nii.gz", 1.0),
        ("fixed", "b.nii.gz", 0.0),
    ]
    # image a again (as in another pair): summarised once
    rows += segmentation_rows(maps, grids, {**arrays, "fixed_segmentation_mask": mask}, [2, 0], 0, *args)[1:2]
    rows[-1]["image"] = "a.nii.gz"
    write_segmentation_csvs(rows, str(tmp_path))
    summary = read_csv(tmp_path / "segmentation_metrics_per_label.csv")
    assert summary[0]["count"] == "2" and float(summary[0]["dice_mean"]) == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"label index 1 has no channel in moving_segmentation_mask"):
        segmentation_rows(maps, grids, arrays, [0, 1], 1, *args)
