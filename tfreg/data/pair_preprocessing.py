"""Preprocessing one moving/fixed pair for registration training (the steps of ``tfreg_preprocess``).

The order follows the pipeline suggested for van Ulsen's thesis ("Multi-modal deep learning based 3D
image registration for osseous anatomies": resample, rigid pre-alignment, crop, rescale):

1. read both images and their integer label maps (0 background, structures as integer values);
2. resample images (Lanczos windowed sinc) and labels (nearest neighbour) to ``spacing``;
3. pre-align moving to fixed: rigidly on binary masks of ``align_labels`` or on the images (Mattes MI), or
   not; with ``align_transform`` ``affine`` an affine Mattes MI stage instead, with ``rigid_affine`` one after
   the rigid stage (:mod:`tfreg.data.affine_alignment`);
4. resample the moving image (Lanczos) and labels (nearest) onto the fixed grid through that transform;
5. crop both to ``crop_size`` voxels centred on the centroid of ``crop_labels`` in the fixed label map
   (or the grid centre), zero-padding where the field of view is smaller; the geometry follows the crop;
   with ``shape``, steps 4 and 5 become one resampling of all four images onto the grid of ``shape`` voxels
   over the (cropped) fixed grid's extent (:func:`tfreg.data.resampling.grid_of_shape`), so each is
   interpolated once;
6. map each image's ``percentiles`` to [0, 1], clipped;
7. renumber ``keep_labels`` to 1..K, everything else to 0.

Voxels outside a field of view (of the moving image once on the fixed grid, of either image beyond the
crop padding) are NaN until step 6: they do not count in the percentiles and are 0 in the output.

:func:`check_pair` reads the headers and label voxels and raises every input error before any work;
:func:`preprocess_pair` does the work and returns arrays plus a JSON-ready record. Arrays are
``(i, j[, k])`` (tfreg's order, see :mod:`tfreg.data.image_io`), 2-D or 3-D.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Dict, Optional, Tuple

import numpy as np
import SimpleITK as sitk

from tfreg.data.affine_alignment import align_affine_on_images
from tfreg.data.crop_pad import CropBox, centred_box, check_crop_size, crop_or_pad, label_centroid
from tfreg.data.errors import DataError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import read_image, read_image_info
from tfreg.data.intensity_rescale import percentile_rescale
from tfreg.data.label_renumbering import renumber_labels
from tfreg.data.pair_sources import PairFiles
from tfreg.data.preprocess_memory import MemoryEstimate, estimate_memory, physical_memory_gb
from tfreg.data.preprocess_options import PreprocessOptions
from tfreg.data.resampling import check_spacing, grid_of_shape, resample_onto, resample_to_spacing, resampled_size
from tfreg.data.rigid_alignment import RigidResult, align_on_images, align_on_labels, identity_result

#: tolerance (mm, and unitless for direction cosines) of the image/label geometry comparison: NIfTI
#: headers store float32 values
GEOMETRY_ATOL = 1e-4
#: fewest voxels along an axis that the rigid alignment's recursive Gaussian smoothing accepts (ITK)
MIN_ALIGNMENT_VOXELS = 4
#: output keys, in DeepReg's paired folder names
OUTPUT_FOLDERS = {
    "moving_image": "moving_images",
    "fixed_image": "fixed_images",
    "moving_label": "moving_labels",
    "fixed_label": "fixed_labels",
}


@dataclass(frozen=True)
class PairPlan:
    """What :func:`check_pair` found: the pair's dimension and its memory estimate."""

    pair: PairFiles
    ndim: int
    memory: MemoryEstimate


@dataclass
class PreprocessedPair:
    """The result of :func:`preprocess_pair`.

    Attributes:
        arrays: ``moving_image``, ``fixed_image`` (float32) and, with labels, ``moving_label``,
            ``fixed_label`` (unsigned integers), all of one shape ``(i, j[, k])`` on ``geometry``.
        geometry: the output grid (the fixed grid at the chosen spacing, cropped).
        rigid: the pre-alignment transform (fixed -> moving physical points).
        record: JSON-ready description of every parameter and intermediate grid.
    """

    arrays: Dict[str, np.ndarray]
    geometry: ImageGeometry
    rigid: RigidResult
    record: Dict[str, object]


