"""An analytic labelled phantom (2-D or 3-D) sampled on any grid, with two contrasts, for the preprocessing tests.

The structures fill a 48-voxel grid at 1 mm: large enough that nearest-neighbour resampling keeps a Dice
above 0.95 under the true transform. Structures (label values) are defined in physical space (mm) around
``CENTRE``: 1 an ellipsoid with three different radii (so every rotation changes it), 2 a box beside it,
3 a small ball at one end. Sampling the phantom at ``T^-1(y)`` for a rigid ``T`` gives the moving image of
a pair whose true alignment (fixed -> moving, ITK's convention) is ``T``, without any interpolation.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from tfreg.data.geometry import ImageGeometry

CENTRE = np.array([23.5, 23.0, 23.5])
#: intensity of background and labels 1, 2, 3 in the two contrasts ("CT"-like and "MR"-like, reversed)
CONTRASTS = {"ct": (10.0, 200.0, 120.0, 250.0), "mr": (150.0, 30.0, 90.0, 60.0)}


def grid_points(shape: Sequence[int], geometry: ImageGeometry) -> np.ndarray:
    """``(*shape, ndim)`` physical positions (mm) of every voxel centre."""
    index = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)
    return index @ (geometry.direction @ np.diag(geometry.spacing)).T + np.asarray(geometry.origin)


def phantom_labels(points: np.ndarray) -> np.ndarray:
    """Integer label map (0, 1, 2, 3) at ``points`` ``(..., ndim)`` in mm (2-D: the z = CENTRE slice)."""
    ndim = points.shape[-1]
    d = points - CENTRE[:ndim]
    radii = np.array([14.4, 9.6, 7.2])[:ndim]
    label = np.zeros(points.shape[:-1], dtype=np.uint8)
    label[np.sum((d / radii) ** 2, axis=-1) <= 1.0] = 1
    box = d - np.array([0.0, 12.6, 0.0])[:ndim]
    half = np.array([4.8, 3.6, 7.2])[:ndim]
    label[np.all(np.abs(box) <= half, axis=-1)] = 2
    ball = d - np.array([13.2, 0.0, 0.0])[:ndim]
    label[np.sum(ball**2, axis=-1) <= 4.2**2] = 3
    return label


def contrast_image(label: np.ndarray, contrast: str, seed: int = 0, noise: float = 2.0) -> np.ndarray:
    """float32 image of ``label`` in ``contrast`` (``ct`` or ``mr``) plus Gaussian noise of sd ``noise``."""
    values = np.asarray(CONTRASTS[contrast], dtype=np.float32)
    rng = np.random.default_rng(seed)
    return values[label] + rng.normal(0.0, noise, size=label.shape).astype(np.float32)


def rigid(ndim: int, angles: Sequence[float], translation: Sequence[float]) -> sitk.Transform:
    """Euler transform (fixed -> moving, mm) with rotation centre ``CENTRE``; angles in radians."""
    if ndim == 3:
        transform = sitk.Euler3DTransform()
        transform.SetRotation(*angles)
    else:
        transform = sitk.Euler2DTransform()
        transform.SetAngle(angles[0])
    transform.SetCenter(tuple(CENTRE[:ndim]))
    transform.SetTranslation(tuple(float(t) for t in translation))
    return transform


def moved_labels(shape: Sequence[int], geometry: ImageGeometry, transform: Optional[sitk.Transform]) -> np.ndarray:
    """The phantom's labels on a grid after the moving <- fixed ``transform``: sampled at ``T^-1(y)``."""
    points = grid_points(shape, geometry)
    if transform is not None:
        inverse = transform.GetInverse()
        flat = points.reshape(-1, points.shape[-1])
        points = np.array([inverse.TransformPoint(tuple(p)) for p in flat]).reshape(points.shape)
    return phantom_labels(points)


def map_points(transform: sitk.Transform, points: np.ndarray) -> np.ndarray:
    """``transform`` applied to ``(n, ndim)`` points."""
    return np.array([transform.TransformPoint(tuple(float(v) for v in p)) for p in points])


def dice(a: np.ndarray, b: np.ndarray) -> float:
    """Dice overlap of two boolean arrays."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    return float(2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum()))


def phantom_pair(
    shape: Tuple[int, ...],
    transform: Optional[sitk.Transform],
    fixed_geometry: Optional[ImageGeometry] = None,
    moving_geometry: Optional[ImageGeometry] = None,
    moving_contrast: str = "ct",
    fixed_contrast: str = "mr",
):
    """``(moving_image, fixed_image, moving_label, fixed_label)`` arrays of a phantom pair."""
    ndim = len(shape)
    fixed_geometry = fixed_geometry or ImageGeometry.identity(ndim)
    moving_geometry = moving_geometry or fixed_geometry
    fixed_label = moved_labels(shape, fixed_geometry, None)
    moving_label = moved_labels(shape, moving_geometry, transform)
    return (
        contrast_image(moving_label, moving_contrast, seed=1),
        contrast_image(fixed_label, fixed_contrast, seed=2),
        moving_label,
        fixed_label,
    )


def write_phantom_folder(
    folder: str,
    pairs: dict,
    fixed_shape: Tuple[int, ...] = (40, 40, 32),
    fixed_geometry: Optional[ImageGeometry] = None,
    moving_shape: Optional[Tuple[int, ...]] = None,
    moving_geometry: Optional[ImageGeometry] = None,
) -> dict:
    """Write DeepReg's paired layout: ``pairs`` maps a pair ID to its true transform (or None).

    Defaults: the fixed grid has spacing (1.2, 1.2, 1.5) mm (48 mm per side), the moving one 1 mm and
    another origin. Returns ``{pair_id: {role: path}}``.
    """
    import os

    from tfreg.data.image_io import save_image

    ndim = len(fixed_shape)
    fixed_geometry = fixed_geometry or ImageGeometry((1.2, 1.2, 1.5)[:ndim], (0.0,) * ndim, np.eye(ndim))
    moving_shape = moving_shape or (48,) * ndim
    moving_geometry = moving_geometry or ImageGeometry((1.0,) * ndim, (-1.0, 0.5, -0.5)[:ndim], np.eye(ndim))
    files = {}
    for pair_id, transform in pairs.items():
        fixed_label = moved_labels(fixed_shape, fixed_geometry, None)
        moving_label = moved_labels(moving_shape, moving_geometry, transform)
        arrays = {
            "moving_images": (contrast_image(moving_label, "ct", seed=1), moving_geometry),
            "fixed_images": (contrast_image(fixed_label, "mr", seed=2), fixed_geometry),
            "moving_labels": (moving_label, moving_geometry),
            "fixed_labels": (fixed_label, fixed_geometry),
        }
        files[pair_id] = {}
        for sub, (array, geometry) in arrays.items():
            path = os.path.join(folder, sub, pair_id + ".nii.gz")
            save_image(array, path, geometry)
            files[pair_id][sub] = path
    return files
