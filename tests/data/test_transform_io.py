"""tfreg.data.transform_io against SimpleITK (the independent reference for ITK displacement fields) and
nibabel (the independent reader of the NIfTI headers ANTs relies on)."""

import os

import nibabel as nib
import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.transform_cases import (
    far_outside_mask,
    fixed_geometry,
    grid,
    inside_mask,
    moving_geometry,
    sitk_resample_with_field,
    smooth_ddf,
)
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, save_image
from tfreg.data.landmarks import index_to_physical
from tfreg.data.transform_io import (
    FORMATS,
    NIFTI_INTENT_VECTOR,
    physical_to_voxel_ddf,
    read_transform,
    transform_units,
    voxel_ddf_to_physical,
    write_transform,
)
from tfreg.ops.warp import warp

SHAPES = {2: ((14, 12), (13, 15)), 3: ((14, 12, 10), (13, 15, 11))}
# tfreg (float32 coordinates and weights) against SimpleITK (float64) on images in [0, 1]
WARP_ATOL = 5e-6


def case(ndim, other_grid, seed=0):
    """(fixed shape, fixed geometry, moving image, moving geometry, DDF in moving voxels)."""
    shape, moving_shape = SHAPES[ndim]
    fixed = fixed_geometry(ndim)
    if not other_grid:
        moving_shape = shape
    moving = moving_geometry(ndim, shape, moving_shape) if other_grid else fixed
    image = np.random.default_rng(seed).random(moving_shape)
    # the identity map expressed in moving voxels, plus a smooth deformation of up to 2 voxels
    identity = physical_to_voxel_ddf(np.zeros(shape + (ndim,)), fixed, moving)
    ddf = (identity + smooth_ddf(shape, amplitude=2.0)).astype(np.float32)
    return shape, fixed, image, moving, ddf


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("other_grid", [False, True])
@pytest.mark.parametrize("suffix", [".nii.gz", ".mha"])
def test_itk_field_resampled_by_simpleitk_equals_tfreg_warp(tmp_path, ndim, other_grid, suffix):
    shape, fixed, image, moving, ddf = case(ndim, other_grid)
    path = write_transform(
        tmp_path / f"field{suffix}", ddf, fixed, "itk", moving_geometry=moving if other_grid else None
    )
    expected = sitk_resample_with_field(path, image, moving, shape, fixed)
    ours = np.asarray(warp(image[None].astype(np.float32), ddf[None]))[0]
    inside = inside_mask(ddf, image.shape)
    outside = far_outside_mask(ddf, image.shape)
    assert inside.mean() > 0.5  # most of the grid is compared
    np.testing.assert_allclose(ours[inside], expected[inside], atol=WARP_ATOL)
    np.testing.assert_array_equal(ours[outside], 0.0)
    np.testing.assert_array_equal(expected[outside], 0.0)


@pytest.mark.parametrize("ndim", [2, 3])
def test_physical_field_is_the_displacement_between_physical_points(ndim):
    shape, fixed, _, moving, ddf = case(ndim, other_grid=True)
    disp = voxel_ddf_to_physical(ddf, fixed, moving)
    p = grid(shape).reshape(-1, ndim)
    expected = index_to_physical(p + ddf.reshape(-1, ndim), moving) - index_to_physical(p, fixed)
    np.testing.assert_allclose(disp.reshape(-1, ndim), expected, atol=1e-9)
    np.testing.assert_allclose(physical_to_voxel_ddf(disp, fixed, moving), ddf, atol=1e-9)
    # the default moving grid is the fixed grid
    np.testing.assert_allclose(voxel_ddf_to_physical(ddf, fixed), voxel_ddf_to_physical(ddf, fixed, fixed))


def test_simpleitk_transforms_points_as_documented(tmp_path):
    """SimpleITK's DisplacementFieldTransform maps the fixed voxel centre x_p to moving.point(p + ddf[p])."""
    shape, fixed, _, moving, ddf = case(3, other_grid=True)
    path = write_transform(tmp_path / "f.nii.gz", ddf, fixed, "itk", moving_geometry=moving, dtype="float64")
    transform = sitk.DisplacementFieldTransform(sitk.ReadImage(path, sitk.sitkVectorFloat64))
    p = grid(shape).reshape(-1, 3)[::7]
    x = index_to_physical(p, fixed)
    y = np.array([transform.TransformPoint(tuple(point)) for point in x])
    q = ddf.reshape(-1, 3)[::7] + p
    # 1e-5 mm: the NIfTI header holds the grid's affine in float32
    np.testing.assert_allclose(y, index_to_physical(q, moving), atol=1e-5)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("ndim", [2, 3])
