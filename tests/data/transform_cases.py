"""Shared cases for the transform-file tests: oblique grids, smooth DDFs, and SimpleITK's resampler as the
independent reference for how an ITK displacement field moves an image."""

import numpy as np
import SimpleITK as sitk

from tfreg.data.geometry import ImageGeometry


def rotation(ndim, degrees, flip_axis=None):
    """A rotation about the last axis (3-D: about z), times a flip of ``flip_axis``: a non-identity direction."""
    t = np.deg2rad(degrees)
    matrix = np.eye(ndim)
    matrix[:2, :2] = [[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]]
    if ndim == 3:  # tilt out of the xy plane too, so that no axis stays aligned
        s = np.deg2rad(20.0)
        matrix = matrix @ np.array([[1, 0, 0], [0, np.cos(s), -np.sin(s)], [0, np.sin(s), np.cos(s)]])
    if flip_axis is not None:
        matrix[:, flip_axis] *= -1.0
    return matrix


def fixed_geometry(ndim):
    """Anisotropic spacing, non-zero origin, rotated and flipped axes."""
    return ImageGeometry(
        spacing=(1.2, 0.8, 1.5)[:ndim], origin=(-10.0, 5.5, 20.0)[:ndim], direction=rotation(ndim, 30.0, flip_axis=1)
    )


def moving_geometry(ndim, fixed_shape, moving_shape):
    """Another grid (different spacing, origin and direction) centred on the fixed grid's centre, so that
    most fixed voxels map inside it."""
    spacing = np.asarray((1.0, 1.1, 1.3)[:ndim])
    direction = rotation(ndim, 22.0, flip_axis=0)
    fixed = fixed_geometry(ndim)
    centre = np.asarray(fixed.origin) + fixed.direction @ (
        np.asarray(fixed.spacing) * (np.asarray(fixed_shape) - 1) / 2.0
    )
    origin = centre - direction @ (spacing * (np.asarray(moving_shape) - 1) / 2.0)
    return ImageGeometry(spacing=spacing, origin=origin, direction=direction)


def grid(shape):
    return np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), -1)


def smooth_ddf(shape, amplitude=2.0, offset=None):
    """A smooth analytic ``(*shape, ndim)`` DDF (sinusoids, max ``amplitude`` voxels) plus an optional offset."""
    ndim = len(shape)
    p = grid(shape) / np.asarray(shape, dtype=np.float64)
    parts = []
    for a in range(ndim):
        phase = 0.7 * (a + 1)
        parts.append(amplitude * np.sin(2 * np.pi * p[..., (a + 1) % ndim] + phase) * np.cos(np.pi * p[..., a]))
    ddf = np.stack(parts, -1)
    if offset is not None:
        ddf = ddf + np.asarray(offset, dtype=np.float64)
    return ddf.astype(np.float32)


def sitk_image(array, geometry, vector=False):
    """A SimpleITK image of an ``(i, j[, k])`` array (float64) with ``geometry``."""
    array = np.asarray(array, dtype=np.float64)
    nd = geometry.ndim
    if vector:
        image = sitk.GetImageFromArray(np.transpose(array, tuple(reversed(range(nd))) + (nd,)), isVector=True)
    else:
        image = sitk.GetImageFromArray(np.transpose(array))
    geometry.apply_to_sitk(image)
    return image


def sitk_array(image):
    """``(i, j[, k])`` array of a scalar SimpleITK image."""
    return np.transpose(sitk.GetArrayFromImage(image)).astype(np.float64)


def sitk_resample_with_field(field_path, moving, moving_geometry, fixed_shape, fixed_geometry):
    """SimpleITK's linear resampling of ``moving`` through the displacement field file ``field_path``, onto the
    fixed grid; 0 outside the moving image."""
    field = sitk.ReadImage(str(field_path), sitk.sitkVectorFloat64)
    transform = sitk.DisplacementFieldTransform(field)
    reference = sitk_image(np.zeros(fixed_shape), fixed_geometry)
    out = sitk.Resample(
        sitk_image(moving, moving_geometry), reference, transform, sitk.sitkLinear, 0.0, sitk.sitkFloat64
    )
    return sitk_array(out)


def inside_mask(ddf, moving_shape, margin=1e-3):
    """Fixed voxels whose sample point ``p + ddf[p]`` lies inside ``[margin, n - 1 - margin]`` on every axis
    (``margin`` > 0). ITK and tfreg differ only in how they treat the border around the grid: ITK's linear
    interpolator extends the edge half a voxel outwards, tfreg's zero boundary does not."""
    q = grid(ddf.shape[:-1]) + ddf
    upper = np.asarray(moving_shape, dtype=np.float64) - 1 - margin
    return np.all((q >= margin) & (q <= upper), axis=-1)


def far_outside_mask(ddf, moving_shape):
    """Fixed voxels whose sample point is more than one voxel outside the moving grid on some axis (both
    ITK and tfreg give 0 there)."""
    q = grid(ddf.shape[:-1]) + ddf
    upper = np.asarray(moving_shape, dtype=np.float64)
    return np.any((q < -1.0) | (q > upper), axis=-1)
