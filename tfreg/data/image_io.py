"""Read and write images with SimpleITK, as ``(i, j, k[, c])`` NumPy arrays plus an :class:`ImageGeometry`.

SimpleITK's ``GetArrayFromImage`` returns ``(k, j, i)`` (z fastest-varying last); DeepReg (through
nibabel) gave ``(i, j, k)``. Everything here transposes so that arrays are ``(i, j, k)``, and the channel
axis, when there is one, is last:

- a 4-D scalar image (NIfTI ``(x, y, z, n)``, DeepReg's multi-label files) becomes ``(i, j, k, n)``;
- a vector image (``.mha``/``.nrrd`` with n components per voxel) also becomes ``(i, j, k, n)``.

Formats are chosen by SimpleITK from the file name (``.nii``, ``.nii.gz``, ``.mha``, ``.mhd``, ``.nrrd``, ...).
NIfTI files get extra care (:mod:`tfreg.data.nifti_raw`): truncated files and non-finite voxels are
errors, the voxels of unscaled files are read directly (SimpleITK reads only the header, under the lock
of :mod:`tfreg.data.sitk_io_lock`), and NIfTI-2 files SimpleITK cannot open are read whole directly.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np
import SimpleITK as sitk

from tfreg.data.errors import DataError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.nifti_raw import (
    FLOAT_DATATYPES,
    check_nifti_complete,
    count_non_finite,
    read_nifti,
    read_nifti_info,
    read_unscaled_voxels,
)
from tfreg.data.sitk_io_lock import SITK_IO_LOCK

NIFTI_SUFFIXES = (".nii", ".nii.gz")


def is_nifti_path(path: str) -> bool:
    """Whether ``path`` names a NIfTI file (``.nii`` or ``.nii.gz``, case-insensitive)."""
    return str(path).lower().endswith(NIFTI_SUFFIXES)


def _array_from_sitk(image) -> np.ndarray:
    """``(i, j, k[, c])`` array of a SimpleITK image (see the module docstring)."""
    array = sitk.GetArrayViewFromImage(image)
    dim = image.GetDimension()
    if image.GetNumberOfComponentsPerPixel() > 1:
        # (k, j, i, c): reverse the spatial axes only, the components stay last
        return np.ascontiguousarray(np.transpose(array, tuple(reversed(range(dim))) + (dim,)))
    return np.ascontiguousarray(np.transpose(array))


def read_image(path: str, dtype=np.float32, check_finite: bool = True) -> Tuple[np.ndarray, ImageGeometry]:
    """Load an image file.

    Args:
        path: any format SimpleITK reads.
        dtype: the returned array's dtype (DeepReg loaded everything as float32); None keeps the file's.
        check_finite: raise on NaN/infinite voxels. SimpleITK reads them as 0 from NIfTI files, so the
            voxels of unscaled NIfTI files (float and integer) are read directly from the file
            (:mod:`tfreg.data.nifti_raw`); that also keeps the decompression outside the SimpleITK lock.

    Returns:
        ``(array, geometry)``: array ``(i, j, k)`` or ``(i, j, k, c)`` (2-D files: ``(i, j[, c])``);
        geometry of the spatial axes (at most 3; spacing and origin in mm).

    Raises:
        DataError: naming ``path`` when the file is missing, corrupt, truncated or not an image, or
            (``check_finite``) holds non-finite voxels.
    """
    header = None
    if is_nifti_path(path):
        header = check_nifti_complete(path)
        info = _sitk_info(path)
        if info is None:  # SimpleITK cannot read it (some NIfTI-2 files): read it directly
            array, geometry = read_nifti(str(path))
        else:
            array, geometry = read_unscaled_voxels(str(path), header, info[0]), info[1]
        if array is not None:  # read directly: float voxels keep their NaN/inf, which SimpleITK zeroes
            if check_finite and header["datatype"] in FLOAT_DATATYPES:
                _raise_if_non_finite(path, int(array.size - np.count_nonzero(np.isfinite(array))))
            array = array.astype(dtype if dtype is not None else array.dtype.newbyteorder("="))
            return np.ascontiguousarray(array), geometry
    try:
        with SITK_IO_LOCK:
            image = sitk.ReadImage(str(path))
    except RuntimeError as err:
        raise DataError(f"could not read image file {path}: {_first_line(err)}") from err
    array = _array_from_sitk(image)
    if check_finite:
        # for a scaled float NIfTI (rare) SimpleITK has zeroed non-finite voxels: count them in the file
        count = count_non_finite(path, header) if header is not None else None
        _raise_if_non_finite(
            path, count if count is not None else int(array.size - np.count_nonzero(np.isfinite(array)))
        )
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    return array, ImageGeometry.from_sitk(image)


def _raise_if_non_finite(path: str, count: int) -> None:
    if count:
        raise DataError(f"image file {path} has {count} non-finite (NaN or infinite) voxel(s)")


def read_image_info(path: str) -> Tuple[Tuple[int, ...], ImageGeometry]:
    """Shape and geometry of an image file from its header, without reading the voxels.

    Returns:
        ``(shape, geometry)`` with ``shape`` in the ``(i, j, k[, c])`` order :func:`read_image` returns.

    Raises:
        DataError: naming ``path`` when the header cannot be read, or a NIfTI file is truncated.
    """
    if is_nifti_path(path):
        check_nifti_complete(path)
        info = _sitk_info(path)
        return info if info is not None else read_nifti_info(str(path))
    info = _sitk_info(path, raise_errors=True)
    return info


def _sitk_info(path: str, raise_errors: bool = False) -> Optional[Tuple[Tuple[int, ...], ImageGeometry]]:
    """Shape and geometry from SimpleITK's header read; None (or DataError) when SimpleITK cannot read it."""
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        with SITK_IO_LOCK:
            reader.ReadImageInformation()
    except RuntimeError as err:
        if raise_errors:
            raise DataError(f"could not read the header of image file {path}: {_first_line(err)}") from err
        return None
    shape = tuple(int(s) for s in reader.GetSize())
    if reader.GetNumberOfComponents() > 1:
        shape = shape + (int(reader.GetNumberOfComponents()),)
    dim = reader.GetDimension()
    ndim = min(dim, 3)
    direction = np.asarray(reader.GetDirection(), dtype=np.float64).reshape(dim, dim)
    geometry = ImageGeometry(
        spacing=reader.GetSpacing()[:ndim], origin=reader.GetOrigin()[:ndim], direction=direction[:ndim, :ndim]
    )
    return shape, geometry