def test_round_trip(tmp_path, fmt, ndim):
    shape, fixed, _, moving, ddf = case(ndim, other_grid=True)
    path = write_transform(tmp_path / "t.nii.gz", ddf, fixed, fmt, moving_geometry=moving)
    loaded = read_transform(path, image_geometry=fixed, image_shape=shape, moving_geometry=moving)
    assert loaded.units == ("voxel" if fmt == "deepreg" else "physical")
    assert loaded.geometry.allclose(fixed)
    assert loaded.ddf.shape == ddf.shape and loaded.ddf.dtype == np.float32
    np.testing.assert_allclose(loaded.ddf, ddf, atol=1e-5)


def test_round_trip_mha_float64_and_default_grid(tmp_path):
    shape, fixed, _, _, ddf = case(3, other_grid=False)
    path = write_transform(tmp_path / "t.mha", ddf, fixed, "itk", dtype="float64")
    assert sitk.ReadImage(path).GetPixelID() == sitk.sitkVectorFloat64
    assert transform_units(path) == "physical"
    loaded = read_transform(path)
    np.testing.assert_allclose(loaded.ddf, ddf, atol=1e-5)


@pytest.mark.parametrize("ndim", [2, 3])
def test_ants_file_layout_and_itk_identity(tmp_path, ndim):
    """ANTs' warp layout, read by nibabel: 5-D (x, y, z, 1, ndim), intent vector, float32, LPS vectors;
    byte-identical to the ITK writer's NIfTI."""
    shape, fixed, _, moving, ddf = case(ndim, other_grid=True)
    ants = write_transform(tmp_path / "ants.nii.gz", ddf, fixed, "ants", moving_geometry=moving)
    itk = write_transform(tmp_path / "itk.nii.gz", ddf, fixed, "itk", moving_geometry=moving)
    with open(ants, "rb") as a, open(itk, "rb") as b:
        assert a.read() == b.read()
    image = nib.load(ants)
    spatial = tuple(shape) + (1,) * (3 - ndim)
    assert image.shape == spatial + (1, ndim)
    assert int(image.header["intent_code"]) == NIFTI_INTENT_VECTOR
    assert image.get_data_dtype() == np.float32
    # the vectors are LPS mm (not flipped to RAS like the header's affine)
    vectors = np.asarray(image.dataobj).reshape(tuple(shape) + (ndim,))
    np.testing.assert_allclose(vectors, voxel_ddf_to_physical(ddf, fixed, moving), atol=1e-4)
    # nibabel's RAS affine is the fixed grid's LPS geometry with x and y negated
    lps = np.diag([-1.0, -1.0, 1.0])
    affine = image.affine[:3, :3] @ np.diag(1.0 / np.asarray(image.header.get_zooms()[:3]))
    np.testing.assert_allclose((lps @ affine)[:ndim, :ndim], fixed.direction, atol=1e-5)


def test_deepreg_file_is_what_save_image_writes(tmp_path):
    shape, fixed, _, _, ddf = case(3, other_grid=False)
    path = write_transform(tmp_path / "ddf.nii.gz", ddf, fixed, "deepreg")
    header = nib.load(path).header
    assert tuple(header["dim"][:5]) == (4,) + shape + (3,)
    assert int(header["intent_code"]) == 0
    array, geometry = read_image(path)
    np.testing.assert_array_equal(array, ddf)
    assert geometry.allclose(fixed)


def test_auto_units_of_files_tfreg_and_others_write(tmp_path):
    ddf = smooth_ddf((6, 5, 4))
    save_image(ddf, tmp_path / "saved.nii.gz")  # tfreg_predict's ddf.nii.gz
    assert transform_units(str(tmp_path / "saved.nii.gz")) == "voxel"
    nib.save(nib.Nifti1Image(ddf, np.eye(4)), tmp_path / "nibabel.nii.gz")  # DeepReg's writer
    assert transform_units(str(tmp_path / "nibabel.nii.gz")) == "voxel"
    vector = sitk.GetImageFromArray(np.transpose(ddf, (2, 1, 0, 3)).astype(np.float64), isVector=True)
    for suffix in (".nii.gz", ".nii", ".nrrd", ".mha"):
        sitk.WriteImage(vector, str(tmp_path / f"vector{suffix}"))
        assert transform_units(str(tmp_path / f"vector{suffix}")) == "physical"
    sitk.WriteImage(sitk.GetImageFromArray(np.zeros((4, 5, 6), np.float32)), str(tmp_path / "scalar.mha"))
    assert transform_units(str(tmp_path / "scalar.mha")) == "voxel"


