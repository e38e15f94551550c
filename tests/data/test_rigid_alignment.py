"""Rigid pre-alignment (tfreg.data.rigid_alignment): known rotations and translations of an analytic phantom
are recovered, on labels (mean squares) and on two-contrast images (Mattes MI), in 3-D and 2-D."""

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.rigid_phantom import contrast_image, dice, grid_points, map_points, moved_labels, phantom_labels, rigid
from tfreg.data.geometry import ImageGeometry
from tfreg.data.pair_preprocessing import from_sitk, to_sitk
from tfreg.data.rigid_alignment import (
    RegistrationSettings,
    align_on_images,
    align_on_labels,
    binary_mask,
    identity_result,
)

SHAPE3 = (48, 46, 48)
SHAPE2 = (48, 48)


def _pair(shape, truth, geometry=None):
    geometry = geometry or ImageGeometry.identity(len(shape))
    fixed = moved_labels(shape, geometry, None)
    moving = moved_labels(shape, geometry, truth)
    return to_sitk(fixed.astype(np.int32), geometry), to_sitk(moving.astype(np.int32), geometry), geometry


def _max_point_error(found, truth, fixed_label_array, geometry):
    """Largest distance (mm) between the two transforms' images of the fixed structure's voxels."""
    points = grid_points(fixed_label_array.shape, geometry)[fixed_label_array > 0]
    return float(np.max(np.linalg.norm(map_points(found, points) - map_points(truth, points), axis=1)))


def _warped_label(moving, fixed, transform):
    return from_sitk(sitk.Resample(moving, fixed, transform, sitk.sitkNearestNeighbor, 0))


def test_label_alignment_recovers_rotation_and_translation_3d():
    truth = rigid(3, (0.10, -0.08, 0.14), (2.5, -1.5, 3.0))
    fixed, moving, geometry = _pair(SHAPE3, truth)
    result = align_on_labels(fixed, moving, [1, 2, 3])
    assert result.method == "label" and result.metric == "mean_squares"
    assert isinstance(result.transform, sitk.Euler3DTransform)
    # angles do not depend on the rotation centre: compare them directly (within 1 degree)
    found_angles = np.asarray(result.transform.GetParameters()[:3])
    np.testing.assert_allclose(found_angles, [0.10, -0.08, 0.14], atol=np.radians(1.0))
    fixed_array = from_sitk(fixed)
    assert _max_point_error(result.transform, truth, fixed_array, geometry) < 0.6  # mm
    warped = _warped_label(moving, fixed, result.transform)
    # the union within the brief's 0.95; the small box and ball lose more to nearest-neighbour sampling
    assert dice(warped > 0, fixed_array > 0) > 0.95
    assert dice(warped == 1, fixed_array == 1) > 0.9
    # the record: matrix is the rotation, offset = c + t - R c
    record = result.to_dict()
    matrix = np.asarray(record["matrix"])
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(3), atol=1e-9)
    c, t = np.asarray(record["centre_mm"]), np.asarray(record["translation_mm"])
    np.testing.assert_allclose(record["offset_mm"], c + t - matrix @ c, atol=1e-9)
    point = np.array([3.0, 20.0, 11.0])
    np.testing.assert_allclose(result.transform.TransformPoint(tuple(point)), matrix @ point + record["offset_mm"])
    assert record["metric_value"] == pytest.approx(result.metric_value) and record["metric_value"] < 0.05


def test_label_alignment_on_one_label_with_spacing_and_direction():
    # an oblique, anisotropic grid: alignment works in physical space
    geometry = ImageGeometry(
        spacing=(1.2, 1.0, 1.1),
        origin=(-2.0, 1.0, 0.5),
        direction=np.array([[np.cos(0.2), -np.sin(0.2), 0.0], [np.sin(0.2), np.cos(0.2), 0.0], [0.0, 0.0, 1.0]]),
    )
    truth = rigid(3, (0.0, 0.05, -0.12), (-2.0, 1.0, 1.5))
    fixed, moving, _ = _pair((44, 48, 44), truth, geometry)
    result = align_on_labels(fixed, moving, [1])
    fixed_array = from_sitk(fixed)
    assert _max_point_error(result.transform, truth, (fixed_array == 1).astype(np.uint8), geometry) < 0.8
    assert dice(_warped_label(moving, fixed, result.transform) == 1, fixed_array == 1) > 0.95


