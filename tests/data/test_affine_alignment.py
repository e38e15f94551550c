"""Affine pre-alignment (tfreg.data.affine_alignment): a known scaling + shear + translation between two contrasts
of an analytic blob image is recovered by Mattes mutual information, in 3-D and 2-D; reruns are identical."""

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.affine_phantom import MATRICES, SIZE, TRANSLATION, blob_pair, true_affine
from tests.data.rigid_phantom import map_points, rigid
from tfreg.data.affine_alignment import affine_from, align_affine_on_images
from tfreg.data.pair_preprocessing import to_sitk
from tfreg.data.rigid_alignment import RegistrationSettings


def _pair(ndim: int):
    """(fixed, moving) SimpleITK images of :func:`blob_pair`, the voxel centres (mm) and the fixed array."""
    fixed, moving, geometry, points = blob_pair(ndim)
    return to_sitk(fixed, geometry), to_sitk(moving, geometry), points, fixed


def _point_errors(found: sitk.Transform, truth: sitk.Transform, points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(map_points(found, points) - map_points(truth, points), axis=1)


@pytest.mark.parametrize("ndim", [3, 2])
def test_recovers_scaling_shear_and_translation_between_contrasts(ndim):
    fixed, moving, points, fixed_array = _pair(ndim)
    truth = true_affine(ndim)
    # 64 bins: the Parzen-window MI's optimum is biased toward shrinking the moving image (mapping fixed points
    # into a smaller moving region) by roughly 1/bins (here, per diagonal entry: 3 % with 32 bins, 1.6 % with 64);
    # 2-D: 1600 voxels, of which a quarter are too few samples for the joint histogram: sample all of them
    settings = RegistrationSettings(mi_bins=64, sampling_percentage=0.25 if ndim == 3 else 1.0)
    result = align_affine_on_images(fixed, moving, settings)
    assert isinstance(result.transform, sitk.AffineTransform)
    assert result.method == "image" and result.metric == "mattes_mutual_information"
    record = result.to_dict()
    assert record["type"] == "AffineTransform" and record["angles_rad"] is None and record["stages"] == []
    matrix, offset = np.asarray(record["matrix"]), np.asarray(record["offset_mm"])
    # the known affine as matrix @ x + offset (offset = c + t - A c, from the truth's definition)
    centre = np.full(ndim, SIZE / 2 - 0.5)
    true_offset = centre + TRANSLATION[:ndim] - MATRICES[ndim] @ centre
    # tolerance: each matrix entry within 0.03 (3-D; 0.04 in 2-D, the bias above being larger there), and the
    # mapped points of the blobs (where the image is above 0.2) within 1.0 mm RMS (1 voxel), while the identity
    # (the start) is off by more than 2.5 mm RMS there
    np.testing.assert_allclose(matrix, MATRICES[ndim], atol=0.03 if ndim == 3 else 0.04)
    inside = points[fixed_array > 0.2]
    errors = _point_errors(result.transform, truth, inside)
    identity_errors = np.linalg.norm(map_points(truth, inside) - inside, axis=1)
    assert np.sqrt(np.mean(errors**2)) < 1.0
    assert np.sqrt(np.mean(identity_errors**2)) > 2.5
    # the record describes the same map: matrix @ x + offset is the transform's own mapping
    point = np.full(ndim, 7.0)
    np.testing.assert_allclose(result.transform.TransformPoint(tuple(point)), matrix @ point + offset, atol=1e-9)
    np.testing.assert_allclose(offset, true_offset, atol=2.0)
    # one thread (the default) and one sampling seed: bitwise identical reruns
    again = align_affine_on_images(fixed, moving, settings)
    np.testing.assert_array_equal(again.transform.GetParameters(), result.transform.GetParameters())


def test_starts_from_a_rigid_transform():
    start = rigid(3, (0.05, -0.02, 0.1), (1.0, 2.0, -1.0))
    affine = affine_from(start)
    assert isinstance(affine, sitk.AffineTransform)
    points = np.array([[0.0, 0.0, 0.0], [10.0, -4.0, 7.5], [30.0, 20.0, 11.0]])
    np.testing.assert_allclose(map_points(affine, points), map_points(start, points), atol=1e-9)
    fixed, moving, points, fixed_array = _pair(3)
    # started from the identity given explicitly: the same problem, solved as well as from the centred initialiser
    result = align_affine_on_images(fixed, moving, RegistrationSettings(), initial=sitk.Euler3DTransform())
    errors = _point_errors(result.transform, true_affine(3), points[fixed_array > 0.2])
    assert np.sqrt(np.mean(errors**2)) < 1.5
    with pytest.raises(ValueError, match="initial must be a 3-D transform like the images, got 2-D"):
        align_affine_on_images(fixed, moving, initial=sitk.Euler2DTransform())
