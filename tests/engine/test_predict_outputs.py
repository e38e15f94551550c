"""tfreg.engine.predict_outputs: DeepReg's per-pair output tree, NIfTI geometry, affine.txt and PNGs.

Files are read back with SimpleITK directly (not tfreg's reader) and matplotlib's PNG reader.
"""

import os

import numpy as np
import pytest
import SimpleITK as sitk

from tfreg.data.geometry import ImageGeometry
from tfreg.engine.predict_outputs import PredictionWriter, label_index, pair_folder_name


def rotation_z(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


MOVING_GEOMETRY = ImageGeometry(spacing=(0.8, 1.25, 2.5), origin=(-10.0, 4.5, 30.25), direction=rotation_z(0.3))
FIXED_GEOMETRY = ImageGeometry(
    spacing=(1.5, 0.75, 3.0),
    origin=(12.0, -7.5, 2.0),
    direction=np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, -1.0]]),
)
MOVING_SHAPE = (5, 6, 4)
FIXED_SHAPE = (6, 5, 3)


def sitk_array(path):
    """``(i, j, k[, c])`` array of a NIfTI file read with SimpleITK (4-D files: channel axis last)."""
    image = sitk.ReadImage(str(path))
    return np.transpose(sitk.GetArrayFromImage(image)), image


def assert_geometry(image, geometry):
    ndim = geometry.ndim
    dim = image.GetDimension()
    np.testing.assert_allclose(image.GetSpacing()[:ndim], geometry.spacing, atol=1e-5)
    np.testing.assert_allclose(image.GetOrigin()[:ndim], geometry.origin, atol=1e-5)
    direction = np.asarray(image.GetDirection()).reshape(dim, dim)[:ndim, :ndim]
    np.testing.assert_allclose(direction, geometry.direction, atol=1e-5)


def sample_arrays(rng, labeled=True):
    arrays = {
        "moving_image": rng.random(MOVING_SHAPE).astype(np.float32),
        "fixed_image": rng.random(FIXED_SHAPE).astype(np.float32),
        "pred_fixed_image": rng.random(FIXED_SHAPE).astype(np.float32),
        "ddf": (rng.standard_normal(FIXED_SHAPE + (3,)) * 3).astype(np.float32),
        "dvf": (rng.standard_normal(FIXED_SHAPE + (3,))).astype(np.float32),
    }
    if labeled:
        arrays["moving_label"] = (rng.random(MOVING_SHAPE) > 0.5).astype(np.float32)
        arrays["fixed_label"] = (rng.random(FIXED_SHAPE) > 0.5).astype(np.float32)
        arrays["pred_fixed_label"] = rng.random(FIXED_SHAPE).astype(np.float32)
    return arrays


def list_tree(root):
    out = set()
    for folder, _, files in os.walk(root):
        for name in files:
            out.add(os.path.relpath(os.path.join(folder, name), root))
    return out


# ---------------------------------------------------------------------------------------------- names
@pytest.mark.parametrize(
    "indices, expected",
    [
        ([3, -1], "pair_3"),
        ([0, 1, 2], "pair_0_1"),
        ([1, 4, 2, 7, 0], "pair_1_4_2_7"),  # grouped: g1, i1, g2, i2, label
        (np.array([2.0, 5.0, 3.0], dtype=np.float32), "pair_2_5"),  # float indices from a tensor
        ([0.9999999, 12.0000001, -1.0], "pair_1_12"),
    ],
)
def test_pair_folder_name(indices, expected):
    assert pair_folder_name(indices) == expected


def test_label_index():
    assert label_index([3, -1]) == -1
    assert label_index([0, 1, 2]) == 2
    assert label_index(np.array([0.0, 1.0, 4.0000001])) == 4


