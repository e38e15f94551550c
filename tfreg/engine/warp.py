"""``tfreg_warp`` / ``deepreg_warp``: warp an image file with a DDF file.

The DDF is ``(*f, ndim)`` in voxels of the image (ij(k) order, as ``tfreg_predict`` writes it); output voxel
``p`` samples the image at ``p + ddf[p]`` with linear interpolation and a zero boundary (DeepReg's
``Warping``, minus its coordinate-0 bug). The output has the DDF's grid and geometry (the fixed image's);
DeepReg wrote an identity affine. A 4-D image ``(*m, C)`` is warped channel by channel.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from tfreg.data.image_io import read_image, save_image
from tfreg.file_safety import atomic_output, check_not_input

DEFAULT_OUT = "warped.nii.gz"


def output_path(out: Optional[str]) -> str:
    """DeepReg's rule: a path without ``.nii``/``.nii.gz`` is a folder that gets ``warped.nii.gz``.

    Unlike DeepReg, a bare file name (no folder) works: it is written in the current directory.
    """
    out = os.path.expanduser(out or DEFAULT_OUT)
    if out.endswith(".nii") or out.endswith(".nii.gz"):
        return out
    return os.path.join(out, DEFAULT_OUT)


def warp_file(
    image_path: str,
    ddf_path: str,
    out_path: Optional[str] = DEFAULT_OUT,
    interpolation: str = "linear",
    overwrite_input: bool = False,
) -> str:
    """Warp ``image_path`` by ``ddf_path`` and write the result; returns the path written.

    Args:
        image_path: NIfTI (or any SimpleITK format) image, ``(*m)`` or ``(*m, C)``; ``*m`` 2-D or 3-D.
        ddf_path: DDF ``(*f, ndim)`` with ``ndim`` = the image's spatial rank, in image voxels.
        out_path: ``.nii``/``.nii.gz`` file, or a folder (``<folder>/warped.nii.gz``).
        interpolation: ``linear`` or ``nearest`` (for label maps).
        overwrite_input: allow ``out_path`` to be the image or the DDF file (it is replaced by the result);
            otherwise that is refused. The output is always written atomically (scratch file, then rename),
            so an interrupted run never leaves a truncated file.

    Raises:
        FileNotFoundError: a missing input (named). FileExistsError: the output is an input and
        ``overwrite_input`` is False. ValueError: shapes that do not fit together.
    """
    for name, path in (("--image", image_path), ("--ddf", ddf_path)):
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{name}: file {path} does not exist")
    if interpolation not in ("linear", "nearest"):
        raise ValueError(f"interpolation must be 'linear' or 'nearest', got {interpolation!r}")
    out = output_path(out_path)
    if not overwrite_input:
        try:
            check_not_input({"--out": out}, {"--image": image_path, "--ddf": ddf_path})
        except FileExistsError as err:
            raise FileExistsError(f"{err} (or pass --overwrite_input to replace it on purpose)") from None
    ddf, ddf_geometry = read_image(ddf_path)
    ndim = ddf.ndim - 1
    if ndim not in (2, 3) or ddf.shape[-1] != ndim:
        raise ValueError(
            f"--ddf {ddf_path}: expected a displacement field of shape (*spatial, ndim) with ndim = 2 or 3 "
            f"components, got shape {ddf.shape}"
        )
    image, _ = read_image(image_path)
    if image.ndim not in (ndim, ndim + 1):
        raise ValueError(
            f"--image {image_path}: shape {image.shape} does not fit the {ndim}-D DDF {ddf_path} {ddf.shape}: "
            f"expected {ndim} spatial axes and at most one channel axis"
        )

    from keras import ops

    from tfreg.ops.warp import warp

    warped = warp(ops.convert_to_tensor(image[None]), ops.convert_to_tensor(ddf[None]), interpolation=interpolation)
    warped = np.asarray(ops.convert_to_numpy(warped))[0]
    with atomic_output(out) as scratch:
        save_image(warped.astype(np.float32), scratch, ddf_geometry.with_ndim(ndim))
    return out


__all__ = ["warp_file", "output_path", "DEFAULT_OUT"]