def test_units_override(tmp_path):
    shape, fixed, _, _, ddf = case(3, other_grid=False)
    path = write_transform(tmp_path / "t.nii.gz", ddf, fixed, "itk")
    raw = read_transform(path, units="voxel")  # the mm values, taken as voxels
    assert raw.units == "voxel"
    np.testing.assert_allclose(raw.ddf, voxel_ddf_to_physical(ddf, fixed), atol=1e-5)
    deepreg = write_transform(tmp_path / "d.nii.gz", ddf, fixed, "deepreg")
    forced = read_transform(deepreg, units="physical")
    np.testing.assert_allclose(forced.ddf, physical_to_voxel_ddf(ddf, fixed), atol=1e-4)
    with pytest.raises(ValueError, match="units must be one of auto, voxel, physical"):
        read_transform(path, units="mm")


@pytest.mark.parametrize(
    "change",
    [
        {"spacing": (1.2, 0.8, 1.6)},
        {"origin": (-10.0, 5.5, 21.0)},
        {"direction": np.eye(3)},
    ],
)
def test_mismatched_geometry_is_refused_naming_both(tmp_path, change):
    shape, fixed, _, _, ddf = case(3, other_grid=False)
    path = write_transform(tmp_path / "t.nii.gz", ddf, fixed, "itk")
    values = {"spacing": fixed.spacing, "origin": fixed.origin, "direction": fixed.direction, **change}
    other = ImageGeometry(**values)
    with pytest.raises(ValueError) as err:
        read_transform(path, image_geometry=other, image_shape=shape)
    message = str(err.value)
    assert path in message and "different grid" in message
    key = next(iter(change))
    shown = np.round(np.asarray(change[key], dtype=float), 6).ravel().tolist()
    assert str(tuple(shown) if key != "direction" else shown) in message


def test_mismatched_size_is_refused(tmp_path):
    shape, fixed, _, _, ddf = case(3, other_grid=False)
    path = write_transform(tmp_path / "t.nii.gz", ddf, fixed, "deepreg")
    with pytest.raises(ValueError, match=r"size \(14, 12, 9\)"):
        read_transform(path, image_geometry=fixed, image_shape=(14, 12, 9))


def test_write_refusals(tmp_path):
    shape, fixed, _, _, ddf = case(3, other_grid=False)
    with pytest.raises(ValueError, match="unknown transform format 'fsl': expected one of itk, ants, deepreg"):
        write_transform(tmp_path / "t.nii.gz", ddf, fixed, "fsl")
    with pytest.raises(ValueError, match=r"must end with one of \.nii\.gz, \.nii"):
        write_transform(tmp_path / "t.mha", ddf, fixed, "ants")
    with pytest.raises(ValueError, match="must end with one of"):
        write_transform(tmp_path / "t.mha", ddf, fixed, "deepreg")
    with pytest.raises(ValueError, match="must end with one of"):
        write_transform(tmp_path / "t.h5", ddf, fixed, "itk")
    bad = ddf.copy()
    bad[1, 2, 3, 0] = np.nan
    with pytest.raises(ValueError, match="1 non-finite"):
        write_transform(tmp_path / "t.nii.gz", bad, fixed, "itk")
    with pytest.raises(ValueError, match="ddf must be"):
        write_transform(tmp_path / "t.nii.gz", ddf[..., :2], fixed, "itk")
    with pytest.raises(ValueError, match="is 2-D but its geometry is 3-D"):
        write_transform(tmp_path / "t.nii.gz", ddf[:, :, 0, :2], fixed, "itk")
    with pytest.raises(ValueError, match="moving geometry is 2-D"):
        write_transform(tmp_path / "t.nii.gz", ddf, fixed, "itk", moving_geometry=ImageGeometry.identity(2))
    with pytest.raises(ValueError, match="dtype"):
        write_transform(tmp_path / "t.nii.gz", ddf, fixed, "itk", dtype="float16")
    assert os.listdir(tmp_path) == []


def test_existing_output_needs_overwrite(tmp_path):
    shape, fixed, _, _, ddf = case(2, other_grid=False)
    path = str(tmp_path / "t.nii.gz")
    write_transform(path, ddf, fixed, "itk")
    before = os.path.getmtime(path), os.path.getsize(path)
    with pytest.raises(FileExistsError, match=path):
        write_transform(path, 2 * ddf, fixed, "itk")
    assert (os.path.getmtime(path), os.path.getsize(path)) == before
    write_transform(path, 2 * ddf, fixed, "itk", overwrite=True)
    np.testing.assert_allclose(read_transform(path).ddf, 2 * ddf, atol=1e-5)
    assert sorted(os.listdir(tmp_path)) == ["t.nii.gz"]  # no scratch file left


def test_read_refuses_missing_and_non_field_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.nii.gz"):
        read_transform(str(tmp_path / "missing.nii.gz"))
    save_image(np.zeros((6, 5, 4), np.float32), tmp_path / "image.nii.gz")
    with pytest.raises(ValueError, match=r"expected a displacement field .* got shape \(6, 5, 4\)"):
        read_transform(str(tmp_path / "image.nii.gz"))