# ---------------------------------------------------------------------------------------------- checks
def _spatial_info(path: str, role: str) -> Tuple[Tuple[int, ...], ImageGeometry]:
    """Shape and geometry of a scalar 2-D or 3-D file, else DataError naming it."""
    shape, geometry = read_image_info(path)
    if len(shape) != geometry.ndim or geometry.ndim not in (2, 3):
        raise DataError(
            f"{role} file {path} has shape {tuple(shape)}: expected one 2-D or 3-D scalar image (no channel or "
            "component axis; a label file must be one integer label map, not one-hot channels)"
        )
    return tuple(shape), geometry


def _geometry_difference(a: Tuple[tuple, ImageGeometry], b: Tuple[tuple, ImageGeometry]) -> Optional[str]:
    """Which of size, spacing, origin, direction differ between two ``(shape, geometry)``; None if none."""
    (shape_a, geo_a), (shape_b, geo_b) = a, b
    if shape_a != shape_b:
        return f"size {shape_a} vs {shape_b}"
    for key in ("spacing", "origin", "direction"):
        va, vb = np.asarray(getattr(geo_a, key)), np.asarray(getattr(geo_b, key))
        if va.shape != vb.shape or not np.allclose(va, vb, atol=GEOMETRY_ATOL):
            return f"{key} {va.ravel().tolist()} vs {vb.ravel().tolist()}"
    return None


def read_label_map(path: str) -> Tuple[np.ndarray, ImageGeometry]:
    """An integer label map as int64 ``(i, j[, k])`` plus its geometry.

    Raises:
        DataError: naming ``path`` when voxels are not whole numbers or are negative.
    """
    array, geometry = read_image(path, dtype=None)
    if not np.issubdtype(array.dtype, np.integer):
        fractional = np.count_nonzero(array != np.round(array))
        if fractional:
            raise DataError(
                f"label file {path} has {fractional} voxel(s) that are not whole numbers: expected an integer label "
                "map (0 background, one integer value per structure)"
            )
    array = array.astype(np.int64)
    if array.size and array.min() < 0:
        raise DataError(f"label file {path} has negative values (min {array.min()}): expected 0 for the background")
    return array, geometry


def _check_values_present(values, present: np.ndarray, path: str, purpose: str) -> None:
    missing = [v for v in values if v not in present]
    if missing:
        shown = present[present > 0].tolist()
        raise DataError(
            f"label file {path} has no voxel of label value(s) {missing} needed by {purpose}; the labels it holds "
            f"are {shown[:20]}{' ...' if len(shown) > 20 else ''}"
        )


