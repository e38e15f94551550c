"""Shared steps of the chest X-ray converters (``jsrt.py``, ``montgomery.py``, ``shenzhen.py``).

The three converters write the 2-D data of He, He and Cao (2022), "Dense deformation network with
deformation field self-attention" (the chest X-ray set-up of AC-RegNet, Mansilla et al.): every image and
its binary lung mask (left and right lung merged, nothing else) resized to square grids, in DeepReg's
unpaired layout, one tree per size::

    OUTPUT/<size>/{train,test}/images/<case>.nii.gz   float32 (size, size) grey in [0, 1]
    OUTPUT/<size>/{train,test}/labels/<case>.nii.gz   uint8 (size, size) lung mask (0 / 1)
    OUTPUT/conversion.json, OUTPUT/checksums.sha256   options, split (and unused cases), notes; SHA-256 manifest

The paper trains at 64 x 64 and tests at 256 x 256 (``sizes`` default ``(64, 256)``). Arrays are tfreg's
``(i, j)`` order: axis 0 runs along the picture's columns (x, left to right as displayed), axis 1 along
its rows (y, top to bottom); the files open upright in ITK-SNAP / 3D Slicer.

Steps and choices (ours; the paper gives none):

- **grey**: an RGB(A) picture (some Shenzhen files are saved as RGB) becomes ITU-R BT.601 luma,
  ``0.299 R + 0.587 G + 0.114 B`` (alpha ignored); the converted cases are listed in ``conversion.json``
  (``grey_from_rgb``) and printed. tfreg's data loaders refuse 3-/4-channel 2-D images.
- **intensity**: min-max to [0, 1] per image, before resizing, so the 64 and 256 versions of a case have
  one scale (the SSIM loss' constants assume a range of 1).
- **images**: resized with SimpleITK: a Gaussian anti-aliasing filter of ``sigma = (f - 1) / 2`` source
  pixels along an axis shrunk by ``f > 1`` (``RecursiveGaussian``; scikit-image's default), then linear
  interpolation at the output pixel centres. Linear sampling alone would take 4 of every 32 x 32 JSRT
  pixels at 64 x 64 and alias the rib edges.
- **masks**: area-then-threshold: the exact fraction of each output pixel covered by mask pixels
  (separable overlap weights, any size ratio, up or down), kept where it is >= 0.5. Nearest-neighbour
  sampling would keep one source pixel in 16 x 16 (JSRT masks at 64) and make the contour jagged.
- **geometry**: the output grid covers the source picture's field of view: spacing ``W * s / size`` (x) and
  ``H * s / size`` (y) mm for a ``W x H`` picture of pixel spacing ``s`` mm, origin at the first output
  pixel's centre in a frame whose origin is the first source pixel's centre, identity direction. A
  non-square picture (Montgomery's 4020 x 4892) is squeezed to a square grid with anisotropic spacing.
- **split**: ``(train, test)`` case counts drawn at random with ``seed``
  (:func:`data_scripts.conversion.seeded_split`, groups ``train, test, unused``); when the source holds more
  cases than the counts add up to, the rest are listed as ``unused`` in ``conversion.json``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Dict, List, Mapping, Sequence, Tuple

import numpy as np
import SimpleITK as sitk

from data_scripts.conversion import (
    PlannedFile,
    add_split_arguments,
    check_output_folder,
    seeded_split,
    split_record,
    write_tree,
)
from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import save_image

#: ITU-R BT.601 luma weights of R, G, B.
LUMA_BT601 = (0.299, 0.587, 0.114)
#: The paper's training and test sizes.
DEFAULT_SIZES = (64, 256)
#: The groups of the split: the written splits, then the cases left out.
SPLIT_GROUPS = ("train", "test", "unused")
#: A mask is kept at half coverage of an output pixel (area-then-threshold).
MASK_THRESHOLD = 0.5
#: Written to conversion.json: how each kind of file was resized.
RESAMPLING = {
    "images": "SimpleITK RecursiveGaussian anti-aliasing, sigma = (f - 1) / 2 source pixels per axis shrunk by "
    "f > 1, then linear interpolation at the output pixel centres",
    "labels": "area fraction of each output pixel covered by the mask, >= 0.5",
}


@dataclass(frozen=True)
class Radiograph:
    """One case of a chest X-ray release.

    Attributes:
        case: the output ID (the published file name without its suffix, e.g. ``MCUCXR_0001_0``).
        image: the picture's path.
        masks: the lung mask files merged into the label (union), e.g. the left and the right lung.
        spacing: the source picture's pixel spacing, mm (square pixels).
    """

    case: str
    image: str
    masks: Tuple[str, ...]
    spacing: float


# ------------------------------------------------------------------------------------------ pictures
def grey(picture: np.ndarray, source: str) -> np.ndarray:
    """A ``(rows, cols)`` grey picture from ``(rows, cols)`` or ``(rows, cols, c)``, float64.

    ``c`` = 1 or 2 (grey, grey + alpha): the grey channel; ``c`` = 3 or 4 (RGB, RGBA): ITU-R BT.601 luma
    ``0.299 R + 0.587 G + 0.114 B``, alpha ignored.

    Raises:
        DataError: naming ``source`` for other shapes.
    """
    picture = np.asarray(picture, dtype=np.float64)
    if picture.ndim == 2:
        return picture
    if picture.ndim == 3 and picture.shape[2] in (1, 2):
        return picture[..., 0]
    if picture.ndim == 3 and picture.shape[2] in (3, 4):
        return picture[..., :3] @ np.asarray(LUMA_BT601)
    raise DataError(f"{source}: expected a 2-D grey or RGB(A) picture, found an array of shape {picture.shape}")


def picture_info(path: str, what: str) -> Tuple[Tuple[int, int], int]:
    """``((rows, cols), channels)`` of a PNG (any file SimpleITK reads) from its header.

    Raises:
        DataError: naming the file, when it is missing, unreadable or not 2-D.
    """
    if not os.path.isfile(path):
        raise DataError(f"missing {what}: expected the file {path}")
    reader = sitk.ImageFileReader()
    reader.SetFileName(path)
    try:
        reader.ReadImageInformation()
    except RuntimeError as err:
        raise DataError(f"{what} {path} is not a readable image: {str(err).strip().splitlines()[-1]}") from err
    size = reader.GetSize()
    if len(size) != 2 and not (len(size) == 3 and size[2] == 1):
        raise DataError(f"{what} {path} must be a 2-D picture, found size {list(size)}")
    return (int(size[1]), int(size[0])), int(reader.GetNumberOfComponents())


def read_picture(path: str, what: str) -> np.ndarray:
    """The ``(rows, cols)`` grey picture of a PNG (RGB(A) as BT.601 luma), float64 in the file's units."""
    try:
        image = sitk.ReadImage(path)
    except RuntimeError as err:
        raise DataError(f"{what} {path} is not a readable image: {str(err).strip().splitlines()[-1]}") from err
    array = sitk.GetArrayFromImage(image)  # (rows, cols[, c])
    if image.GetDimension() == 3:  # a one-slice volume
        array = array[0]
    return grey(array, path)