# ---------------------------------------------------------------------------------------------- tree
def test_labeled_tree_label_independent_files_written_once(tmp_path):
    rng = np.random.default_rng(0)
    writer = PredictionWriter(str(tmp_path / "test"))
    first = sample_arrays(rng)
    second = sample_arrays(rng)
    theta = rng.standard_normal((4, 3))
    pair = writer.write(first, [0, 1, 0], MOVING_GEOMETRY, FIXED_GEOMETRY, theta=theta)
    assert pair == str(tmp_path / "test" / "pair_0_1")
    # same pair, next label: pair files must not be rewritten; label files go under label_2
    writer.write(second, [0, 1, 2], MOVING_GEOMETRY, FIXED_GEOMETRY, theta=theta + 100)
    label_files = {"moving_label.nii.gz", "fixed_label.nii.gz", "pred_fixed_label.nii.gz"}
    expected = {
        "pair_0_1/" + f
        for f in (
            "moving_image.nii.gz",
            "fixed_image.nii.gz",
            "pred_fixed_image.nii.gz",
            "ddf.nii.gz",
            "dvf.nii.gz",
            "affine.txt",
        )
    }
    expected |= {f"pair_0_1/label_{k}/{f}" for k in (0, 2) for f in label_files}
    assert list_tree(tmp_path / "test") == expected

    pair_dir = tmp_path / "test" / "pair_0_1"
    # label-independent content is the first sample's
    got, _ = sitk_array(pair_dir / "moving_image.nii.gz")
    np.testing.assert_array_equal(got, first["moving_image"])
    got, _ = sitk_array(pair_dir / "pred_fixed_image.nii.gz")
    np.testing.assert_array_equal(got, first["pred_fixed_image"])
    np.testing.assert_allclose(np.loadtxt(pair_dir / "affine.txt", delimiter=","), theta, rtol=1e-12)
    # label files of each label hold that label's arrays
    for k, arrays in ((0, first), (2, second)):
        for name in ("moving_label", "fixed_label", "pred_fixed_label"):
            got, _ = sitk_array(pair_dir / f"label_{k}" / f"{name}.nii.gz")
            np.testing.assert_array_equal(got, arrays[name])


def test_unlabeled_goes_into_pair_folder(tmp_path):
    rng = np.random.default_rng(1)
    writer = PredictionWriter(str(tmp_path))
    arrays = sample_arrays(rng, labeled=False)
    writer.write(arrays, [3, -1], MOVING_GEOMETRY, FIXED_GEOMETRY)
    writer.write(sample_arrays(rng, labeled=False), [4, -1], MOVING_GEOMETRY, FIXED_GEOMETRY)
    names = ("moving_image", "fixed_image", "pred_fixed_image", "ddf", "dvf")
    assert list_tree(tmp_path) == {f"pair_{p}/{n}.nii.gz" for p in (3, 4) for n in names}
    assert not any("label_" in f for f in list_tree(tmp_path))


def test_none_arrays_and_missing_keys_are_skipped(tmp_path):
    rng = np.random.default_rng(2)
    arrays = sample_arrays(rng)
    arrays["dvf"] = None
    del arrays["moving_image"]
    PredictionWriter(str(tmp_path)).write(arrays, [0, 0], MOVING_GEOMETRY, FIXED_GEOMETRY)
    files = list_tree(tmp_path)
    assert "pair_0/dvf.nii.gz" not in files and "pair_0/moving_image.nii.gz" not in files
    assert "pair_0/affine.txt" not in files  # no theta given
    assert "pair_0/ddf.nii.gz" in files and "pair_0/label_0/fixed_label.nii.gz" in files


def test_nifti_geometry_and_values(tmp_path):
    rng = np.random.default_rng(3)
    arrays = sample_arrays(rng)
    PredictionWriter(str(tmp_path)).write(arrays, [5, 6, 1], MOVING_GEOMETRY, FIXED_GEOMETRY)
    pair_dir = tmp_path / "pair_5_6"
    moving_grid = {
        "moving_image": pair_dir / "moving_image.nii.gz",
        "moving_label": pair_dir / "label_1" / "moving_label.nii.gz",
    }
    fixed_grid = {
        "fixed_image": pair_dir / "fixed_image.nii.gz",
        "pred_fixed_image": pair_dir / "pred_fixed_image.nii.gz",
        "fixed_label": pair_dir / "label_1" / "fixed_label.nii.gz",
        "pred_fixed_label": pair_dir / "label_1" / "pred_fixed_label.nii.gz",
    }
    for group, geometry, shape in (
        (moving_grid, MOVING_GEOMETRY, MOVING_SHAPE),
        (fixed_grid, FIXED_GEOMETRY, FIXED_SHAPE),
    ):
        for name, path in group.items():
            got, image = sitk_array(path)
            assert image.GetDimension() == 3
            assert image.GetSize() == shape
            assert image.GetPixelID() == sitk.sitkFloat32
            assert_geometry(image, geometry)
            np.testing.assert_array_equal(got, arrays[name])
    # DDF/DVF: 4-D NIfTI with 3 components on the fixed grid, values intact (not normalised)
    for name in ("ddf", "dvf"):
        got, image = sitk_array(pair_dir / f"{name}.nii.gz")
        assert image.GetDimension() == 4
        assert image.GetSize() == FIXED_SHAPE + (3,)
        assert got.shape == FIXED_SHAPE + (3,)
        assert_geometry(image, FIXED_GEOMETRY)
        np.testing.assert_array_equal(got, arrays[name])