def check_pair(pair: PairFiles, options: PreprocessOptions) -> PairPlan:
    """Every check of one pair that needs no resampling: raises before any work or output.

    Checks: each file is one scalar 2-D or 3-D image; moving and fixed have the same dimension; each label
    file has its image's geometry (size, spacing, origin, direction); labels are given when the options
    need them; label maps hold whole numbers >= 0; ``align_labels`` are present in both label maps and
    ``crop_labels`` in the fixed one; ``spacing``, ``crop_size`` and ``shape`` have one value per axis; the memory
    estimate stays under ``max_memory_gb``.

    Raises:
        DataError: naming the file(s), the label value or what was expected.
        ValueError: an option whose length does not fit the images' dimension, or the memory limit.
    """
    if options.needs_labels and not pair.has_labels:
        raise DataError(
            f"pair {pair.pair_id} has no label files, but the options need them (align={options.align!r}, "
            f"crop_labels={options.crop_labels}, keep_labels={options.keep_labels}): give moving_labels/ and "
            "fixed_labels/ folders, or the label columns of the CSV"
        )
    info = {role: _spatial_info(path, role) for role, path in pair.files().items()}
    ndim = info["moving_image"][1].ndim
    if info["fixed_image"][1].ndim != ndim:
        raise DataError(
            f"pair {pair.pair_id}: moving image {pair.moving_image} is {ndim}-D but fixed image {pair.fixed_image} "
            f"is {info['fixed_image'][1].ndim}-D"
        )
    for side in ("moving", "fixed"):
        label_role = f"{side}_label"
        if label_role in info:
            difference = _geometry_difference(info[f"{side}_image"], info[label_role])
            if difference:
                raise DataError(
                    f"pair {pair.pair_id}: {side} image {getattr(pair, side + '_image')} and its label "
                    f"{getattr(pair, label_role)} differ in geometry ({difference}): a label map must be on its "
                    "image's grid (same size, spacing, origin and direction)"
                )
    spacing = check_spacing(options.spacing, ndim, "spacing") if options.spacing is not None else None
    crop_size = check_crop_size(options.crop_size, ndim) if options.crop_size is not None else None
    # the output's voxels: the crop's, or the --shape grid's when it is given
    output_size = check_crop_size(options.shape, ndim, "shape") if options.shape is not None else crop_size
    if pair.has_labels:
        present = {}
        for side in ("moving", "fixed"):
            path = getattr(pair, f"{side}_label")
            present[side] = np.unique(read_label_map(path)[0])
            if options.align == "label":
                _check_values_present(options.align_labels, present[side], path, "the rigid alignment (align_labels)")
        if options.crop_labels is not None:
            _check_values_present(options.crop_labels, present["fixed"], pair.fixed_label, "the crop (crop_labels)")
    resampled = {}
    for side in ("moving", "fixed"):
        shape, geometry = info[f"{side}_image"]
        resampled[side] = resampled_size(shape, geometry.spacing, spacing) if spacing else shape
    if options.align != "none":
        for side in ("moving", "fixed"):
            if min(resampled[side]) < MIN_ALIGNMENT_VOXELS:
                raise DataError(
                    f"pair {pair.pair_id}: {side} image {getattr(pair, side + '_image')} has {tuple(resampled[side])} "
                    f"voxels at the chosen spacing: the rigid alignment's smoothing needs at least "
                    f"{MIN_ALIGNMENT_VOXELS} along every axis (a 2-D slice stored as a 3-D file (x, y, 1) should be "
                    "saved as a 2-D image), or use --align none"
                )
    memory = estimate_memory(
        info["moving_image"][0], info["fixed_image"][0], resampled["moving"], resampled["fixed"], output_size
    )
    limit = options.max_memory_gb if options.max_memory_gb is not None else physical_memory_gb()
    if memory.gib > limit:
        raise ValueError(
            f"pair {pair.pair_id} would need about {memory.gib:.2f} GiB ({memory.bytes} bytes) to preprocess at "
            f"spacing {list(spacing) if spacing else 'as read'}: {memory.describe()}; that is above max_memory_gb="
            f"{limit:.2f}. Choose a coarser --spacing or a smaller --crop_size, or raise --max_memory_gb"
        )
    return PairPlan(pair=pair, ndim=ndim, memory=memory)


# ---------------------------------------------------------------------------------------------- work
def to_sitk(array: np.ndarray, geometry: ImageGeometry) -> sitk.Image:
    """A SimpleITK image of an ``(i, j[, k])`` array with ``geometry``."""
    image = sitk.GetImageFromArray(np.ascontiguousarray(np.transpose(array)))
    geometry.apply_to_sitk(image)
    return image


def from_sitk(image: sitk.Image) -> np.ndarray:
    """The ``(i, j[, k])`` array of a scalar SimpleITK image."""
    return np.ascontiguousarray(np.transpose(sitk.GetArrayFromImage(image)))


def _grid_record(image: sitk.Image) -> Dict[str, object]:
    return {"size": list(image.GetSize()), **ImageGeometry.from_sitk(image).to_dict()}


def _label_dtype(arrays) -> np.dtype:
    """The smallest unsigned type holding every value of ``arrays``."""
    top = max((int(a.max()) if a.size else 0) for a in arrays)
    return np.dtype(np.uint8 if top < 2**8 else np.uint16 if top < 2**16 else np.uint32)


def _align(pair: PairFiles, options: PreprocessOptions, images: Dict[str, sitk.Image], labels: Dict[str, sitk.Image]):
    """Step 3: the transform (fixed -> moving) of ``options.align`` and ``options.align_transform`` on the
    resampled images/labels: rigid, affine, or affine started from the rigid stage (recorded in ``stages``)."""
    if options.align == "label":
        for side in ("moving", "fixed"):
            held = np.unique(sitk.GetArrayViewFromImage(labels[side]))
            missing = [v for v in options.align_labels if v not in held]
            if missing:
                raise DataError(
                    f"label file {getattr(pair, side + '_label')} loses label value(s) {missing} (align_labels) when "
                    f"resampled to spacing {list(options.spacing or [])} mm: the structure is smaller than a voxel; "
                    "choose a finer --spacing"
                )
        rigid = align_on_labels(labels["fixed"], labels["moving"], options.align_labels, options.registration)
    elif options.align == "image" and options.align_transform != "affine":
        rigid = align_on_images(images["fixed"], images["moving"], options.registration)
    elif options.align == "image":  # affine only, from the centred initialiser
        return align_affine_on_images(images["fixed"], images["moving"], options.registration)
    else:
        return identity_result(images["fixed"].GetDimension())
    if options.align_transform == "rigid_affine":
        affine = align_affine_on_images(images["fixed"], images["moving"], options.registration, rigid.transform)
        return dataclasses.replace(affine, stages=(rigid.to_dict(),))
    return rigid