def binary_mask(picture: np.ndarray, source: str) -> np.ndarray:
    """``picture >= max / 2`` (masks are published as 0/255 or 0/1); DataError naming ``source`` when empty."""
    picture = np.asarray(picture, dtype=np.float64)
    high = float(picture.max()) if picture.size else 0.0
    if not high > 0:
        raise DataError(f"mask {source} is empty (no pixel above 0): expected a lung mask")
    return picture >= high / 2.0


def min_max(picture: np.ndarray) -> np.ndarray:
    """``(x - min) / (max - min)``, float64 in [0, 1]; a constant picture gives zeros."""
    picture = np.asarray(picture, dtype=np.float64)
    low, high = picture.min(), picture.max()
    return np.zeros_like(picture) if high == low else (picture - low) / (high - low)


# ------------------------------------------------------------------------------------------ resizing
def resized_geometry(shape: Sequence[int], spacing: float, size: int) -> ImageGeometry:
    """The 2-D geometry (axes x = columns, y = rows) of a ``(rows, cols)`` picture of ``spacing`` mm
    resized to ``size x size`` over the same field of view (see the module docstring)."""
    rows, cols = (int(s) for s in shape)
    out = (cols * spacing / size, rows * spacing / size)
    origin = ((out[0] - spacing) / 2.0, (out[1] - spacing) / 2.0)
    return ImageGeometry(spacing=out, origin=origin, direction=np.eye(2))


