"""Resampling to a spacing and onto a grid (tfreg.data.resampling) against sitk.Resample called here."""

import numpy as np
import pytest
import SimpleITK as sitk

from tfreg.data.geometry import ImageGeometry
from tfreg.data.resampling import (
    check_spacing,
    grid_of_shape,
    interpolator,
    resample_onto,
    resample_to_spacing,
    resampled_size,
)


def _image(shape, seed=0, pixel=np.float32):
    rng = np.random.default_rng(seed)
    image = sitk.GetImageFromArray(rng.random(shape[::-1]).astype(pixel) * 100)
    image.SetSpacing((0.8, 1.3, 2.0)[: len(shape)])
    image.SetOrigin((5.0, -3.0, 12.0)[: len(shape)])
    angle = 0.3
    if len(shape) == 3:
        direction = [np.cos(angle), -np.sin(angle), 0, np.sin(angle), np.cos(angle), 0, 0, 0, 1]
    else:
        direction = [np.cos(angle), -np.sin(angle), np.sin(angle), np.cos(angle)]
    image.SetDirection(direction)
    return image


@pytest.mark.parametrize("shape", [(30, 26, 24), (28, 32)])
@pytest.mark.parametrize(
    "name,enum", [("lanczos", sitk.sitkLanczosWindowedSinc), ("nearest", sitk.sitkNearestNeighbor)]
)
def test_resample_to_spacing_matches_sitk(shape, name, enum):
    image = _image(shape)
    new_spacing = (1.0,) * len(shape)
    result = resample_to_spacing(image, new_spacing, name)
    # the size keeps the extent: round(n * s / t), computed here by hand
    expected_size = [int(np.floor(n * s / 1.0 + 0.5)) for n, s in zip(shape, image.GetSpacing())]
    assert list(result.GetSize()) == expected_size
    assert result.GetOrigin() == image.GetOrigin() and result.GetDirection() == image.GetDirection()
    assert result.GetSpacing() == new_spacing
    reference = sitk.ResampleImageFilter()
    reference.SetSize(expected_size)
    reference.SetOutputSpacing(new_spacing)
    reference.SetOutputOrigin(image.GetOrigin())
    reference.SetOutputDirection(image.GetDirection())
    reference.SetInterpolator(enum)
    reference.SetDefaultPixelValue(0)
    expected = reference.Execute(image)
    np.testing.assert_array_equal(sitk.GetArrayFromImage(result), sitk.GetArrayFromImage(expected))


def test_nearest_keeps_label_values():
    labels = sitk.GetImageFromArray(np.random.default_rng(1).integers(0, 6, (20, 22, 24)).astype(np.int32))
    labels.SetSpacing((0.6, 0.7, 0.8))
    result = resample_to_spacing(labels, 1.0, "nearest")
    assert result.GetPixelID() == sitk.sitkInt32
    assert set(np.unique(sitk.GetArrayFromImage(result))) <= set(range(6))
    # voxel (i, j, k) of the output is the input voxel nearest to its physical position
    out = sitk.GetArrayFromImage(result)
    array = sitk.GetArrayFromImage(labels)
    for index in [(0, 0, 0), (3, 5, 7), (13, 14, 15)]:  # (x, y, z), output size (14, 15, 16)
        point = np.asarray(index) * 1.0  # origin 0, identity direction
        nearest = np.floor(point / np.array([0.6, 0.7, 0.8]) + 0.5).astype(int)
        assert out[index[::-1]] == array[tuple(nearest[::-1])]


def test_resample_onto_matches_sitk_with_transform_and_nan_default():
    moving = _image((24, 26, 22), seed=2)
    reference = _image((20, 20, 20), seed=3)
    transform = sitk.Euler3DTransform((10.0, 5.0, 20.0), 0.05, -0.1, 0.2, (3.0, -2.0, 4.0))
    result = resample_onto(moving, reference, transform, "lanczos", float("nan"))
    expected = sitk.Resample(moving, reference, transform, sitk.sitkLanczosWindowedSinc, float("nan"), sitk.sitkFloat32)
    a, b = sitk.GetArrayFromImage(result), sitk.GetArrayFromImage(expected)
    np.testing.assert_array_equal(np.isnan(a), np.isnan(b))
    assert np.isnan(a).any() and (~np.isnan(a)).any()  # partly outside the moving field of view
    np.testing.assert_array_equal(a[~np.isnan(a)], b[~np.isnan(b)])
    identity = resample_onto(moving, moving, None, "nearest")
    np.testing.assert_array_equal(sitk.GetArrayFromImage(identity), sitk.GetArrayFromImage(moving))


def test_sizes_and_bad_arguments():
    assert resampled_size((100, 51, 7), (0.5, 1.0, 3.0), (1.0, 2.0, 1.0)) == (50, 26, 21)
    assert resampled_size((3,), (0.1,), (10.0,)) == (1,)  # never empty
    assert check_spacing(1.5, 3) == (1.5, 1.5, 1.5)
    assert check_spacing([1, 2], 2) == (1.0, 2.0)
    for bad in ([1.0, 2.0], [0.0], [-1.0], [float("nan")], [True], "1"):
        with pytest.raises(ValueError, match="spacing must be one or 3 positive numbers"):
            check_spacing(bad, 3)
    with pytest.raises(ValueError, match="interpolation='cubic' is not supported"):
        interpolator("cubic")


def test_grid_of_shape_on_an_oblique_grid():
    angle = 0.3
    direction = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0, 0, 1.0]])
    geometry = ImageGeometry((0.8, 0.8, 5.0), (-100.0, 20.0, 7.0), direction)
    grid = grid_of_shape((320, 256, 40), geometry, (128, 128, 96))
    # spacing by hand: 320 * 0.8 / 128 = 2.0, 256 * 0.8 / 128 = 1.6, 40 * 5 / 96 = 2.0833...
    np.testing.assert_allclose(grid.spacing, (2.0, 1.6, 200.0 / 96.0))
    # origin: the first voxel's outer corner origin - D (spacing / 2) is kept
    corner = np.asarray(geometry.origin) - direction @ (np.array([0.8, 0.8, 5.0]) / 2)
    np.testing.assert_allclose(np.asarray(grid.origin) - direction @ (np.asarray(grid.spacing) / 2), corner)
    np.testing.assert_allclose(grid.direction, direction)
    # the far corner too: corner + D (size * spacing), 256 x 204.8 x 200 mm
    far = corner + direction @ np.array([256.0, 204.8, 200.0])
    np.testing.assert_allclose(
        np.asarray(grid.origin) + direction @ (np.asarray(grid.spacing) * (np.array([128, 128, 96]) - 0.5)), far
    )
    with pytest.raises(ValueError, match="shape must be 3 positive voxel counts"):
        grid_of_shape((10, 10, 10), geometry, (10, 10))
