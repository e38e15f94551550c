"""tfreg_predict --full_resolution (tfreg.engine.predict_native): train small, test large.

The reference is written here with SciPy alone: the model-grid DDF up-sampled by
``scipy.ndimage.map_coordinates`` at the half-pixel positions, its values mapped to the moving file's voxels,
and the files' images and labels warped by ``map_coordinates`` (linear, and order 0 for labels).
"""

import csv
import os

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tests.data.helpers import write_nifti_folder
from tests.engine.deepreg_configs import write_config
from tests.engine.test_predict_metrics import reference_hd_assd
from tfreg.data.geometry import ImageGeometry
from tfreg.engine.predict_native import native_ddf, warp_array

MODEL_SHAPE = (8, 8)
FILE_SHAPE = (32, 32)
GEOMETRY = ImageGeometry(spacing=(0.5, 0.8), origin=(-3.0, 7.5), direction=np.eye(2))


# ------------------------------------------------------------------------------------------- the reference
def reference_native_ddf(ddf, moving_model_shape, fixed_shape, moving_shape):
    """Up-sample with map_coordinates (edge values beyond the grid), then model moving voxels -> file voxels."""
    ddf = np.asarray(ddf, dtype=np.float64)
    ndim = ddf.shape[-1]
    model_fixed = ddf.shape[:-1]
    y = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in fixed_shape], indexing="ij")
    s = [(y[c] + 0.5) * model_fixed[c] / fixed_shape[c] - 0.5 for c in range(ndim)]
    up = np.stack([ndimage.map_coordinates(ddf[..., c], s, order=1, mode="nearest") for c in range(ndim)], -1)
    q = [(s[c] + up[..., c] + 0.5) * moving_shape[c] / moving_model_shape[c] - 0.5 for c in range(ndim)]
    return np.stack([q[c] - y[c] for c in range(ndim)], -1)


def reference_warp(moving, ddf, order):
    """map_coordinates at ``y + ddf(y)``; 0 where the point leaves ``[0, d - 1]`` on any axis."""
    ndim = ddf.shape[-1]
    points = [np.arange(n, dtype=np.float64).reshape((-1,) + (1,) * (ndim - 1 - c)) + ddf[..., c]
              for c, n in enumerate(ddf.shape[:-1])]  # fmt: skip
    out = ndimage.map_coordinates(np.asarray(moving, np.float64), points, order=order, mode="nearest")
    inside = np.all([(p >= 0) & (p <= d - 1) for p, d in zip(points, moving.shape)], axis=0)
    return np.where(inside, out, 0.0)


def reference_folding(ddf):
    """Voxels with det(I + grad u) <= 0, central differences inside and one-sided at the edges."""
    ndim = ddf.shape[-1]
    jac = np.stack([np.stack(np.gradient(ddf[..., r], axis=tuple(range(ndim))), -1) for r in range(ndim)], -2)
    return int(np.count_nonzero(np.linalg.det(jac + np.eye(ndim)) <= 0))


# ------------------------------------------------------------------------------------------- native_ddf
@pytest.mark.parametrize(
    "model_fixed, model_moving, fixed, moving",
    [
        ((8, 8), (8, 8), (32, 32), (32, 32)),  # 2-D, x4 as 64 -> 256
        ((8, 8), (4, 8), (20, 12), (12, 40)),  # 2-D, every ratio different, not integers
        ((8, 8, 8), (8, 8, 8), (16, 16, 16), (16, 16, 16)),  # 3-D, x2
        ((8, 6, 8), (6, 8, 8), (16, 12, 24), (12, 16, 20)),  # 3-D, unequal grids
    ],
)
def test_native_ddf_matches_scipy_up_sampling_and_voxel_mapping(model_fixed, model_moving, fixed, moving):
    rng = np.random.default_rng(0)
    ddf = rng.normal(scale=1.5, size=model_fixed + (len(model_fixed),)).astype(np.float32)
    got = native_ddf(ddf, model_moving, fixed, moving)
    assert got.shape == fixed + (len(fixed),) and got.dtype == np.float32
    np.testing.assert_allclose(got, reference_native_ddf(ddf, model_moving, fixed, moving), atol=2e-4)