def resize_image(picture: np.ndarray, spacing: float, size: int) -> np.ndarray:
    """Anti-aliased linear resize of a ``(rows, cols)`` picture to ``(size, size)`` (float64, SimpleITK).

    Each axis shrunk by ``f = n / size > 1`` is first smoothed with a Gaussian of ``sigma = (f - 1) / 2``
    source pixels; the picture is then sampled linearly at the output pixel centres (continuous source
    index ``(k + 0.5) f - 0.5``; beyond the outermost source centres, up-sampling repeats the edge value).
    """
    picture = np.asarray(picture, dtype=np.float64)
    image = sitk.GetImageFromArray(picture)  # SimpleITK axis 0 = columns (x), axis 1 = rows (y)
    image.SetSpacing((float(spacing), float(spacing)))
    for axis, n in enumerate((picture.shape[1], picture.shape[0])):
        factor = n / size
        if factor > 1.0 + 1e-9:
            sigma = (factor - 1.0) / 2.0 * spacing  # mm: the filter uses the image spacing
            image = sitk.RecursiveGaussian(image, sigma, False, sitk.RecursiveGaussianImageFilter.ZeroOrder, axis)
    geometry = resized_geometry(picture.shape, spacing, size)
    resampler = sitk.ResampleImageFilter()
    resampler.SetSize((size, size))
    resampler.SetOutputSpacing(geometry.spacing)
    resampler.SetOutputOrigin(geometry.origin)
    resampler.SetOutputDirection((1.0, 0.0, 0.0, 1.0))
    resampler.SetInterpolator(sitk.sitkLinear)
    resampler.SetUseNearestNeighborExtrapolator(True)
    resampler.SetOutputPixelType(sitk.sitkFloat64)
    return sitk.GetArrayFromImage(resampler.Execute(image))


def overlap_weights(n: int, size: int) -> np.ndarray:
    """``(size, n)``: the fraction of output pixel ``k`` (``[k n / size, (k + 1) n / size]`` in source pixel
    units) covered by source pixel ``m`` (``[m, m + 1]``); every row sums to 1."""
    edges_out = np.arange(size + 1) * (n / size)
    low = np.maximum(edges_out[:-1, None], np.arange(n)[None, :])
    high = np.minimum(edges_out[1:, None], np.arange(n)[None, :] + 1.0)
    return np.clip(high - low, 0.0, None) / (n / size)


def area_fractions(mask: np.ndarray, size: int) -> np.ndarray:
    """The fraction of each of ``(size, size)`` output pixels covered by the ``(rows, cols)`` binary mask."""
    mask = np.asarray(mask, dtype=np.float64)
    return overlap_weights(mask.shape[0], size) @ mask @ overlap_weights(mask.shape[1], size).T


def resize_mask(mask: np.ndarray, size: int) -> np.ndarray:
    """Area-then-threshold resize of a binary ``(rows, cols)`` mask: uint8 ``(size, size)``, 1 where >= half covered."""
    return (area_fractions(mask, size) >= MASK_THRESHOLD - 1e-12).astype(np.uint8)


def save_picture(picture: np.ndarray, geometry: ImageGeometry, path: str, dtype) -> None:
    """Write a ``(rows, cols)`` picture as a 2-D NIfTI in tfreg's ``(i, j)`` = ``(x, y)`` order."""
    save_image(np.transpose(picture).astype(dtype), path, geometry)


# ------------------------------------------------------------------------------------------ converting
def check_sizes(sizes: Sequence[int]) -> Tuple[int, ...]:
    """``sizes`` as distinct positive ints; ValueError naming ``sizes`` otherwise."""
    try:
        values = tuple(int(s) for s in sizes)
    except (TypeError, ValueError):
        raise ValueError(f"sizes must be a list of positive pixel counts, got {sizes!r}") from None
    if not values or min(values) < 1 or len(set(values)) != len(values):
        raise ValueError(f"sizes must be distinct positive pixel counts (e.g. 64 256), got {list(sizes)}")
    return values


