"""tfreg/data/image_io.py: (i, j, k) arrays with geometry; round trips; truncated files."""

import gzip
import os

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.helpers import OBLIQUE
from tfreg.data.errors import DataError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, read_image_info, save_image
from tfreg.data.nifti_raw import check_nifti_complete, header_geometry, read_nifti_header


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha", ".nrrd"])
@pytest.mark.parametrize("channels", [None, 3])
def test_round_trip_geometry_and_values(tmp_path, suffix, channels):
    rng = np.random.default_rng(0)
    shape = (5, 6, 7) + ((channels,) if channels else ())
    array = rng.random(shape).astype(np.float32)
    path = str(tmp_path / ("x" + suffix))
    save_image(array, path, OBLIQUE)
    loaded, geometry = read_image(path)
    assert loaded.shape == shape and loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, array)
    np.testing.assert_allclose(geometry.spacing, OBLIQUE.spacing, atol=1e-6)
    np.testing.assert_allclose(geometry.origin, OBLIQUE.origin, atol=1e-5)
    np.testing.assert_allclose(geometry.direction, OBLIQUE.direction, atol=1e-6)
    info_shape, info_geometry = read_image_info(path)
    assert info_shape == shape and info_geometry.allclose(geometry)


def test_axis_order_is_ijk(tmp_path):
    """Array axis 0 is SimpleITK's x index: the voxel at index (i, j, k) is array[i, j, k]."""
    array = np.arange(2 * 3 * 4, dtype=np.float32).reshape(2, 3, 4)
    path = str(tmp_path / "a.nii.gz")
    save_image(array, path)
    image = sitk.ReadImage(path)
    assert image.GetSize() == (2, 3, 4)
    assert image.GetPixel(1, 2, 3) == array[1, 2, 3]


def test_2d_and_dtype(tmp_path):
    array = (np.arange(12).reshape(3, 4) % 2).astype(bool)
    geometry = ImageGeometry((0.5, 2.0), (1.0, -1.0), np.eye(2))
    path = str(tmp_path / "sub" / "m.nii.gz")
    save_image(array, path, geometry)
    loaded, g = read_image(path, dtype=None)
    assert loaded.dtype == np.uint8 and loaded.shape == (3, 4)
    assert g.allclose(geometry)


def test_real_label_file_geometry(shared_data):
    path = shared_data / "deepreg_test/nifti/paired/train/moving_labels/case000000.nii.gz"
    array, geometry = read_image(str(path))
    assert array.shape == (64, 64, 60, 3)
    np.testing.assert_allclose(geometry.spacing, (0.4, 0.4, 0.4), atol=1e-6)
    # NIfTI's RAS identity appears as LPS direction diag(-1, -1, 1) in SimpleITK
    np.testing.assert_allclose(geometry.direction, np.diag([-1.0, -1.0, 1.0]), atol=1e-6)
    assert set(np.unique(array)) <= {0.0, 1.0}