def test_native_ddf_of_equal_ratios_is_the_resized_field_times_the_ratio():
    """AC-RegNet's rule: resize the field, multiply by the up-sampling factor (here 4)."""
    rng = np.random.default_rng(1)
    ddf = rng.normal(size=(8, 8, 2)).astype(np.float32)
    got = native_ddf(ddf, (8, 8), (32, 32), (32, 32))
    zoomed = np.stack([ndimage.zoom(ddf[..., c], 4, order=1, mode="nearest", grid_mode=True) for c in range(2)], -1)
    np.testing.assert_allclose(got, 4 * zoomed, atol=2e-4)
    # a constant shift of one model voxel is four file voxels everywhere
    np.testing.assert_allclose(native_ddf(np.ones((8, 8, 2), np.float32), (8, 8), (32, 32), (32, 32)), 4.0, atol=1e-5)


def test_native_ddf_bad_shapes():
    with pytest.raises(ValueError, match=r"fixed_shape \(32, 32, 32\) must have 2 axes"):
        native_ddf(np.zeros((8, 8, 2)), (8, 8), (32, 32, 32), (32, 32))
    with pytest.raises(ValueError, match=r"ddf must be \(\*spatial, ndim\)"):
        native_ddf(np.zeros((8, 8, 3)), (8, 8), (32, 32), (32, 32))


def test_warp_array_matches_map_coordinates_3d():
    rng = np.random.default_rng(2)
    moving = rng.random((12, 16, 20)).astype(np.float32)
    ddf = rng.normal(scale=2.0, size=(16, 12, 24, 3)).astype(np.float32)
    np.testing.assert_allclose(warp_array(moving, ddf, "linear"), reference_warp(moving, ddf, 1), atol=1e-5)
    label = (moving > 0.5).astype(np.float32)
    np.testing.assert_array_equal(warp_array(label, ddf, "nearest"), reference_warp(label, ddf, 0))


# ------------------------------------------------------------------------------------------- end to end, 2-D
def write_blobs(root, count=3, shape=FILE_SHAPE, seed=0):
    """Smooth random images and their ``image > 0.5`` blobs (one label), with a non-trivial spacing/origin."""
    rng = np.random.default_rng(seed)
    images, labels = {}, {}
    for i in range(count):
        image = ndimage.gaussian_filter(rng.random(shape), 3.0)
        image = (image - image.min()) / (image.max() - image.min())
        images[f"case{i}"] = (100.0 * image + 20.0).astype(np.float32)  # the loader normalises to [0, 1]
        labels[f"case{i}"] = (image > 0.5).astype(np.float32)
    write_nifti_folder(os.path.join(root, "images"), images, geometry=GEOMETRY)
    write_nifti_folder(os.path.join(root, "labels"), labels, geometry=GEOMETRY)
    return images, labels


def config(data, method="ddf"):
    split = {"dir": str(data), "format": "nifti", "labeled": True}
    loss = {"image": {"name": "ssd", "weight": 1.0}, "label": {"name": "dice", "weight": 1.0}}
    if method == "conditional":
        loss = {"label": {"name": "dice", "weight": 1.0}}
    return {
        "dataset": {"train": split, "test": dict(split, pairs="all"), "type": "unpaired", "image_shape": [8, 8]},
        "train": {
            "method": method,
            "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0, 1]},
            "loss": loss,
            "optimizer": {"name": "Adam", "learning_rate": 0.1},
            "preprocess": {"batch_size": 2, "shuffle_buffer_num_batch": 1, "data_augmentation": None},
            "epochs": 2,
            "save_period": 2,
        },
    }


def read(path):
    image = sitk.ReadImage(path)
    return sitk.GetArrayFromImage(image).transpose(), image  # SimpleITK's xyz -> the ij order of the arrays


