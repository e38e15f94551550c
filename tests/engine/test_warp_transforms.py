"""tfreg_warp (tfreg.engine.warp.warp_file) with ITK/ANTs displacement fields, against SimpleITK's
resampler with a DisplacementFieldTransform (the independent reference)."""

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.transform_cases import (
    far_outside_mask,
    fixed_geometry,
    inside_mask,
    moving_geometry,
    sitk_resample_with_field,
    smooth_ddf,
)
from tfreg.data.image_io import read_image, save_image
from tfreg.data.transform_io import physical_to_voxel_ddf, write_transform
from tfreg.engine.warp import warp_file

# float32 output of tfreg against SimpleITK's float64, images in [0, 1]
ATOL = 5e-6


def write_case(tmp_path, ndim, fmt="itk", suffix=".nii.gz", channels=None):
    """A smooth field on an oblique fixed grid, and an image on another oblique grid; returns paths and arrays."""
    shape, moving_shape = ((14, 12, 10), (13, 15, 11)) if ndim == 3 else ((14, 12), (13, 15))
    fixed = fixed_geometry(ndim)
    moving = moving_geometry(ndim, shape, moving_shape)
    rng = np.random.default_rng(1)
    image = rng.random(moving_shape + ((channels,) if channels else ()))
    ddf = (physical_to_voxel_ddf(np.zeros(shape + (ndim,)), fixed, moving) + smooth_ddf(shape)).astype(np.float32)
    field = write_transform(tmp_path / f"field{suffix}", ddf, fixed, fmt, moving_geometry=moving)
    image_path = str(tmp_path / "image.nii.gz")
    save_image(image.astype(np.float32), image_path, moving)
    return shape, fixed, moving, image, ddf, field, image_path


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("fmt,suffix", [("itk", ".nii.gz"), ("itk", ".mha"), ("ants", ".nii")])
def test_physical_field_warps_like_simpleitk(tmp_path, ndim, fmt, suffix):
    shape, fixed, moving, image, ddf, field, image_path = write_case(tmp_path, ndim, fmt, suffix)
    out = warp_file(image_path, field, str(tmp_path / "warped.nii.gz"))
    warped, geometry = read_image(out)
    assert warped.shape == shape
    assert geometry.with_ndim(ndim).allclose(fixed)  # the field's grid is the output grid
    expected = sitk_resample_with_field(field, image.astype(np.float32), moving, shape, fixed)
    inside, outside = inside_mask(ddf, image.shape), far_outside_mask(ddf, image.shape)
    assert inside.mean() > 0.5
    np.testing.assert_allclose(warped[inside], expected[inside], atol=ATOL)
    np.testing.assert_array_equal(warped[outside], 0.0)


def test_multichannel_image_is_warped_channel_by_channel(tmp_path):
    shape, fixed, moving, image, ddf, field, image_path = write_case(tmp_path, 3, channels=2)
    warped, _ = read_image(warp_file(image_path, field, str(tmp_path / "warped.nii.gz")))
    assert warped.shape == shape + (2,)
    inside = inside_mask(ddf, image.shape[:-1])
    for c in range(2):
        expected = sitk_resample_with_field(field, image[..., c].astype(np.float32), moving, shape, fixed)
        np.testing.assert_allclose(warped[..., c][inside], expected[inside], atol=ATOL)


def test_nearest_interpolation_picks_image_values(tmp_path):
    shape, fixed, moving, image, ddf, field, image_path = write_case(tmp_path, 3)
    labels = np.floor(image * 4).astype(np.float32)
    save_image(labels, image_path, moving)
    warped, _ = read_image(warp_file(image_path, field, str(tmp_path / "w.nii.gz"), interpolation="nearest"))
    reference = sitk.ReadImage(field, sitk.sitkVectorFloat64)
    expected_image = sitk.Resample(
        sitk.ReadImage(image_path),
        sitk.Image(reference),
        sitk.DisplacementFieldTransform(reference),
        sitk.sitkNearestNeighbor,
        0.0,
        sitk.sitkFloat32,
    )
    expected = np.transpose(sitk.GetArrayFromImage(expected_image))
    inside = inside_mask(ddf, image.shape, margin=1e-3)
    # no sample falls on a tie (a coordinate at exactly .5) here, so the rounding rules agree everywhere
    np.testing.assert_array_equal(warped[inside], expected[inside])


def test_forced_units(tmp_path):
    """A physical field forced to voxel units is read as a DDF (old behaviour), and vice versa."""
    shape, fixed, moving, image, ddf, field, image_path = write_case(tmp_path, 3)
    save_image(image.astype(np.float32), image_path, fixed)  # the image on the field's grid
    as_voxels = warp_file(image_path, field, str(tmp_path / "v.nii.gz"), ddf_units="voxel")
    as_physical = warp_file(image_path, field, str(tmp_path / "p.nii.gz"), ddf_units="physical")
    assert not np.allclose(read_image(as_voxels)[0], read_image(as_physical)[0])
    with pytest.raises(ValueError, match="ddf_units must be one of auto, voxel, physical"):
        warp_file(image_path, field, str(tmp_path / "x.nii.gz"), ddf_units="mm")


def test_moving_grid_is_refused_for_a_physical_field(tmp_path):
    *_, field, image_path = write_case(tmp_path, 2)
    with pytest.raises(ValueError, match="applies to voxel DDFs only"):
        warp_file(image_path, field, str(tmp_path / "x.nii.gz"), moving_grid=image_path)


def test_moving_image_beside_a_physical_field_is_ignored(tmp_path):
    """tfreg_predict's moving_image.nii.gz rule is for voxel DDFs; a physical field does not use it."""
    shape, fixed, moving, image, ddf, field, image_path = write_case(tmp_path, 3)
    first = read_image(warp_file(image_path, field, str(tmp_path / "a.nii.gz")))[0]
    save_image(np.zeros((3, 3, 3), np.float32), tmp_path / "moving_image.nii.gz")
    second = read_image(warp_file(image_path, field, str(tmp_path / "b.nii.gz")))[0]
    np.testing.assert_array_equal(first, second)