def test_label_alignment_2d():
    truth = rigid(2, (0.15,), (2.0, -3.0))
    fixed, moving, geometry = _pair(SHAPE2, truth)
    result = align_on_labels(fixed, moving, [1, 2, 3])
    assert isinstance(result.transform, sitk.Euler2DTransform)
    assert result.transform.GetAngle() == pytest.approx(0.15, abs=np.radians(1.0))
    fixed_array = from_sitk(fixed)
    assert _max_point_error(result.transform, truth, fixed_array, geometry) < 0.6
    assert dice(_warped_label(moving, fixed, result.transform) > 0, fixed_array > 0) > 0.95
    assert result.to_dict()["angles_rad"] == [result.transform.GetAngle()]


def test_image_alignment_recovers_translation_between_contrasts():
    truth = rigid(3, (0.0, 0.0, 0.0), (3.0, -2.0, 1.5))
    fixed_label, moving_label, geometry = _pair(SHAPE3, truth)
    fixed = to_sitk(contrast_image(from_sitk(fixed_label), "mr", seed=3), geometry)
    moving = to_sitk(contrast_image(from_sitk(moving_label), "ct", seed=4), geometry)
    result = align_on_images(fixed, moving, RegistrationSettings(seed=1))
    assert result.method == "image" and result.metric == "mattes_mutual_information"
    record = result.to_dict()
    np.testing.assert_allclose(record["offset_mm"], [3.0, -2.0, 1.5], atol=0.5)
    np.testing.assert_allclose(record["angles_rad"], 0.0, atol=np.radians(1.5))
    assert dice(_warped_label(moving_label, fixed_label, result.transform) > 0, from_sitk(fixed_label) > 0) > 0.93
    # the same seed samples the same voxels, and one thread sums them in one order: the same transform
    again = align_on_images(fixed, moving, RegistrationSettings(seed=1))
    np.testing.assert_array_equal(again.transform.GetParameters(), result.transform.GetParameters())


def test_binary_mask_and_identity():
    label = to_sitk(np.array([[0, 1, 2], [3, 2, 0]], dtype=np.int32), ImageGeometry.identity(2))
    np.testing.assert_array_equal(from_sitk(binary_mask(label, [2, 3])), [[0, 0, 1], [1, 1, 0]])
    record = identity_result(3).to_dict()
    assert record["method"] == "none" and record["metric_value"] is None
    np.testing.assert_allclose(record["matrix"], np.eye(3))
    np.testing.assert_allclose(record["offset_mm"], 0.0)


def test_empty_mask_and_bad_settings_are_refused():
    fixed, moving, _ = _pair((20, 20, 20), None)
    empty = to_sitk(np.zeros((20, 20, 20), np.int32), ImageGeometry.identity(3))
    with pytest.raises(ValueError, match=r"moving label map holds none of the alignment label values \[1\]"):
        align_on_labels(fixed, empty, [1])
    with pytest.raises(ValueError, match=r"fixed label map holds none of the alignment label values \[7\]"):
        align_on_labels(fixed, moving, [7])
    with pytest.raises(ValueError, match="shrink_factors and smoothing_sigmas"):
        RegistrationSettings(shrink_factors=(4, 2), smoothing_sigmas=(1.0,))
    with pytest.raises(ValueError, match="sampling_percentage"):
        RegistrationSettings(sampling_percentage=0.0)
    with pytest.raises(ValueError, match="mi_bins"):
        RegistrationSettings(mi_bins=1)
    assert phantom_labels(np.zeros((1, 3))).shape == (1,)