@pytest.fixture(scope="module")
def predicted(tmp_path_factory):
    """A tiny 2-D DDF model trained at 8x8 on 32x32 files, predicted on the model grid and at full size."""
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    tmp = tmp_path_factory.mktemp("native")
    images, labels = write_blobs(tmp / "data")
    path = write_config(config(tmp / "data"), tmp / "c.yaml")
    logs = str(tmp / "logs")
    train(config_path=path, log_dir=logs, exp_name="run", verbose=0)
    ckpt = os.path.join(logs, "run", "save", "ckpt-2")
    grid = predict(ckpt_path=ckpt, split="test", log_dir=logs, exp_name="grid")
    full = predict(ckpt_path=ckpt, split="test", log_dir=logs, exp_name="full", batch_size=2, full_resolution=True)
    return dict(tmp=tmp, images=images, labels=labels, grid=grid, full=full, ckpt=ckpt, logs=logs)


def rows_of(folder):
    with open(os.path.join(folder, "metrics.csv")) as handle:
        return {row["pair_index"]: row for row in csv.DictReader(handle)}


def test_full_resolution_outputs_match_scipy_reference(predicted):
    images, labels = predicted["images"], predicted["labels"]
    rows = rows_of(predicted["full"])
    # every ordered pair of the 3 test images (pairs: all), one label each
    pairs = [(m, f) for m in range(3) for f in range(3) if m != f]
    assert sorted(rows) == sorted(f"[{m}, {f}]" for m, f in pairs)
    largest = 0.0
    for m, f in pairs:
        grid_folder = os.path.join(predicted["grid"], f"pair_{m}_{f}")
        folder = os.path.join(predicted["full"], f"pair_{m}_{f}")
        model_ddf, _ = read(os.path.join(grid_folder, "ddf.nii.gz"))
        assert model_ddf.shape == (8, 8, 2)
        largest = max(largest, float(np.abs(model_ddf).max()))
        moving = images[f"case{m}"]
        moving = (moving - moving.min()) / (moving.max() - moving.min())
        fixed = images[f"case{f}"]
        fixed = (fixed - fixed.min()) / (fixed.max() - fixed.min())

        expected_ddf = reference_native_ddf(model_ddf, MODEL_SHAPE, FILE_SHAPE, FILE_SHAPE)
        ddf, ddf_image = read(os.path.join(folder, "ddf.nii.gz"))
        np.testing.assert_allclose(ddf, expected_ddf, atol=2e-4)
        np.testing.assert_allclose(
            ddf, 4 * ndimage.zoom(model_ddf, (4, 4, 1), order=1, mode="nearest", grid_mode=True), atol=2e-4
        )
        pred_image, image = read(os.path.join(folder, "pred_fixed_image.nii.gz"))
        np.testing.assert_allclose(pred_image, reference_warp(moving, expected_ddf, 1), atol=1e-4)
        for written, name in ((read(os.path.join(folder, "moving_image.nii.gz"))[0], moving),
                              (read(os.path.join(folder, "fixed_image.nii.gz"))[0], fixed)):  # fmt: skip
            np.testing.assert_allclose(written, name, atol=1e-6)
        for itk in (ddf_image, image):  # the fixed file's geometry, at its size
            assert itk.GetSize()[:2] == FILE_SHAPE
            np.testing.assert_allclose(itk.GetSpacing()[:2], GEOMETRY.spacing)
            np.testing.assert_allclose(itk.GetOrigin()[:2], GEOMETRY.origin)

        label_folder = os.path.join(folder, "label_0")
        pred_label, _ = read(os.path.join(label_folder, "pred_fixed_label.nii.gz"))
        expected_label = reference_warp(labels[f"case{m}"], expected_ddf, 0)
        # nearest neighbour: binary at full size; a point within float32 noise of a voxel boundary may round
        # either way, so allow a handful of voxels
        assert set(np.unique(pred_label)) <= {0.0, 1.0}
        assert np.count_nonzero(pred_label != expected_label) <= 3
        fixed_label = labels[f"case{f}"]
        np.testing.assert_array_equal(read(os.path.join(label_folder, "fixed_label.nii.gz"))[0], fixed_label)

        row = rows[f"[{m}, {f}]"]
        a, b = fixed_label >= 0.5, pred_label >= 0.5
        assert float(row["label_binary_dice"]) == pytest.approx(2 * np.sum(a & b) / (a.sum() + b.sum()), abs=1e-6)
        assert float(row["image_ssd"]) == pytest.approx(np.mean((fixed - pred_image) ** 2), rel=1e-4)
        hd, mean = reference_hd_assd(a, b, GEOMETRY.spacing)
        assert float(row["label_hd_mm"]) == pytest.approx(hd, rel=1e-6)  # spacing read back as float32
        assert float(row["label_assd_mm"]) == pytest.approx(mean, rel=1e-6)
        assert int(row["ddf_folding_count"]) == reference_folding(ddf.astype(np.float64))
    assert largest > 0.1  # the trained field is not the identity, so the comparison means something


