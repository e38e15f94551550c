"""tfreg/data/geometry.py: ImageGeometry, its SimpleITK conversion and its resized form."""

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.helpers import OBLIQUE
from tfreg.data.geometry import ImageGeometry


def test_identity_and_validation():
    g = ImageGeometry.identity(3)
    assert g.spacing == (1.0, 1.0, 1.0) and g.origin == (0.0, 0.0, 0.0)
    np.testing.assert_array_equal(g.direction, np.eye(3))
    with pytest.raises(ValueError, match="spacing"):
        ImageGeometry((1.0, 0.0), (0.0, 0.0), np.eye(2))
    with pytest.raises(ValueError, match="inconsistent"):
        ImageGeometry((1.0, 1.0), (0.0, 0.0, 0.0), np.eye(2))


def test_dict_round_trip_and_hash():
    assert ImageGeometry.from_dict(OBLIQUE.to_dict()) == OBLIQUE
    assert hash(ImageGeometry.from_dict(OBLIQUE.to_dict())) == hash(OBLIQUE)


def test_sitk_round_trip_and_index_to_physical():
    image = sitk.Image([4, 5, 6], sitk.sitkFloat32)
    OBLIQUE.apply_to_sitk(image)
    assert ImageGeometry.from_sitk(image).allclose(OBLIQUE)
    # index (i, j, k) -> physical point: SimpleITK as the reference
    idx = (3, 1, 4)
    expected = image.TransformIndexToPhysicalPoint(idx)
    got = OBLIQUE.index_to_physical() @ np.array(idx + (1,), dtype=float)
    np.testing.assert_allclose(got[:3], expected, atol=1e-9)


def test_4d_image_keeps_spatial_block():
    image = sitk.Image([4, 5, 6, 3], sitk.sitkFloat32)
    OBLIQUE.apply_to_sitk(image)
    assert image.GetSpacing()[3] == 1.0
    assert ImageGeometry.from_sitk(image).allclose(OBLIQUE)


def test_resized_keeps_physical_extent():
    """Output voxel o sits at input index (o + 0.5) * n_in / n_out - 0.5 (half-pixel centres)."""
    from_shape, to_shape = (8, 10, 12), (4, 5, 24)
    new = OBLIQUE.resized(from_shape, to_shape)
    for o in [(0, 0, 0), (3, 4, 23), (1, 2, 7)]:
        src = (np.array(o) + 0.5) * np.array(from_shape) / np.array(to_shape) - 0.5
        expected = OBLIQUE.index_to_physical() @ np.append(src, 1.0)
        got = new.index_to_physical() @ np.append(np.array(o, float), 1.0)
        np.testing.assert_allclose(got, expected, atol=1e-9)
    assert OBLIQUE.resized(from_shape, from_shape).allclose(OBLIQUE)


def test_with_ndim():
    two = OBLIQUE.with_ndim(2)
    assert two.spacing == OBLIQUE.spacing[:2]
    back = two.with_ndim(3)
    assert back.spacing[2] == 1.0 and back.direction[2, 2] == 1.0