def test_nifti_can_be_disabled(tmp_path):
    rng = np.random.default_rng(4)
    PredictionWriter(str(tmp_path), save_nifti=False).write(
        sample_arrays(rng), [0, 1, 0], MOVING_GEOMETRY, FIXED_GEOMETRY, theta=np.eye(4, 3)
    )
    files = list_tree(tmp_path)
    assert not any(f.endswith(".nii.gz") for f in files)
    assert "pair_0_1/affine.txt" in files  # the affine is not an image


def test_affine_txt_is_4x3_comma_separated(tmp_path):
    theta = np.array([[1.0, 0.1, -0.2], [0.05, 0.9, 0.0], [0.0, 0.3, 1.1], [2.5, -1.0, 0.125]])
    PredictionWriter(str(tmp_path)).write({}, [2, 3, -1], MOVING_GEOMETRY, FIXED_GEOMETRY, theta=theta)
    path = tmp_path / "pair_2_3" / "affine.txt"
    lines = path.read_text().strip().splitlines()
    assert len(lines) == 4 and all(len(line.split(",")) == 3 for line in lines)
    got = np.loadtxt(path, delimiter=",")
    assert got.shape == (4, 3)
    np.testing.assert_allclose(got, theta, rtol=1e-15)


# ---------------------------------------------------------------------------------------------- PNG
def test_png_slices_naming_and_count(tmp_path):
    import matplotlib.image as mpimg

    rng = np.random.default_rng(5)
    arrays = sample_arrays(rng)
    PredictionWriter(str(tmp_path), save_nifti=False, save_png=True).write(
        arrays, [0, 1, 0], MOVING_GEOMETRY, FIXED_GEOMETRY
    )
    pair_dir = tmp_path / "pair_0_1"
    expected = set()
    for name, folder, depth in (
        ("moving_image", "", MOVING_SHAPE[2]),
        ("fixed_image", "", FIXED_SHAPE[2]),
        ("pred_fixed_image", "", FIXED_SHAPE[2]),
        ("ddf", "", FIXED_SHAPE[2]),
        ("dvf", "", FIXED_SHAPE[2]),
        ("moving_label", "label_0/", MOVING_SHAPE[2]),
        ("fixed_label", "label_0/", FIXED_SHAPE[2]),
        ("pred_fixed_label", "label_0/", FIXED_SHAPE[2]),
    ):
        expected |= {f"{folder}{name}/depth{k}_{name}.png" for k in range(depth)}
    assert list_tree(pair_dir) == expected
    # a slice of the (binary, not normalised) fixed label: white where the label is 1
    png = mpimg.imread(pair_dir / "label_0" / "fixed_label" / "depth1_fixed_label.png")
    assert png.shape[:2] == FIXED_SHAPE[:2]
    np.testing.assert_allclose(png[..., 0], arrays["fixed_label"][:, :, 1], atol=1 / 255)
    # an image slice is min-max normalised over the whole volume
    image = arrays["moving_image"].astype(np.float64)
    norm = (image - image.min()) / (image.max() - image.min())
    png = mpimg.imread(pair_dir / "moving_image" / "depth2_moving_image.png")
    assert png.shape[:2] == MOVING_SHAPE[:2]
    np.testing.assert_allclose(png[..., 0], norm[:, :, 2], atol=2.5 / 255)  # 256-entry colormap + uint8


def test_png_2d_gives_one_file(tmp_path):
    import matplotlib.image as mpimg

    geometry = ImageGeometry.identity(2)
    rng = np.random.default_rng(6)
    arrays = {
        "fixed_image": rng.random((7, 9)).astype(np.float32),
        "ddf": rng.standard_normal((7, 9, 2)).astype(np.float32),
        "fixed_label": (rng.random((7, 9)) > 0.5).astype(np.float32),
    }
    PredictionWriter(str(tmp_path), save_nifti=False, save_png=True).write(arrays, [4, 1], geometry, geometry)
    assert list_tree(tmp_path) == {
        "pair_4/fixed_image/fixed_image.png",
        "pair_4/ddf/ddf.png",
        "pair_4/label_1/fixed_label/fixed_label.png",
    }
    png = mpimg.imread(tmp_path / "pair_4" / "fixed_image" / "fixed_image.png")
    assert png.shape[:2] == (7, 9)