def _onto_fixed(pair, options, images, labels, rigid, record):
    """Steps 4 and 5: the moving pair on the fixed grid through ``rigid``, then the crop; ``(arrays, grid)``."""
    # 4. the moving pair on the fixed grid; NaN marks the voxels the moving image does not cover
    moving_on_fixed = resample_onto(images["moving"], images["fixed"], rigid.transform, "lanczos", float("nan"))
    arrays = {"moving_image": from_sitk(moving_on_fixed), "fixed_image": from_sitk(images["fixed"])}
    if labels:
        moving_label = resample_onto(labels["moving"], labels["fixed"], rigid.transform, "nearest", 0)
        arrays["moving_label"] = from_sitk(moving_label)
        arrays["fixed_label"] = from_sitk(labels["fixed"])
    grid = ImageGeometry.from_sitk(images["fixed"])

    # 5. crop (zero-padding: NaN for the images until the rescaling, 0 for the labels)
    if options.crop_size is not None:
        centre = None
        if options.crop_labels is not None:
            centre = label_centroid(arrays["fixed_label"], options.crop_labels)
            if centre is None:
                raise DataError(
                    f"label file {pair.fixed_label} loses the crop_labels {list(options.crop_labels)} when resampled "
                    f"to spacing {list(options.spacing or [])} mm; choose a finer --spacing"
                )
        shape = arrays["fixed_image"].shape
        box: Optional[CropBox] = centred_box(shape, check_crop_size(options.crop_size, grid.ndim), centre)
        record["crop"] = {**box.to_dict(shape, grid), "centred_on": list(options.crop_labels or []) or "grid centre"}
        arrays = {key: crop_or_pad(array, box, np.nan if key.endswith("image") else 0) for key, array in arrays.items()}
        grid = box.geometry(grid)
    else:
        record["crop"] = None

    return arrays, grid


def _onto_shape(pair, options, images, labels, rigid, record):
    """Steps 4 and 5 with ``shape``: the crop box (if any) on the fixed grid, then all four images resampled once
    onto the grid of ``shape`` voxels over that box's extent (moving ones through ``rigid``); ``(arrays, grid)``."""
    fixed_grid = ImageGeometry.from_sitk(images["fixed"])
    size = tuple(images["fixed"].GetSize())
    record["crop"] = None
    if options.crop_size is not None:
        centre = None
        if options.crop_labels is not None:
            centre = label_centroid(from_sitk(labels["fixed"]), options.crop_labels)
            if centre is None:
                raise DataError(
                    f"label file {pair.fixed_label} loses the crop_labels {list(options.crop_labels)} when resampled "
                    f"to spacing {list(options.spacing or [])} mm; choose a finer --spacing"
                )
        box = centred_box(size, check_crop_size(options.crop_size, fixed_grid.ndim), centre)
        record["crop"] = {
            **box.to_dict(size, fixed_grid),
            "centred_on": list(options.crop_labels or []) or "grid centre",
        }
        fixed_grid, size = box.geometry(fixed_grid), box.size
    shape = check_crop_size(options.shape, fixed_grid.ndim, "shape")
    grid = grid_of_shape(size, fixed_grid, shape)
    reference = to_sitk(np.zeros(shape, np.float32), grid)
    record["shape"] = {"size": list(shape), "from_size": list(size), "from_spacing": list(fixed_grid.spacing)}
    nan = float("nan")  # marks the voxels an image does not cover, as in the crop's padding
    arrays = {
        "moving_image": from_sitk(resample_onto(images["moving"], reference, rigid.transform, "lanczos", nan)),
        "fixed_image": from_sitk(resample_onto(images["fixed"], reference, None, "lanczos", nan)),
    }
    if labels:
        arrays["moving_label"] = from_sitk(resample_onto(labels["moving"], reference, rigid.transform, "nearest", 0))
        arrays["fixed_label"] = from_sitk(resample_onto(labels["fixed"], reference, None, "nearest", 0))
    return arrays, grid


