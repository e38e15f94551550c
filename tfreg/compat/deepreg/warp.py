"""``deepreg.warp``: :func:`warp` with DeepReg's arguments; ``main`` is the ``deepreg_warp`` command line."""

from typing import Optional

from tfreg.cli.warp import main
from tfreg.engine.warp import DEFAULT_OUT, warp_file


def warp(image_path: str, ddf_path: str, out_path: Optional[str] = DEFAULT_OUT) -> str:
    """Warp the image file by the DDF file (DeepReg's ``warp``); returns the path written.

    Args:
        image_path: the moving image, ``(*m)`` or ``(*m, C)``, NIfTI or another SimpleITK format.
        ddf_path: the DDF ``(*f, ndim)`` in voxels of the moving grid (``tfreg_predict``'s ``ddf.nii.gz``).
        out_path: a ``.nii``/``.nii.gz`` file, or a folder (``<folder>/warped.nii.gz``).

    The output keeps the fixed grid's geometry (DeepReg wrote an identity affine); see
    :func:`tfreg.engine.warp.warp_file` for tfreg's further options.
    """
    return warp_file(image_path, ddf_path, out_path)


__all__ = ["main", "warp"]
