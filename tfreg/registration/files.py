"""``tfreg_register`` on files: read a pair, optionally start from a trained model, optimise, write the
results and the transforms ITK, ANTs, 3D Slicer and SimpleITK read.

The moving image (and its label and mask) is first resampled onto the fixed image's grid through
physical space (identity transform, linear for images and labels, nearest for masks), so the optimised
DDF counts fixed-grid voxels. The output folder holds:

- ``warped_moving.nii.gz``: the moving image on the fixed grid, with the fixed image's geometry;
  ``warped_moving_label.nii.gz`` with labels (linear, soft values);
- ``moving_image.nii.gz``: the moving image resampled onto the fixed grid before registration (the grid
  whose voxels ``ddf.nii.gz`` counts, as ``tfreg_predict`` writes it, so that ``tfreg_warp`` maps any
  image through physical space);
- the transform in each requested format (``export``): ``ddf.nii.gz`` (DeepReg's voxel DDF),
  ``transform_itk.nii.gz`` (an ITK displacement field in physical space, LPS mm, fixed geometry) and
  ``transform_ants_Warp.nii.gz`` (the ANTs warp file convention), with the inverses on request
  (``inverse_ddf.nii.gz``, ``inverse_transform_itk.nii.gz``, ``transform_ants_InverseWarp.nii.gz``);
- ``registration.json``: the settings, the loss per stage and iteration, seconds, folding and the inverse's
  residual.

Everything is written into a scratch folder that is renamed into place at the end: a failed or
interrupted run leaves nothing under the output name, and ``overwrite`` replaces only a folder that
``tfreg_register`` wrote.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import shutil
import tempfile
from typing import Dict, Optional, Sequence

import numpy as np

from tfreg.registration.optimise import OptimisationSettings, RegistrationResult, register_arrays

logger = logging.getLogger(__name__)

TOOL = "tfreg_register"
#: Transform formats ``export`` may name: DeepReg's voxel DDF, ITK's and ANTs' physical displacement fields.
EXPORT_FORMATS = ("deepreg", "itk", "ants")
#: File names in the output folder: format -> (forward, inverse).
EXPORT_NAMES = {
    "deepreg": ("ddf.nii.gz", "inverse_ddf.nii.gz"),
    "itk": ("transform_itk.nii.gz", "inverse_transform_itk.nii.gz"),
    "ants": ("transform_ants_Warp.nii.gz", "transform_ants_InverseWarp.nii.gz"),
}


def _read(path: str, what: str):
    """``(array, geometry)`` of an image file; errors name ``what`` (the option) and the file."""
    from tfreg.data.image_io import read_image

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{what}: file {path} does not exist")
    try:
        return read_image(path)
    except ValueError as err:
        raise ValueError(f"{what} {path}: {err}") from None


def _check_unit_range(array: np.ndarray, what: str, path: str) -> None:
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"{what} {path}: values must lie in [0, 1] (binary or one-hot masks/labels), got "
            f"[{array.min()}, {array.max()}]"
        )


def _onto_fixed(path: str, what: str, fixed_path: str, fixed_geometry, fixed_shape, interpolation: str) -> np.ndarray:
    """The file ``path`` resampled onto the fixed image's grid through physical space (identity transform)."""
    import SimpleITK as sitk

    from tfreg.data.image_io import _array_from_sitk
    from tfreg.data.resampling import resample_onto
    from tfreg.data.sitk_io_lock import SITK_IO_LOCK

    ndim = fixed_geometry.ndim
    array, geometry = _read(path, what)
    if geometry.ndim != ndim:
        raise ValueError(
            f"{what} {path} is {geometry.ndim}-D but the fixed image {fixed_path} is {ndim}-D: images of different "
            "dimensionality cannot be registered"
        )
    if geometry.allclose(fixed_geometry) and array.shape[:ndim] == tuple(fixed_shape):
        return array
    with SITK_IO_LOCK:
        reference = sitk.ReadImage(fixed_path)
    channels = [array] if array.ndim == ndim else [array[..., c] for c in range(array.shape[-1])]
    out = []
    for channel in channels:
        image = sitk.GetImageFromArray(np.ascontiguousarray(channel.T.astype(np.float32)))
        geometry.apply_to_sitk(image)
        resampled = resample_onto(image, reference, None, interpolation)
        out.append(_array_from_sitk(resampled).astype(np.float32))
    return out[0] if array.ndim == ndim else np.stack(out, -1)