def draw_split(cases: Sequence[str], split_counts: Sequence[int], seed: int) -> Dict[str, List[str]]:
    """``{train, test, unused: sorted IDs}``: ``(train, test)`` counts drawn with ``seed``, the rest unused.

    Raises:
        ValueError: naming ``split_counts`` when it is not two non-negative counts, or they exceed the cases.
    """
    counts = [int(c) for c in split_counts]
    if len(counts) != 2 or min(counts) < 0:
        raise ValueError(f"split_counts must be two non-negative numbers (train test), got {list(split_counts)}")
    if sum(counts) > len(cases):
        raise ValueError(
            f"split_counts {counts} ask for {sum(counts)} cases but the source holds {len(cases)} usable cases; "
            f"give counts that add up to at most {len(cases)}"
        )
    return seeded_split(cases, counts + [len(cases) - sum(counts)], seed, names=SPLIT_GROUPS)


def check_aspect(image_shape: Sequence[int], mask_shape: Sequence[int], image: str, mask: str) -> None:
    """DataError naming both files unless the mask has the image's aspect ratio (within 1 %): a mask may be
    stored at another resolution (the SCR masks of JSRT are 1024 x 1024 for 2048 x 2048 images) but must
    cover the same field of view."""
    ratio_image = image_shape[1] / image_shape[0]
    ratio_mask = mask_shape[1] / mask_shape[0]
    if abs(ratio_mask / ratio_image - 1.0) > 0.01:
        raise DataError(
            f"mask {mask} ({mask_shape[1]} x {mask_shape[0]} pixels) does not have the shape of its image {image} "
            f"({image_shape[1]} x {image_shape[0]}): expected the same field of view"
        )


def png_cases(folder: str, what: str) -> Dict[str, str]:
    """``{file name without .png: path}`` of the PNG files directly in ``folder`` (sorted).

    Raises:
        DataNotFoundError: naming ``folder`` (and ``what`` was expected there) when it is missing or holds no PNG.
    """
    if not os.path.isdir(folder):
        raise DataNotFoundError(f"missing {what} folder: expected {folder}")
    found = {
        name[: -len(".png")]: os.path.join(folder, name)
        for name in sorted(os.listdir(folder))
        if name.lower().endswith(".png") and os.path.isfile(os.path.join(folder, name))
    }
    if not found:
        raise DataNotFoundError(f"no PNG file found in the {what} folder {folder}")
    return found


def check_png_case(case: Radiograph) -> bool:
    """Check a PNG case's headers (image and masks readable, 2-D, masks of the image's aspect ratio);
    returns whether the image is RGB(A) (converted to grey when read)."""
    shape, channels = picture_info(case.image, f"image of case {case.case}")
    for mask in case.masks:
        mask_shape, _ = picture_info(mask, f"mask of case {case.case}")
        check_aspect(shape, mask_shape, case.image, mask)
    return channels >= 3


def read_png_image(case: Radiograph) -> np.ndarray:
    """The grey ``(rows, cols)`` picture of a PNG case (``read_image`` of :func:`convert_radiographs`)."""
    return read_picture(case.image, f"image of case {case.case}")


def read_png_mask(path: str) -> np.ndarray:
    """The binary ``(rows, cols)`` mask of a PNG mask file (``read_mask`` of :func:`convert_radiographs`)."""
    return binary_mask(read_picture(path, "mask"), path)


