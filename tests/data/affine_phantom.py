"""An analytic blob image pair (2-D or 3-D) related by a known affine map, in two contrasts, for the affine
pre-alignment tests: a sum of Gaussian blobs is evaluated at ``T^-1(y)``, so the moving image needs no
interpolation."""

from __future__ import annotations

import numpy as np
import SimpleITK as sitk

from tests.data.rigid_phantom import grid_points
from tfreg.data.geometry import ImageGeometry

SIZE = 40
#: fixed -> moving matrices: anisotropic scaling (+-8 %) with shear terms up to 0.07
MATRICES = {
    3: np.array([[1.08, 0.06, 0.0], [0.0, 0.94, 0.05], [0.04, 0.0, 1.05]]),
    2: np.array([[1.08, 0.07], [0.0, 0.93]]),
}
TRANSLATION = np.array([2.0, -1.5, 1.0])


def blobs(points: np.ndarray, seed: int = 0, count: int = 10) -> np.ndarray:
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


def true_affine(ndim: int) -> sitk.AffineTransform:
    """The true fixed -> moving affine: ``x -> A (x - c) + c + t`` with ``c`` the grid centre."""
    transform = sitk.AffineTransform(ndim)
    transform.SetMatrix(tuple(MATRICES[ndim].ravel()))
    transform.SetCenter((SIZE / 2 - 0.5,) * ndim)
    transform.SetTranslation(tuple(TRANSLATION[:ndim]))
    return transform


def blob_pair(ndim: int):
    """``(fixed, moving, geometry, points)``: float32 ``(SIZE,) * ndim`` arrays on a 1 mm grid, fixed = blobs(x),
    moving = 1 - blobs(T^-1 y) plus noise (sd 0.01; an inverted contrast), with ``T`` :func:`true_affine`, and the
    voxel centres ``(*shape, ndim)`` in mm."""
    geometry = ImageGeometry.identity(ndim)
    points = grid_points((SIZE,) * ndim, geometry)
    matrix, centre = MATRICES[ndim], np.full(ndim, SIZE / 2 - 0.5)
    inverse = (points - centre - TRANSLATION[:ndim]) @ np.linalg.inv(matrix).T + centre
    fixed = blobs(points)
    moving = 1.0 - blobs(inverse) + np.random.default_rng(1).normal(0.0, 0.01, points.shape[:-1])
    return fixed.astype(np.float32), moving.astype(np.float32), geometry, points