def save_image(array, path: str, geometry: Optional[ImageGeometry] = None, dtype=None) -> None:
    """Write ``array`` to ``path`` (format from the suffix) with ``geometry``.

    Args:
        array: ``(i, j[, k])`` spatial array, or the same with a trailing channel axis. The number of
            spatial axes is ``geometry.ndim`` when a geometry is given; otherwise arrays of rank <= 3 are
            all spatial and rank-4 arrays are ``(i, j, k, c)``.
        path: output file; missing parent folders are created. NIfTI files store channels as a 4th axis
            (what nibabel and DeepReg write and read back as ``(i, j, k, c)``); other formats store them
            as vector pixels.
        geometry: spacing/origin/direction; None writes spacing 1 mm, origin 0, identity direction.
        dtype: cast before writing (bool is always written as uint8); None keeps the array's dtype.
    """
    array = np.asarray(array)
    if dtype is not None:
        array = array.astype(dtype)
    if array.dtype == bool:
        array = array.astype(np.uint8)
    ndim = geometry.ndim if geometry is not None else (array.ndim if array.ndim <= 3 else 3)
    if array.ndim not in (ndim, ndim + 1):
        raise ValueError(
            f"cannot save an array of shape {array.shape} with a {ndim}-D geometry to {path}: "
            f"expected {ndim} spatial axes and at most one channel axis"
        )
    geometry = geometry if geometry is not None else ImageGeometry.identity(ndim)
    has_channels = array.ndim == ndim + 1
    if has_channels and not is_nifti_path(path):
        image = sitk.GetImageFromArray(np.transpose(array, tuple(reversed(range(ndim))) + (ndim,)), isVector=True)
    else:
        image = sitk.GetImageFromArray(np.transpose(array), isVector=False)
    geometry.apply_to_sitk(image)
    folder = os.path.dirname(str(path))
    if folder:
        os.makedirs(folder, exist_ok=True)
    with SITK_IO_LOCK:
        sitk.WriteImage(image, str(path), True)


def _first_line(err: Exception) -> str:
    """The informative part of an ITK exception, which starts with several lines of C++ location."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(("Exception thrown", "/", "sitk::ERROR:"))]
    return (useful or lines or ["unknown error"])[-1]


__all__ = ["read_image", "read_image_info", "save_image", "is_nifti_path", "NIFTI_SUFFIXES"]