def test_model_grid_rows_have_the_new_columns_too(predicted):
    rows = rows_of(predicted["grid"])
    first = next(iter(rows.values()))
    assert list(first) == [
        "image_ssd", "label_binary_dice", "label_tre", "pair_index", "label_index",
        "label_hd_mm", "label_assd_mm", "ddf_folding_count", "inference_time_s",
    ]  # fmt: skip
    folder = os.path.join(predicted["grid"], "pair_0_1")
    ddf, ddf_image = read(os.path.join(folder, "ddf.nii.gz"))
    fixed_label, _ = read(os.path.join(folder, "label_0", "fixed_label.nii.gz"))
    pred_label, _ = read(os.path.join(folder, "label_0", "pred_fixed_label.nii.gz"))
    hd, _ = reference_hd_assd(fixed_label >= 0.5, pred_label >= 0.5, ddf_image.GetSpacing()[:2])
    assert float(rows["[0, 1]"]["label_hd_mm"]) == pytest.approx(hd, rel=1e-6)
    np.testing.assert_allclose(ddf_image.GetSpacing()[:2], np.asarray(GEOMETRY.spacing) * 4)  # the model grid
    assert int(rows["[0, 1]"]["ddf_folding_count"]) == reference_folding(ddf.astype(np.float64))


def test_full_resolution_refusals(predicted, tmp_path):
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    logs = predicted["logs"]
    with pytest.raises(ValueError, match=r"full_resolution \(--full_resolution\) must be true or false, got 'yes'"):
        predict(ckpt_path=predicted["ckpt"], split="test", log_dir=logs, exp_name="bad", full_resolution="yes")
    assert not os.path.exists(os.path.join(logs, "bad"))

    path = write_config(config(predicted["tmp"] / "data", method="conditional"), tmp_path / "cond.yaml")
    train(config_path=path, log_dir=str(tmp_path), exp_name="cond", verbose=0)
    ckpt = os.path.join(str(tmp_path), "cond", "save", "ckpt-2")
    with pytest.raises(ValueError, match=r"--full_resolution needs a model that predicts a DDF, but train.method "):
        predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path), exp_name="pred", full_resolution=True)
    assert not os.path.exists(os.path.join(str(tmp_path), "pred"))


def test_cli_flag():
    from tfreg.cli.predict import build_parser

    args = build_parser().parse_args(["-k", "x/save/ckpt-1", "--split", "test", "--full_resolution"])
    assert args.full_resolution is True
    assert build_parser().parse_args(["-k", "x/save/ckpt-1", "--split", "test"]).full_resolution is False
    assert "--full_resolution" in build_parser().format_help()


def test_check_full_resolution_model_needs_a_ddf():
    from tfreg.engine.predict_native import check_full_resolution_model

    with pytest.raises(ValueError, match=r"needs a model that predicts a DDF, but train.method 'segmentation'"):
        check_full_resolution_model(object(), {"moving_segmentation": np.zeros((1, 8, 8, 1))}, "segmentation")
    check_full_resolution_model(object(), {"ddf": np.zeros((1, 8, 8, 2))}, "ddf")  # a DDF model passes


