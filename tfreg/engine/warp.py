"""``tfreg_warp`` / ``deepreg_warp``: warp an image file with a DDF file.

The DDF is ``(*f, ndim)`` in voxels of the **moving grid** it was predicted on (ij(k) order, as
``tfreg_predict`` writes it). Output voxel ``p`` takes the moving grid's point ``q = p + ddf[p]``, with
linear interpolation and a zero boundary (DeepReg's ``Warping``, minus its coordinate-0 bug). The output
has the DDF's grid and geometry (the fixed image's); DeepReg wrote an identity affine. A 4-D image
``(*m, C)`` is warped channel by channel.

The moving grid is ``moving_grid`` if given. Otherwise it is the ``moving_image.nii.gz`` that
``tfreg_predict`` writes beside ``ddf.nii.gz``, when present. When the image to warp is on another grid,
for example the original moving file at its own resolution, ``q`` is mapped through physical space:
moving-grid voxel, then mm, then image voxel, using both files' geometry. Without a moving grid the DDF
counts the image's own voxels (DeepReg's behaviour).

The DDF file may instead be an ITK/ANTs displacement field (physical mm, LPS; docs/transforms.md and
:mod:`tfreg.data.transform_io`), recognised from its header (``ddf_units="auto"``) or named with
``ddf_units="physical"``. Then output voxel ``p`` (at the fixed point ``x``, the field's grid) takes the
image at the physical point ``x + d(x)``, located in the image through the image's own geometry, as
ITK's and ANTs' resamplers do; no moving grid is involved.
"""

from __future__ import annotations

import os
from typing import Optional

import numpy as np

from tfreg.data.image_io import read_image, save_image
from tfreg.data.transform_io import UNITS, read_transform, transform_units
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
    moving_grid: Optional[str] = None,
    ddf_units: str = "auto",
) -> str:
    """Warp ``image_path`` by ``ddf_path`` and write the result; returns the path written.

    Args:
        image_path: NIfTI (or any SimpleITK format) image, ``(*m)`` or ``(*m, C)``; ``*m`` 2-D or 3-D.
        ddf_path: DDF ``(*f, ndim)`` with ``ndim`` = the image's spatial rank, in voxels of the moving
            grid (DeepReg/tfreg_predict), or an ITK/ANTs displacement field in mm (see ``ddf_units``).
        out_path: ``.nii``/``.nii.gz`` file, or a folder (``<folder>/warped.nii.gz``).
        interpolation: ``linear`` or ``nearest`` (for label maps).
        moving_grid: an image on the grid whose voxels the DDF values count (``tfreg_predict``'s
            ``moving_image.nii.gz``); default that file beside ``ddf_path`` when it exists, else the image.
            Voxel DDFs only.
        ddf_units: ``"auto"`` (from the file's header: a NIfTI with the vector intent and 5 dimensions, or a
            non-NIfTI vector image, is physical; see :func:`tfreg.data.transform_io.transform_units`),
            ``"voxel"`` or ``"physical"``.
        overwrite_input: allow ``out_path`` to be the image or the DDF file (it is replaced by the result);
            otherwise that is refused. The output is always written atomically (scratch file, then rename),
            so an interrupted run never leaves a truncated file.

    Raises:
        FileNotFoundError: a missing input (named). FileExistsError: the output is an input and
        ``overwrite_input`` is False. ValueError: shapes that do not fit together, ``--moving_grid`` with
        a physical field.
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
    if ddf_units not in UNITS:
        raise ValueError(f"ddf_units must be one of {', '.join(UNITS)}, got {ddf_units!r}")
    units = transform_units(ddf_path) if ddf_units == "auto" else ddf_units
    image, image_geometry = read_image(image_path)
    if units == "physical":
        if moving_grid is not None:
            raise ValueError(
                f"--moving_grid {moving_grid} applies to voxel DDFs only; --ddf {ddf_path} is a physical (mm) "
                "displacement field, which locates the image through its own geometry"
            )
        # read_transform takes the image geometry's first ndim axes once it knows ndim from the field
        field = read_transform(ddf_path, moving_geometry=image_geometry, units="physical")
        ddf, ddf_geometry = field.ddf, field.geometry
    else:
        ddf, ddf_geometry = read_image(ddf_path)
    ndim = ddf.ndim - 1
    if ndim not in (2, 3) or ddf.shape[-1] != ndim:
        raise ValueError(
            f"--ddf {ddf_path}: expected a displacement field of shape (*spatial, ndim) with ndim = 2 or 3 "
            f"components, got shape {ddf.shape}"
        )
    if image.ndim not in (ndim, ndim + 1):
        raise ValueError(
            f"--image {image_path}: shape {image.shape} does not fit the {ndim}-D DDF {ddf_path} {ddf.shape}: "
            f"expected {ndim} spatial axes and at most one channel axis"
        )

    from keras import ops

    from tfreg.ops.warp import warp

    grid_path = None if units == "physical" else moving_grid or _predicted_moving_grid(ddf_path)
    if grid_path is not None:
        if not os.path.isfile(grid_path):
            raise FileNotFoundError(f"--moving_grid: file {grid_path} does not exist")
        ddf = image_voxel_ddf(ddf, grid_path, image_geometry.with_ndim(ndim))
    warped = warp(ops.convert_to_tensor(image[None]), ops.convert_to_tensor(ddf[None]), interpolation=interpolation)
    warped = np.asarray(ops.convert_to_numpy(warped))[0]
    with atomic_output(out) as scratch:
        save_image(warped.astype(np.float32), scratch, ddf_geometry.with_ndim(ndim))
    return out


def _predicted_moving_grid(ddf_path: str) -> Optional[str]:
    """``moving_image.nii.gz`` beside a DDF written by ``tfreg_predict`` (None when absent)."""
    candidate = os.path.join(os.path.dirname(os.path.abspath(ddf_path)), "moving_image.nii.gz")
    return candidate if os.path.isfile(candidate) else None


def image_voxel_ddf(ddf: np.ndarray, moving_grid_path: str, image_geometry) -> np.ndarray:
    """The DDF re-expressed in the image's voxels: ``q = p + ddf[p]`` (moving-grid voxels) -> mm -> image
    voxels ``v``, returned as ``v - p`` so that warping the image samples it at ``v``.

    Args:
        ddf: ``(*f, ndim)`` in moving-grid voxels.
        moving_grid_path: an image file on the moving grid (its header gives the geometry).
        image_geometry: the geometry of the image to warp (``ndim`` spatial axes).
    """
    from tfreg.data.image_io import read_image_info
    from tfreg.data.landmarks import index_to_physical, physical_to_index

    ndim = ddf.shape[-1]
    _, grid_geometry = read_image_info(moving_grid_path)
    grid_geometry = grid_geometry.with_ndim(ndim)
    if grid_geometry.allclose(image_geometry):
        return ddf  # the image is on the moving grid (or one with the same voxels): DeepReg's case
    points = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in ddf.shape[:-1]], indexing="ij"), -1)
    q = (points + ddf).reshape(-1, ndim)
    v = physical_to_index(index_to_physical(q, grid_geometry), image_geometry)
    return (v.reshape(ddf.shape) - points).astype(np.float32)


__all__ = ["warp_file", "output_path", "image_voxel_ddf", "DEFAULT_OUT"]
