"""Training and tfreg_predict on a paired dataset with landmarks (BraTS-Reg layout): errors in the CSVs in mm."""

import csv
import os

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tests.data.helpers import OBLIQUE
from tests.data.test_landmarks import FILE_SHAPE, half_pixel, write_case
from tests.engine.deepreg_configs import write_config
from tfreg.data.image_io import read_image

MOVING_SHAPE, FIXED_SHAPE = (8, 8, 8), (8, 8, 8)


def config(root):
    split = {"dir": str(root), "format": "nifti", "labeled": False}
    return {
        "dataset": {
            "train": split,
            "test": split,
            "type": "paired",
            "moving_image_shape": list(MOVING_SHAPE),
            "fixed_image_shape": list(FIXED_SHAPE),
            "landmarks": True,
            "max_landmarks": 3,
            "landmark_roi_size": 3,
        },
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]},
            "loss": {"image": {"name": "ssd", "weight": 1.0}, "regularization": {"name": "bending", "weight": 0.1}},
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-2},
            "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1, "data_augmentation": {"name": "affine"}},
            "epochs": 1,
            "save_period": 1,
        },
    }


def test_train_and_predict_report_landmark_errors(tmp_path):
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    data = tmp_path / "data"
    write_case(data, "case1")
    write_case(data, "case2", moving={4: (3.0, 3.0, 3.0)}, fixed={4: (4.0, 5.0, 6.0)})
    path = write_config(config(data), tmp_path / "lm.yaml")
    train(config_path=path, log_dir=str(tmp_path / "logs"), exp_name="run", verbose=0)
    out = predict(
        ckpt_path=str(tmp_path / "logs" / "run" / "save" / "ckpt-1"),
        split="test",
        log_dir=str(tmp_path / "logs"),
        exp_name="pred",
    )
    with open(os.path.join(out, "metrics.csv")) as handle:
        rows = {row["pair_index"]: row for row in csv.DictReader(handle)}
    assert list(next(iter(rows.values())))[5:11] == [
        "landmark_count",
        "landmark_mean_ae",
        "landmark_median_ae",
        "landmark_robustness",
        "landmark_mean_ae_before",
        "landmark_median_ae_before",
    ]
    assert list(next(iter(rows.values())))[11:] == [
        "label_hd_mm",
        "label_assd_mm",
        "ddf_folding_count",
        "inference_time_s",
    ]
    # independent reference: the model-voxel landmarks by the half-pixel rule, the written DDF sampled by
    # scipy, mm by SimpleITK from the written moving image (it carries the model grid's geometry)
    from tests.data.test_landmarks import FIXED_VOXELS, MOVING_VOXELS

    cases = {
        "[0]": ([MOVING_VOXELS[3], MOVING_VOXELS[7]], [FIXED_VOXELS[3], FIXED_VOXELS[7]]),
        "[1]": ([(3.0, 3.0, 3.0)], [(4.0, 5.0, 6.0)]),
    }
    for pair, (moving_voxels, fixed_voxels) in cases.items():
        folder = os.path.join(out, f"pair_{pair[1:-1]}")
        ddf, _ = read_image(os.path.join(folder, "ddf.nii.gz"))
        reference = sitk.ReadImage(os.path.join(folder, "moving_image.nii.gz"))
        moving = half_pixel(moving_voxels, FILE_SHAPE, MOVING_SHAPE)
        fixed = half_pixel(fixed_voxels, FILE_SHAPE, FIXED_SHAPE)
        moved = fixed + np.stack(
            [
                ndimage.map_coordinates(ddf[..., c].astype(np.float64), fixed.T, order=1, mode="nearest")
                for c in range(3)
            ],
            axis=-1,
        )

        def mm(points):
            return np.array([reference.TransformContinuousIndexToPhysicalPoint(p.tolist()) for p in points])

        after = np.linalg.norm(mm(moving) - mm(moved), axis=1)
        before = np.linalg.norm(mm(moving) - mm(fixed), axis=1)
        row = rows[pair]
        assert int(row["landmark_count"]) == len(moving_voxels)
        assert float(row["landmark_mean_ae"]) == pytest.approx(after.mean(), rel=1e-4, abs=1e-5)
        assert float(row["landmark_median_ae"]) == pytest.approx(np.median(after), rel=1e-4, abs=1e-5)
        assert float(row["landmark_mean_ae_before"]) == pytest.approx(before.mean(), rel=1e-6)
        assert float(row["landmark_robustness"]) == pytest.approx(np.mean(after < before))
    # the written moving image's geometry is the file's, resized: (8, 10, 12) -> 8^3 keeps the extent
    src = OBLIQUE.resized(FILE_SHAPE, MOVING_SHAPE)
    np.testing.assert_allclose(reference.GetSpacing(), src.spacing, rtol=1e-5)