def preprocess_pair(pair: PairFiles, options: PreprocessOptions) -> PreprocessedPair:
    """Run steps 1-7 (module docstring) on one pair; :func:`check_pair` should have passed first.

    Raises:
        DataError: naming the label file when an alignment or crop label vanishes at the chosen spacing, or the
            pair's files when SimpleITK fails during the alignment.
    """
    moving_array, moving_geometry = read_image(pair.moving_image)
    fixed_array, fixed_geometry = read_image(pair.fixed_image)
    images = {"moving": to_sitk(moving_array, moving_geometry), "fixed": to_sitk(fixed_array, fixed_geometry)}
    labels = {}
    if pair.has_labels:
        for side in ("moving", "fixed"):
            array, geometry = read_label_map(getattr(pair, f"{side}_label"))
            # int32 is enough for label values and is a pixel type every SimpleITK filter takes
            labels[side] = to_sitk(array.astype(np.int32), geometry)
    record: Dict[str, object] = {
        "pair_id": pair.pair_id,
        "inputs": {role: path for role, path in pair.files().items()},
        "input_grids": {side: _grid_record(images[side]) for side in images},
    }

    # 2. a common spacing
    if options.spacing is not None:
        spacing = check_spacing(options.spacing, images["fixed"].GetDimension())
        images = {side: resample_to_spacing(image, spacing, "lanczos") for side, image in images.items()}
        labels = {side: resample_to_spacing(label, spacing, "nearest") for side, label in labels.items()}
    record["resampled_grids"] = {side: _grid_record(images[side]) for side in images}

    # 3. rigid pre-alignment
    try:
        rigid = _align(pair, options, images, labels)
    except RuntimeError as err:  # SimpleITK's errors: name the pair's files
        message = [line.strip() for line in str(err).splitlines() if line.strip()][-1:]
        raise DataError(
            f"pair {pair.pair_id}: the {options.align_transform} alignment ({options.align}) of {pair.moving_image} to "
            f"{pair.fixed_image} "
            f"failed: {message[0] if message else err}"
        ) from err
    record["rigid"] = rigid.to_dict()

    if options.shape is not None:
        arrays, grid = _onto_shape(pair, options, images, labels, rigid, record)
    else:
        arrays, grid = _onto_fixed(pair, options, images, labels, rigid, record)

    # 6. intensities
    intensity = {}
    for key in ("moving_image", "fixed_image"):
        array = arrays[key]
        if options.percentiles is not None:
            arrays[key], low, high = percentile_rescale(array, options.percentiles)
            intensity[key] = {"percentiles": list(options.percentiles), "values": [low, high]}
        else:
            arrays[key] = np.where(np.isfinite(array), array, 0).astype(np.float32)
        intensity[key] = {**intensity.get(key, {}), "outside_field_of_view_voxels": int(np.isnan(array).sum())}
    record["intensity"] = intensity

    # 7. labels
    if labels:
        if options.keep_labels is not None:
            for key in ("moving_label", "fixed_label"):
                arrays[key] = renumber_labels(arrays[key], options.keep_labels)
            record["keep_labels"] = {str(old): new for new, old in enumerate(options.keep_labels, start=1)}
        dtype = _label_dtype([arrays["moving_label"], arrays["fixed_label"]])
        for key in ("moving_label", "fixed_label"):
            arrays[key] = arrays[key].astype(dtype)
        record["output_label_values"] = {
            key: [int(v) for v in np.unique(arrays[key]) if v] for key in ("moving_label", "fixed_label")
        }
    record["output_grid"] = {"size": list(arrays["fixed_image"].shape), **grid.to_dict()}
    return PreprocessedPair(arrays=arrays, geometry=grid, rigid=rigid, record=record)


__all__ = [
    "GEOMETRY_ATOL",
    "OUTPUT_FOLDERS",
    "PairPlan",
    "PreprocessedPair",
    "check_pair",
    "read_label_map",
    "to_sitk",
    "from_sitk",
    "preprocess_pair",
]
