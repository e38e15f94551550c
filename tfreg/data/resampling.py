"""Resampling SimpleITK images to a voxel spacing, or onto another image's grid through a transform.

Images are interpolated with a windowed sinc (``lanczos``: ``sitk.sitkLanczosWindowedSinc``, the
interpolation the rigidity-preserving CT/MR thesis of van Ulsen uses), label maps with nearest neighbour
(``nearest``), so that label values stay the integers they were. Both 2-D and 3-D images are handled.

A grid keeps its origin (the physical centre of voxel 0, mm) and direction when resampled to a new
spacing; its size along axis ``a`` becomes ``max(1, round(size[a] * spacing[a] / new_spacing[a]))``, so the
physical extent is kept to within one new voxel.
"""

from __future__ import annotations

import math
from typing import Optional, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from tfreg.checks import check_choice
from tfreg.data.geometry import ImageGeometry

#: interpolation names accepted by :func:`interpolator` -> SimpleITK's enum
INTERPOLATORS = {
    "lanczos": sitk.sitkLanczosWindowedSinc,
    "nearest": sitk.sitkNearestNeighbor,
    "linear": sitk.sitkLinear,
}


def interpolator(name: str) -> int:
    """SimpleITK's interpolator enum for ``name`` (``lanczos``, ``nearest`` or ``linear``)."""
    return INTERPOLATORS[check_choice(name, "interpolation", tuple(INTERPOLATORS))]


def check_spacing(spacing, ndim: int, name: str = "spacing") -> Tuple[float, ...]:
    """``spacing`` as ``ndim`` positive floats (mm); a single number means the same spacing on every axis.

    Raises:
        ValueError: naming ``name``, when a value is not a finite number > 0 or the count is not 1 or ``ndim``.
    """
    values = [spacing] if np.isscalar(spacing) else list(spacing)
    if len(values) == 1:
        values = values * ndim
    ok = len(values) == ndim and all(
        not isinstance(v, (bool, np.bool_)) and isinstance(v, (int, float, np.number)) and math.isfinite(v) and v > 0
        for v in values
    )
    if not ok:
        raise ValueError(f"{name} must be one or {ndim} positive numbers (mm), one per image axis; got {spacing!r}")
    return tuple(float(v) for v in values)


def resampled_size(size: Sequence[int], spacing: Sequence[float], new_spacing: Sequence[float]) -> Tuple[int, ...]:
    """Voxel counts of a grid of ``size`` voxels at ``spacing`` resampled to ``new_spacing`` (same extent)."""
    return tuple(max(1, int(math.floor(n * s / t + 0.5))) for n, s, t in zip(size, spacing, new_spacing))


def grid_of_shape(size: Sequence[int], geometry: ImageGeometry, shape: Sequence[int]) -> ImageGeometry:
    """The grid of ``shape`` voxels covering the same physical extent as a grid of ``size`` voxels on ``geometry``.

    The extent is the box from the first voxel's outer corner to the last voxel's outer corner,
    ``size * spacing`` mm along each axis. The new spacing is ``size * spacing / shape`` (mm); the direction is
    kept; the origin (the first voxel's centre) moves by half the change of spacing along each axis,
    ``origin + direction @ ((new_spacing - spacing) / 2)``, so that the outer corner stays where it was.

    Args:
        size: ``(ndim,)`` voxel counts of the grid.
        geometry: its :class:`tfreg.data.geometry.ImageGeometry`.
        shape: ``(ndim,)`` positive voxel counts of the new grid.

    Returns:
        The new grid's :class:`tfreg.data.geometry.ImageGeometry` (2-D or 3-D).
    """
    size = np.asarray(size, dtype=np.float64)
    shape = np.asarray(shape, dtype=np.float64)
    spacing = np.asarray(geometry.spacing, dtype=np.float64)
    if size.shape != spacing.shape or shape.shape != spacing.shape or np.any(shape < 1):
        raise ValueError(
            f"shape must be {spacing.size} positive voxel counts, one per image axis; got {shape.astype(int).tolist()}"
        )
    new_spacing = size * spacing / shape
    origin = np.asarray(geometry.origin) + np.asarray(geometry.direction) @ ((new_spacing - spacing) / 2.0)
    return ImageGeometry(tuple(new_spacing), tuple(origin), geometry.direction)


def resample_to_spacing(image: sitk.Image, new_spacing: Sequence[float], interpolation: str) -> sitk.Image:
    """``image`` on a grid of ``new_spacing`` (mm) with the same origin and direction.

    Args:
        image: a 2-D or 3-D scalar SimpleITK image.
        new_spacing: ``ndim`` voxel sizes (mm).
        interpolation: ``lanczos`` for intensity images, ``nearest`` for label maps.

    Returns:
        The resampled image, of :func:`resampled_size` voxels and the input's pixel type; points beyond the
        input's field of view (at most half a new voxel at the far edge) are 0.
    """
    new_spacing = check_spacing(new_spacing, image.GetDimension(), "new_spacing")
    size = resampled_size(image.GetSize(), image.GetSpacing(), new_spacing)
    return sitk.Resample(
        image,
        size,
        sitk.Transform(image.GetDimension(), sitk.sitkIdentity),
        interpolator(interpolation),
        image.GetOrigin(),
        new_spacing,
        image.GetDirection(),
        0.0,
        image.GetPixelID(),
    )


def resample_onto(
    image: sitk.Image,
    reference: sitk.Image,
    transform: Optional[sitk.Transform],
    interpolation: str,
    default_value: float = 0.0,
) -> sitk.Image:
    """``image`` sampled on ``reference``'s grid (size, spacing, origin, direction) through ``transform``.

    Args:
        image: the moving image (2-D or 3-D, scalar).
        reference: the image whose grid the result takes.
        transform: maps a point of ``reference``'s physical space to ``image``'s (ITK's convention, as
            ``sitk.ImageRegistrationMethod`` returns it); None is the identity.
        interpolation: ``lanczos`` for intensity images, ``nearest`` for label maps.
        default_value: the value of voxels that map outside ``image`` (NaN marks them for a float image).

    Returns:
        An image on ``reference``'s grid with ``image``'s pixel type.
    """
    if transform is None:
        transform = sitk.Transform(image.GetDimension(), sitk.sitkIdentity)
    return sitk.Resample(
        image, reference, transform, interpolator(interpolation), float(default_value), image.GetPixelID()
    )


__all__ = [
    "INTERPOLATORS",
    "interpolator",
    "check_spacing",
    "resampled_size",
    "grid_of_shape",
    "resample_to_spacing",
    "resample_onto",
]