def convert_radiographs(
    cases: Mapping[str, Radiograph],
    read_image: Callable[[Radiograph], np.ndarray],
    read_mask: Callable[[str], np.ndarray],
    output: str,
    source: str,
    sizes: Sequence[int],
    split_counts: Sequence[int],
    seed: int,
    record: Mapping[str, object],
    notes: Sequence[str] = (),
    rgb_cases: Sequence[str] = (),
) -> Dict[str, List[str]]:
    """Split, resize and write ``cases`` (checked by the caller) into ``output`` atomically.

    Args:
        cases: ``{case: Radiograph}`` of every usable case.
        read_image: the case's ``(rows, cols)`` grey picture (any units; min-max normalised here).
        read_mask: a mask file's ``(rows, cols)`` binary mask.
        output, source: the output folder (new or empty; checked here) and the release folder.
        sizes, split_counts, seed: see the module docstring.
        record: converter-specific entries of ``conversion.json`` (``converter``, ``options``, ...).
        notes: lines for ``conversion.json``'s ``notes`` (printed by the command line).
        rgb_cases: the cases whose picture is RGB(A) (converted to grey; listed and noted).

    Returns:
        ``{train, test: sorted IDs}`` of the written splits.
    """
    output = check_output_folder(output, source)
    sizes = check_sizes(sizes)
    groups = draw_split(sorted(cases), split_counts, seed)
    notes = list(notes)
    if groups["unused"]:
        notes.append(
            f"{len(groups['unused'])} usable case(s) not in the {split_counts[0]}/{split_counts[1]} split "
            "(listed as 'unused' in conversion.json)"
        )
    if rgb_cases:
        notes.append(f"{len(rgb_cases)} RGB picture(s) converted to grey with ITU-R BT.601 luma (grey_from_rgb)")

    cache: Dict[str, Tuple[np.ndarray, np.ndarray]] = {}

    def loaded(case: Radiograph) -> Tuple[np.ndarray, np.ndarray]:
        """The case's picture in [0, 1] and its merged mask, at their own resolutions (the mask may be stored
        at another one, over the same field of view: it is area-resized straight to each output size)."""
        if case.case not in cache:  # the plan writes a case's files one after the other: keep only this case
            cache.clear()
            picture = min_max(read_image(case))
            parts = [read_mask(path) for path in case.masks]
            for path, part in zip(case.masks[1:], parts[1:]):
                if part.shape != parts[0].shape:
                    raise DataError(
                        f"the masks {case.masks[0]} ({parts[0].shape[1]} x {parts[0].shape[0]}) and {path} "
                        f"({part.shape[1]} x {part.shape[0]}) of case {case.case} differ in size"
                    )
            cache[case.case] = (picture, np.logical_or.reduce(parts))
        return cache[case.case]

    def image_writer(case: Radiograph, size: int) -> Callable[[str], None]:
        def write(target: str) -> None:
            picture = loaded(case)[0]
            resized = np.clip(resize_image(picture, case.spacing, size), 0.0, 1.0)
            save_picture(resized, resized_geometry(picture.shape, case.spacing, size), target, np.float32)

        return write

    def label_writer(case: Radiograph, size: int) -> Callable[[str], None]:
        def write(target: str) -> None:
            picture, mask = loaded(case)
            save_picture(resize_mask(mask, size), resized_geometry(picture.shape, case.spacing, size), target, np.uint8)

        return write

    plan = []
    for split in ("train", "test"):
        for case_id in groups[split]:
            case = cases[case_id]
            for size in sizes:
                plan.append(
                    PlannedFile(case.image, f"{size}/{split}/images/{case_id}.nii.gz", write=image_writer(case, size))
                )
                plan.append(
                    PlannedFile(
                        "+".join(case.masks), f"{size}/{split}/labels/{case_id}.nii.gz", write=label_writer(case, size)
                    )
                )
    splits = {"train": groups["train"], "test": groups["test"]}
    full_record = dict(record)
    full_record.update(
        source=source,
        sizes=list(sizes),
        resampling=RESAMPLING,
        intensity="min-max to [0, 1] per image before resizing",
        split_counts=[int(c) for c in split_counts],
        seed=seed,
        splits=split_record(splits),
        unused=groups["unused"],
        grey_from_rgb=sorted(rgb_cases),
        pixel_spacing_mm={case_id: cases[case_id].spacing for case_id in groups["train"] + groups["test"]},
        notes=notes,
    )
    write_tree(plan, output, full_record)
    return split_record(splits)


def add_xray_arguments(parser, default_counts: Sequence[int]) -> None:
    """``--sizes``, ``--split-counts TRAIN TEST`` (default the paper's) and ``--seed`` of the X-ray converters."""
    parser.add_argument(
        "--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="output sizes in pixels (default 64 256)"
    )
    add_split_arguments(
        parser,
        default_counts,
        f"cases in train and test (default the paper's {default_counts[0]} {default_counts[1]}); further usable "
        "cases are left out and listed as unused",
        names=("TRAIN", "TEST"),
    )


__all__ = [
    "LUMA_BT601",
    "DEFAULT_SIZES",
    "SPLIT_GROUPS",
    "MASK_THRESHOLD",
    "Radiograph",
    "grey",
    "picture_info",
    "read_picture",
    "binary_mask",
    "min_max",
    "resized_geometry",
    "resize_image",
    "overlap_weights",
    "area_fractions",
    "resize_mask",
    "save_picture",
    "check_sizes",
    "draw_split",
    "check_aspect",
    "png_cases",
    "check_png_case",
    "read_png_image",
    "read_png_mask",
    "convert_radiographs",
    "add_xray_arguments",
]
