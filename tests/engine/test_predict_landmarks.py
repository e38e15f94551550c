"""Landmarks through a DDF (files -> loader -> DDF -> mm), and training and tfreg_predict on a paired dataset with
landmarks (BraTS-Reg layout): errors in the CSVs in mm, the landmark files, and tfreg_evaluate on them."""

import csv
import os

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tests.data.helpers import OBLIQUE, write_paired
from tests.data.test_landmarks import (
    FILE_SHAPE,
    _grid,
    _multilinear_field,
    half_pixel,
    sitk_physical,
    write_case,
    write_csv,
)
from tests.engine.deepreg_configs import write_config
from tfreg.data.file_loaders import NiftiFileLoader
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image
from tfreg.data.loaders import PairedDataLoader

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


def _file_voxels(model_voxels, file_shape, model_shape):
    """Model voxels back to file voxels: the inverse of the half-pixel rule, ``v = (o + 0.5) n_in / n_out - 0.5``."""
    return (np.asarray(model_voxels) + 0.5) * np.asarray(file_shape) / np.asarray(model_shape) - 0.5


@pytest.mark.parametrize("ndim", [2, 3])
def test_landmark_files_move_through_an_analytic_ddf(tmp_path, ndim):
    # The moving landmarks are written where an analytic DDF (affine plus coordinate products, which linear
    # interpolation reproduces) sends the fixed ones: m = f + u(f) in model voxels. Read back through files in
    # mm (an oblique geometry, model grids of other sizes than the files), moved through the sampled DDF and
    # converted to mm, the fixed landmarks must land on the moving ones to within 1e-4 voxel.
    from tfreg.engine.predict_metrics import landmark_metrics, landmark_points

    file_shape = FILE_SHAPE[:ndim]
    moving_shape, fixed_shape = (10, 9, 14)[:ndim], (12, 11, 8)[:ndim]
    geometry = (
        OBLIQUE
        if ndim == 3
        else ImageGeometry(spacing=(0.5, 2.0), origin=(-3.0, 7.0), direction=np.array([[0.0, 1.0], [1.0, 0.0]]))
    )
    write_paired(
        str(tmp_path), ["c"], moving_shape=file_shape, fixed_shape=file_shape, num_labels=None, geometry=geometry
    )
    rng = np.random.default_rng(3)
    fixed_model = rng.uniform(1.0, 5.0, (6, ndim))
    moving_model = fixed_model + _multilinear_field(fixed_model, ndim)
    assert np.all(moving_model > 0) and np.all(moving_model < np.asarray(moving_shape) - 1)
    for folder, points, shape in (
        ("fixed_landmarks", fixed_model, fixed_shape),
        ("moving_landmarks", moving_model, moving_shape),
    ):
        voxels = _file_voxels(points, file_shape, shape)
        header = "Landmark,X,Y,Z" if ndim == 3 else "Landmark,X,Y"
        write_csv(str(tmp_path / folder / "c.csv"), range(1, 7), sitk_physical(voxels, geometry), header=header)
    data = PairedDataLoader(NiftiFileLoader, [str(tmp_path)], False, None, 0, moving_shape, fixed_shape, landmarks=True)
    with data:
        sample = data.load_resized_sample([0], [])
        moving_geometry, _ = data.get_geometry([0, -1])
    ddf = _multilinear_field(_grid(fixed_shape), ndim).astype(np.float32)
    points = landmark_points(
        sample["moving_landmarks"], sample["fixed_landmarks"], sample["landmark_mask"], ddf, moving_geometry
    )
    # back to moving model voxels (mm -> voxels with SimpleITK on the model grid): within 1e-4 voxel
    reference = sitk.Image([int(n) for n in moving_shape], sitk.sitkFloat32)
    moving_geometry.apply_to_sitk(reference)
    moved = np.array([reference.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in points["pred_moving"]])
    assert np.max(np.abs(moved - moving_model)) < 1e-4
    unmoved = np.array([reference.TransformPhysicalPointToContinuousIndex(p.tolist()) for p in points["fixed"]])
    np.testing.assert_allclose(unmoved, fixed_model, atol=1e-4)
    metrics = landmark_metrics(
        sample["moving_landmarks"], sample["fixed_landmarks"], sample["landmark_mask"], ddf, moving_geometry
    )
    assert metrics["landmark_count"] == 6
    assert metrics["landmark_mean_ae"] < 1e-4 * max(moving_geometry.spacing)
    assert metrics["landmark_mean_ae_before"] > 0.1 and metrics["landmark_robustness"] == 1.0


def test_train_and_predict_report_landmark_errors(tmp_path):
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train
    from tfreg.evaluation.evaluate import evaluate_pair
    from tfreg.evaluation.inputs import pairs_from_prediction_dir, read_landmarks

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
        # the pair folder's landmark files hold these points (mm, the moving image's frame)
        for name, expected in (
            ("moving_landmarks.csv", mm(moving)),
            ("pred_moving_landmarks.csv", mm(moved)),
            ("fixed_landmarks.csv", mm(fixed)),
        ):
            np.testing.assert_allclose(read_landmarks(os.path.join(folder, name)), expected, atol=1e-4)
    # tfreg_evaluate on the prediction folder: the same TRE, before and after, and robustness
    evaluated = {spec.pair: evaluate_pair(spec)[0] for spec in pairs_from_prediction_dir(out)}
    for pair, row in rows.items():
        values = evaluated[f"pair_{pair[1:-1]}"]
        assert values["n_landmarks"] == int(row["landmark_count"])
        assert values["tre_mean"] == pytest.approx(float(row["landmark_mean_ae"]), rel=1e-9, abs=1e-9)
        assert values["tre_median"] == pytest.approx(float(row["landmark_median_ae"]), rel=1e-9, abs=1e-9)
        assert values["tre_mean_before"] == pytest.approx(float(row["landmark_mean_ae_before"]), rel=1e-9)
        assert values["robustness"] == pytest.approx(float(row["landmark_robustness"]))
    # the written moving image's geometry is the file's, resized: (8, 10, 12) -> 8^3 keeps the extent
    src = OBLIQUE.resized(FILE_SHAPE, MOVING_SHAPE)
    np.testing.assert_allclose(reference.GetSpacing(), src.spacing, rtol=1e-5)
