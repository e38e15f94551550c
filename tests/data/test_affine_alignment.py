"""Affine pre-alignment (tfreg.data.affine_alignment): a known scaling + shear + translation between two contrasts
of an analytic blob image is recovered by Mattes mutual information, in 3-D and 2-D; reruns are identical."""

import numpy as np
import pytest
import SimpleITK as sitk

from tests.data.rigid_phantom import grid_points, map_points, rigid
from tfreg.data.affine_alignment import affine_from, align_affine_on_images
from tfreg.data.geometry import ImageGeometry
from tfreg.data.pair_preprocessing import to_sitk
from tfreg.data.rigid_alignment import RegistrationSettings

SIZE = 40
#: fixed -> moving matrices: anisotropic scaling (+-8 %) with shear terms up to 0.07
MATRICES = {
    3: np.array([[1.08, 0.06, 0.0], [0.0, 0.94, 0.05], [0.04, 0.0, 1.05]]),
    2: np.array([[1.08, 0.07], [0.0, 0.93]]),
}
TRANSLATION = np.array([2.0, -1.5, 1.0])


def _blobs(points: np.ndarray, seed: int = 0, count: int = 10) -> np.ndarray:
    """A sum of ``count`` Gaussian blobs (sd 2-3.6 mm) near the grid centre, evaluated at ``points (..., ndim)``
    in mm: an analytic image, so the moving image is sampled exactly at ``T^-1(y)``, with no interpolation."""
    ndim = points.shape[-1]
    rng = np.random.default_rng(seed)
    centres = (SIZE / 2 - 0.5) + rng.uniform(-0.2 * SIZE, 0.2 * SIZE, size=(count, ndim))
    widths = rng.uniform(0.05 * SIZE, 0.09 * SIZE, size=count)
    heights = rng.uniform(0.4, 1.0, size=count)
    out = np.zeros(points.shape[:-1])
    for centre, width, height in zip(centres, widths, heights):
        out += height * np.exp(-np.sum((points - centre) ** 2, axis=-1) / (2.0 * width**2))
    return out / out.max()


def _truth(ndim: int) -> sitk.AffineTransform:
    """The true fixed -> moving affine: ``x -> A (x - c) + c + t`` with ``c`` the grid centre."""
    transform = sitk.AffineTransform(ndim)
    transform.SetMatrix(tuple(MATRICES[ndim].ravel()))
    transform.SetCenter((SIZE / 2 - 0.5,) * ndim)
    transform.SetTranslation(tuple(TRANSLATION[:ndim]))
    return transform


def _pair(ndim: int):
    """(fixed, moving) images: moving = 1 - blobs(T^-1 y) (inverted contrast), fixed = blobs(x)."""
    geometry = ImageGeometry.identity(ndim)
    points = grid_points((SIZE,) * ndim, geometry)
    matrix, centre = MATRICES[ndim], np.full(ndim, SIZE / 2 - 0.5)
    inverse = (points - centre - TRANSLATION[:ndim]) @ np.linalg.inv(matrix).T + centre
    fixed = _blobs(points)
    moving = 1.0 - _blobs(inverse) + np.random.default_rng(1).normal(0.0, 0.01, points.shape[:-1])
    return to_sitk(fixed.astype(np.float32), geometry), to_sitk(moving.astype(np.float32), geometry), points, fixed


def _point_errors(found: sitk.Transform, truth: sitk.Transform, points: np.ndarray) -> np.ndarray:
    return np.linalg.norm(map_points(found, points) - map_points(truth, points), axis=1)


@pytest.mark.parametrize("ndim", [3, 2])
def test_recovers_scaling_shear_and_translation_between_contrasts(ndim):
    fixed, moving, points, fixed_array = _pair(ndim)
    truth = _truth(ndim)
    # 2-D: 1600 voxels, of which a quarter is too few samples for a 32-bin joint histogram: sample all of them
    settings = RegistrationSettings(sampling_percentage=0.25 if ndim == 3 else 1.0)
    result = align_affine_on_images(fixed, moving, settings)
    assert isinstance(result.transform, sitk.AffineTransform)
    assert result.method == "image" and result.metric == "mattes_mutual_information"
    record = result.to_dict()
    assert record["type"] == "AffineTransform" and record["angles_rad"] is None and record["stages"] == []
    matrix, offset = np.asarray(record["matrix"]), np.asarray(record["offset_mm"])
    # the known affine as matrix @ x + offset (offset = c + t - A c, from the truth's definition)
    centre = np.full(ndim, SIZE / 2 - 0.5)
    true_offset = centre + TRANSLATION[:ndim] - MATRICES[ndim] @ centre
    # tolerance: the MI of these smooth blobs is flat to within ~0.2 % over matrix changes of a few hundredths, so
    # each matrix entry within 0.05 and the mapped points of the blobs (where the image is above 0.2) within
    # 1.0 mm RMS (1 voxel), while the identity (the start) is off by more than 2.5 mm RMS there
    np.testing.assert_allclose(matrix, MATRICES[ndim], atol=0.05)
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
    errors = _point_errors(result.transform, _truth(3), points[fixed_array > 0.2])
    assert np.sqrt(np.mean(errors**2)) < 1.5
    with pytest.raises(ValueError, match="initial must be a 3-D transform like the images, got 2-D"):
        align_affine_on_images(fixed, moving, initial=sitk.Euler2DTransform())