def register_files(
    fixed: str,
    moving: str,
    out: str,
    settings: Optional[OptimisationSettings] = None,
    fixed_label: Optional[str] = None,
    moving_label: Optional[str] = None,
    fixed_mask: Optional[str] = None,
    moving_mask: Optional[str] = None,
    model: Optional[str] = None,
    model_config: Optional[str] = None,
    model_image_size: Optional[Sequence[int]] = None,
    export: Sequence[str] = ("deepreg", "itk"),
    inverse: bool = False,
    overwrite: bool = False,
) -> Dict[str, str]:
    """Register the files ``moving`` to ``fixed`` and write the results into the folder ``out``.

    Args:
        fixed, moving: image files (NIfTI or any SimpleITK format), 2-D or 3-D, one channel.
        out: output folder (module docstring for its content).
        settings: :class:`~tfreg.registration.optimise.OptimisationSettings`.
        fixed_label, moving_label: label files (binary or one-hot ``(*S, L)``), for label losses.
        fixed_mask, moving_mask: mask files (values in [0, 1]) restricting the image similarity.
        model: a trained model to start from: ``.../save/ckpt-N`` or a ``.keras`` file (its DDF becomes the
            prealignment the optimisation refines); model_config, model_image_size: see
            :func:`tfreg.engine.pair_prediction.load_model`.
        export: transform formats to write, from :data:`EXPORT_FORMATS`.
        inverse: also write the inverse of each exported transform (fixed-point inversion).
        overwrite: replace an existing ``out`` written by ``tfreg_register``.

    Returns:
        ``{name: path}`` of the files written (paths inside ``out``).

    Raises:
        FileNotFoundError, FileExistsError, ValueError: before any work, naming the option and file.
    """
    from tfreg.file_safety import check_folder_holds_no_input, check_replaceable, replace_folder, write_marker

    settings = settings or OptimisationSettings()
    export = tuple(export)
    unknown = [f for f in export if f not in EXPORT_FORMATS]
    if unknown or not export:
        raise ValueError(f"--export must name one or more of {list(EXPORT_FORMATS)}, got {list(export)}")
    inputs = {
        "--fixed": fixed,
        "--moving": moving,
        "--fixed_label": fixed_label,
        "--moving_label": moving_label,
        "--fixed_mask": fixed_mask,
        "--moving_mask": moving_mask,
    }
    for option, path in inputs.items():
        if path is not None and not os.path.isfile(path):
            raise FileNotFoundError(f"{option}: file {path} does not exist")
    if (fixed_label is None) != (moving_label is None):
        raise ValueError("give both --fixed_label and --moving_label, or neither")
    out = os.path.abspath(os.path.expanduser(out))
    check_folder_holds_no_input(out, {k: v for k, v in inputs.items() if v is not None})
    if os.path.lexists(out):
        if not overwrite:
            raise FileExistsError(f"output folder {out} already exists: choose another --out, or pass --overwrite")
        check_replaceable(out, TOOL)

    fixed_array, fixed_geometry = _read(fixed, "--fixed")
    ndim = fixed_geometry.ndim
    if fixed_array.ndim != ndim:
        raise ValueError(f"--fixed {fixed}: expected a single-channel {ndim}-D image, got shape {fixed_array.shape}")

    def onto_fixed(path, what, interpolation):
        return (
            None if path is None else _onto_fixed(path, what, fixed, fixed_geometry, fixed_array.shape, interpolation)
        )

    moving_array = onto_fixed(moving, "--moving", "linear")
    if moving_array.ndim != ndim:
        raise ValueError(f"--moving {moving}: expected a single-channel {ndim}-D image, got shape {moving_array.shape}")
    labels = [onto_fixed(fixed_label, "--fixed_label", "linear"), onto_fixed(moving_label, "--moving_label", "linear")]
    masks = [onto_fixed(fixed_mask, "--fixed_mask", "nearest"), onto_fixed(moving_mask, "--moving_mask", "nearest")]
    for array, option, path in zip(
        labels + masks,
        ("--fixed_label", "--moving_label", "--fixed_mask", "--moving_mask"),
        (fixed_label, moving_label, fixed_mask, moving_mask),
    ):
        if array is not None:
            _check_unit_range(array, option, path)

    prealignment = None
    if model is not None:
        from tfreg.engine.pair_prediction import predict_pair_ddf

        prealignment = predict_pair_ddf(model, fixed_array, moving_array, model_config, model_image_size)

    result = register_arrays(
        fixed_array,
        moving_array,
        settings,
        fixed_label=labels[0],
        moving_label=labels[1],
        fixed_mask=masks[0],
        moving_mask=masks[1],
        prealignment=prealignment,
    )

    parent = os.path.dirname(out)
    os.makedirs(parent, exist_ok=True)
    scratch = tempfile.mkdtemp(prefix=f".tfreg-partial-{os.path.basename(out)}-", dir=parent)
    try:
        written = _write_outputs(scratch, result, moving_array, fixed_geometry, export, inverse, settings)
        write_marker(scratch, TOOL)
        replace_folder(scratch, out)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return {name: os.path.join(out, os.path.basename(path)) for name, path in written.items()}


