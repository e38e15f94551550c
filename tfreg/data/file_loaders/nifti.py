"""The ``nifti`` file loader: ``.nii.gz`` and ``.nii`` files, read with SimpleITK.

DeepReg read NIfTI with nibabel; SimpleITK gives the same voxel values in the same ``(i, j, k[, c])``
order (after transposing its ``(k, j, i)`` arrays, see :mod:`tfreg.data.image_io`), applies the
``scl_slope``/``scl_inter`` scaling as nibabel does, and adds the geometry. Where SimpleITK falls short
(:mod:`tfreg.data.nifti_raw`): truncated files (which it zero-fills) and NaN/infinite voxels (which it
zeroes) are errors naming the file, and NIfTI-2 files it cannot open are read directly.
Layout, IDs and order: see :mod:`tfreg.data.file_loaders.sitk`.
"""

from tfreg.data.file_loaders.sitk import SimpleITKFileLoader
from tfreg.registry import REGISTRY

NIFTI_SUFFIXES = ("nii.gz", "nii")


@REGISTRY.register_file_loader(name="nifti")
class NiftiFileLoader(SimpleITKFileLoader):
    """NIfTI-1/NIfTI-2 files (``.nii.gz``, ``.nii``) found recursively under ``<dir>/<name>/``."""

    suffixes = NIFTI_SUFFIXES
    format_name = "NIfTI"


__all__ = ["NiftiFileLoader", "NIFTI_SUFFIXES"]