def test_truncated_nifti_is_an_error_naming_the_file(tmp_path):
    array = np.random.default_rng(0).random((16, 16, 16)).astype(np.float32)
    for suffix in (".nii", ".nii.gz"):
        path = str(tmp_path / ("full" + suffix))
        save_image(array, path)
        check_nifti_complete(path)
        cut = str(tmp_path / ("cut" + suffix))
        data = open(path, "rb").read()
        open(cut, "wb").write(data[: len(data) // 2])
        for reader in (read_image, read_image_info, check_nifti_complete):
            with pytest.raises(DataError, match=f"cut{suffix.replace('.', '[.]')}"):
                reader(cut)


def test_not_an_image(tmp_path):
    path = tmp_path / "junk.nii.gz"
    path.write_bytes(gzip.compress(b"not a nifti header" * 10))
    with pytest.raises(DataError, match="junk.nii.gz"):
        read_image(str(path))
    other = tmp_path / "junk.mha"
    other.write_text("garbage")
    with pytest.raises(DataError, match="junk.mha"):
        read_image(str(other))


@pytest.mark.parametrize("suffix", [".nii.gz", ".nii", ".mha"])
@pytest.mark.parametrize("value", [np.nan, np.inf])
def test_non_finite_voxels_are_an_error(tmp_path, suffix, value):
    """SimpleITK reads NaN/inf in NIfTI files as 0: tfreg scans the file instead."""
    array = np.ones((4, 5, 6), np.float64)
    array[1, 2, 3] = value
    path = str(tmp_path / ("nan" + suffix))
    save_image(array, path)
    with pytest.raises(DataError, match=f"nan{suffix.replace('.', '[.]')} has 1 non-finite"):
        read_image(path)
    assert read_image(path, check_finite=False)[0].shape == (4, 5, 6)


def test_save_rejects_bad_rank(tmp_path):
    with pytest.raises(ValueError, match="spatial axes"):
        save_image(np.zeros((2, 3, 4, 5, 6)), os.path.join(tmp_path, "x.nii.gz"))


def test_header_geometry_matches_simpleitk(tmp_path):
    """tfreg's own NIfTI header geometry (used where SimpleITK cannot read a file) agrees with SimpleITK's,
    from the sform and, with the sform switched off, from the qform."""
    import struct

    path = str(tmp_path / "oblique.nii")
    save_image(np.zeros((4, 5, 6), np.float32), path, OBLIQUE)
    assert header_geometry(read_nifti_header(path)).allclose(OBLIQUE, atol=1e-5)
    data = bytearray(open(path, "rb").read())
    struct.pack_into("<h", data, 254, 0)  # sform_code = 0: only the qform is left
    qform_only = str(tmp_path / "qform.nii")
    open(qform_only, "wb").write(bytes(data))
    assert header_geometry(read_nifti_header(qform_only)).allclose(
        ImageGeometry.from_sitk(sitk.ReadImage(qform_only)), atol=1e-5
    )


def test_nifti2_that_simpleitk_cannot_read(shared_data):
    path = shared_data / "deepreg_test/nifti/unit_test/moving_image.nii.gz"
    with pytest.raises(RuntimeError):
        sitk.ReadImage(str(path))
    array, geometry = read_image(str(path))
    assert array.shape == (16, 16, 16) and array.dtype == np.float32 and np.isfinite(array).all()
    # identity sform (RAS) in ITK's LPS convention
    assert geometry.allclose(ImageGeometry((1.0, 1.0, 1.0), (0.0, 0.0, 0.0), np.diag([-1.0, -1.0, 1.0])))
    assert read_image_info(str(path)) == ((16, 16, 16), geometry)


def test_direct_float_read_equals_simpleitk(shared_data):
    """Float NIfTI files are read without SimpleITK (to see NaN/inf); the values and axes must agree."""
    for name in ("paired/train/moving_labels/case000000.nii.gz", "unit_test/ddf.nii.gz"):
        path = str(shared_data / "deepreg_test/nifti" / name)
        array, geometry = read_image(path)
        image = sitk.ReadImage(path)
        reference = np.transpose(sitk.GetArrayFromImage(image)).astype(np.float32)
        np.testing.assert_array_equal(array, reference)
        assert array.flags.c_contiguous and geometry.allclose(ImageGeometry.from_sitk(image))


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint16, np.int32, np.uint32, np.int64])
@pytest.mark.parametrize("shape", [(5, 6, 7), (5, 6, 7, 3), (5, 6)])
def test_integer_nifti_voxels_are_read_directly_and_match_simpleitk(tmp_path, monkeypatch, suffix, dtype, shape):
    # SimpleITK writes the file and reads the reference; tfreg must read the voxels itself (outside the
    # SimpleITK lock), so sitk.ReadImage is made to fail during tfreg's read
    rng = np.random.default_rng(0)
    info = np.iinfo(dtype)
    array = rng.integers(max(info.min, -1000), min(info.max, 1000), size=shape, endpoint=True).astype(dtype)
    path = str(tmp_path / ("labels" + suffix))
    spatial = shape[:3] if len(shape) == 4 else shape
    sitk.WriteImage(sitk.GetImageFromArray(np.transpose(array), isVector=False), path)  # 4-D: a 4-D scalar image
    reference = np.transpose(sitk.GetArrayFromImage(sitk.ReadImage(path)))
    read = sitk.ReadImage

    def refuse(*args, **kwargs):
        raise AssertionError("the voxels of an unscaled integer NIfTI file went through sitk.ReadImage")

    monkeypatch.setattr(sitk, "ReadImage", refuse)
    loaded, geometry = read_image(path, dtype=None)
    monkeypatch.setattr(sitk, "ReadImage", read)
    assert loaded.dtype == reference.dtype == np.dtype(dtype)
    assert loaded.shape == reference.shape == array.shape
    np.testing.assert_array_equal(loaded, reference)
    np.testing.assert_array_equal(loaded, array)
    assert geometry.ndim == len(spatial)


def test_scaled_integer_nifti_still_goes_through_simpleitk_with_its_scaling(tmp_path):
    # scl_slope 0.5, scl_inter 10 written into a NIfTI-1 header by hand: voxel values v read as 0.5 v + 10
    array = np.arange(5 * 6 * 7, dtype=np.int16).reshape(5, 6, 7)
    path = str(tmp_path / "scaled.nii")
    sitk.WriteImage(sitk.GetImageFromArray(np.transpose(array)), path)
    with open(path, "r+b") as stream:
        stream.seek(112)
        stream.write(np.array([0.5, 10.0], "<f4").tobytes())
    loaded, _ = read_image(path)
    np.testing.assert_allclose(loaded, 0.5 * array + 10.0)