def _write_outputs(
    folder: str,
    result: RegistrationResult,
    moving_array: np.ndarray,
    geometry,
    export: Sequence[str],
    inverse: bool,
    settings: OptimisationSettings,
) -> Dict[str, str]:
    from keras import ops

    from tfreg.data.image_io import save_image
    from tfreg.data.transform_io import write_transform

    written = {}

    def save(name, array):
        path = os.path.join(folder, name)
        save_image(np.asarray(array, np.float32), path, geometry)
        written[name] = path

    save("warped_moving.nii.gz", result.warped)
    save("moving_image.nii.gz", moving_array)
    if result.warped_label is not None:
        save("warped_moving_label.nii.gz", result.warped_label)
    summary = {
        "tool": TOOL,
        "settings": dataclasses.asdict(settings),
        "seconds": result.seconds,
        "folding_fraction": result.folding_fraction,
        "stages": [{k: (list(v) if isinstance(v, tuple) else v) for k, v in stage.items()} for stage in result.history],
    }
    inverse_ddf = None
    if inverse:
        from tfreg.ops.inverse import invert_ddf

        inv, residual = invert_ddf(ops.convert_to_tensor(result.ddf[None]))
        inverse_ddf = np.asarray(ops.convert_to_numpy(inv))[0]
        summary["inverse_residual_voxels"] = {
            k: float(np.asarray(ops.convert_to_numpy(v))[0]) for k, v in residual.items()
        }
    for fmt in export:
        forward_name, inverse_name = EXPORT_NAMES[fmt]
        path = os.path.join(folder, forward_name)
        write_transform(path, result.ddf, geometry, fmt)
        written[forward_name] = path
        if inverse_ddf is not None:
            path = os.path.join(folder, inverse_name)
            write_transform(path, inverse_ddf, geometry, fmt)
            written[inverse_name] = path
    path = os.path.join(folder, "registration.json")
    with open(path, "w") as f:
        json.dump(summary, f, indent=1, default=float)
    written["registration.json"] = path
    return written


__all__ = ["register_files", "EXPORT_FORMATS", "EXPORT_NAMES", "TOOL"]