def test_native_extra_outputs_resize_each_role_and_decode_masks_there():
    """A composite model's segmentations (8x8 model grid) on a 32x32 moving and a 16x24 fixed file: resized
    like SciPy's half-pixel linear resize, the masks decoded from the resized probabilities."""
    from tests.layers.test_fusion import np_resize
    from tfreg.engine.predict_native import native_extra_outputs

    rng = np.random.default_rng(2)
    outputs = {
        "moving_segmentation": rng.random((2, 8, 8, 1)).astype(np.float32),
        "fixed_segmentation": rng.random((2, 8, 8, 1)).astype(np.float32),
        "fixed_attention": rng.random((2, 8, 8, 1)).astype(np.float32),
        "ddf": np.zeros((2, 8, 8, 2), np.float32),
    }
    extra = {
        "moving_segmentation": "moving",
        "fixed_segmentation": "fixed",
        "fixed_attention": "fixed",
        "moving_segmentation_mask": "moving",
        "fixed_segmentation_mask": "fixed",
    }
    maps = {"moving_segmentation": "moving_label", "fixed_segmentation": "fixed_label"}
    arrays = {"moving_image": np.zeros((32, 32)), "fixed_image": np.zeros((16, 24))}
    out = native_extra_outputs(outputs, 1, extra, maps, arrays, lambda name, p: p >= 0.5)
    assert sorted(out) == sorted(extra)
    for name, shape in (
        ("moving_segmentation", (32, 32)),
        ("fixed_segmentation", (16, 24)),
        ("fixed_attention", (16, 24)),
    ):
        reference = np_resize(outputs[name][1:2].astype(np.float64), shape)[0]
        np.testing.assert_allclose(out[name], reference, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(out["fixed_segmentation_mask"], out["fixed_segmentation"] >= 0.5)


def test_full_resolution_3d_paired_with_different_moving_and_fixed_grids(tmp_path):
    """Paired 3-D data: moving files 16^3 on an 8^3 model grid (x2), fixed files 9^3 on a 6^3 grid (x1.5), so
    the moving and fixed ratios differ; both pairs predicted in one batch of 2."""
    from tfreg.engine.predict import predict
    from tfreg.engine.train import train

    rng = np.random.default_rng(3)
    moving_geometry = ImageGeometry(spacing=(1.0, 1.5, 2.0), origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    fixed_geometry = ImageGeometry(spacing=(2.0, 1.0, 1.0), origin=(5.0, -2.0, 1.0), direction=np.eye(3))
    arrays = {}
    for role, shape in (("moving", (16, 16, 16)), ("fixed", (9, 9, 9))):
        images, labels = {}, {}
        for i in range(2):
            image = ndimage.gaussian_filter(rng.random(shape), 1.5)
            image = (image - image.min()) / (image.max() - image.min())
            images[f"case{i}"] = image.astype(np.float32)
            labels[f"case{i}"] = (image > 0.5).astype(np.float32)
        geometry = moving_geometry if role == "moving" else fixed_geometry
        write_nifti_folder(str(tmp_path / "data" / f"{role}_images"), images, geometry=geometry)
        write_nifti_folder(str(tmp_path / "data" / f"{role}_labels"), labels, geometry=geometry)
        arrays[role] = (images, labels)
    split = {"dir": str(tmp_path / "data"), "format": "nifti", "labeled": True}
    cfg = config(tmp_path / "data")
    cfg["dataset"] = {
        "train": split,
        "test": split,
        "type": "paired",
        "moving_image_shape": [8, 8, 8],
        "fixed_image_shape": [6, 6, 6],
    }
    cfg["train"]["epochs"] = 1
    cfg["train"]["save_period"] = 1
    path = write_config(cfg, tmp_path / "c.yaml")
    logs = str(tmp_path / "logs")
    train(config_path=path, log_dir=logs, exp_name="run", verbose=0)
    ckpt = os.path.join(logs, "run", "save", "ckpt-1")
    grid = predict(ckpt_path=ckpt, split="test", log_dir=logs, exp_name="grid")
    full = predict(ckpt_path=ckpt, split="test", log_dir=logs, exp_name="full", batch_size=2, full_resolution=True)
    rows = rows_of(full)
    assert sorted(rows) == ["[0]", "[1]"]
    for i in range(2):
        model_ddf, _ = read(os.path.join(grid, f"pair_{i}", "ddf.nii.gz"))
        assert model_ddf.shape == (6, 6, 6, 3)
        expected = reference_native_ddf(model_ddf, (8, 8, 8), (9, 9, 9), (16, 16, 16))
        folder = os.path.join(full, f"pair_{i}")
        ddf, ddf_image = read(os.path.join(folder, "ddf.nii.gz"))
        np.testing.assert_allclose(ddf, expected, atol=2e-4)
        assert ddf_image.GetSize()[:3] == (9, 9, 9)
        np.testing.assert_allclose(ddf_image.GetSpacing()[:3], fixed_geometry.spacing)
        np.testing.assert_allclose(ddf_image.GetOrigin()[:3], fixed_geometry.origin)
        moving_images, moving_labels = arrays["moving"]
        pred, _ = read(os.path.join(folder, "pred_fixed_image.nii.gz"))
        np.testing.assert_allclose(pred, reference_warp(moving_images[f"case{i}"], expected, 1), atol=1e-4)
        pred_label, _ = read(os.path.join(folder, "label_0", "pred_fixed_label.nii.gz"))
        assert np.count_nonzero(pred_label != reference_warp(moving_labels[f"case{i}"], expected, 0)) <= 2
        moving_written, moving_image = read(os.path.join(folder, "moving_image.nii.gz"))
        assert moving_written.shape == (16, 16, 16)
        np.testing.assert_allclose(moving_image.GetSpacing()[:3], moving_geometry.spacing)
        fixed_label = arrays["fixed"][1][f"case{i}"] >= 0.5
        hd, mean = reference_hd_assd(fixed_label, pred_label >= 0.5, fixed_geometry.spacing)
        assert float(rows[f"[{i}]"]["label_hd_mm"]) == pytest.approx(hd, rel=1e-6)
        assert float(rows[f"[{i}]"]["label_assd_mm"]) == pytest.approx(mean, rel=1e-6)


def test_native_resolution_files_of_different_sizes_in_one_split(tmp_path):
    """NativeResolution re-reads each sample's files by index: pairs of differently sized files each get their
    own grid (so a batch may mix them), and a pair's label rows reuse its images and DDF."""
    from tfreg.data import get_data_loader
    from tfreg.engine.predict_native import NativeResolution

    rng = np.random.default_rng(4)
    shapes = {"case0": (32, 32), "case1": (24, 40), "case2": (16, 20)}
    images = {k: rng.random(s).astype(np.float32) * 50 for k, s in shapes.items()}
    labels = {k: np.stack([v > 25, v > 40], -1).astype(np.float32) for k, v in images.items()}
    write_nifti_folder(str(tmp_path / "images"), images, geometry=GEOMETRY)
    write_nifti_folder(str(tmp_path / "labels"), labels, geometry=GEOMETRY)
    split = {"dir": str(tmp_path), "format": "nifti", "labeled": True, "pairs": "all"}
    with get_data_loader({"test": split, "type": "unpaired", "image_shape": [8, 8]}, "test") as loader:
        native = NativeResolution(loader)
        ddf = rng.normal(scale=0.7, size=(8, 8, 2)).astype(np.float32)
        for m, f in ((1, 2), (2, 0)):
            for label in (0, 1):
                arrays, moving_geometry, fixed_geometry = native.arrays([m, f, label], ddf)
                moving_shape, fixed_shape = shapes[f"case{m}"], shapes[f"case{f}"]
                expected = reference_native_ddf(ddf, (8, 8), fixed_shape, moving_shape)
                np.testing.assert_allclose(arrays["ddf"], expected, atol=2e-4)
                moving = images[f"case{m}"]
                moving = (moving - moving.min()) / (moving.max() - moving.min())
                np.testing.assert_allclose(arrays["pred_fixed_image"], reference_warp(moving, expected, 1), atol=1e-4)
                np.testing.assert_array_equal(arrays["fixed_label"], labels[f"case{f}"][..., label])
                wrong = arrays["pred_fixed_label"] != reference_warp(labels[f"case{m}"][..., label], expected, 0)
                assert np.count_nonzero(wrong) <= 2
                assert arrays["moving_image"].shape == moving_shape and arrays["fixed_image"].shape == fixed_shape
                np.testing.assert_allclose(fixed_geometry.spacing, GEOMETRY.spacing)
                np.testing.assert_allclose(moving_geometry.origin, GEOMETRY.origin)
