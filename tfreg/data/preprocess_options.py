"""The options of ``tfreg_preprocess`` (:func:`tfreg.data.preprocess_output.preprocess_pairs`), checked once.

Each option is named as the command-line flag that sets it (``spacing`` is ``--spacing``), and so are
the errors. Checks that need the images' dimension (the number of spacing or crop-size values) are made
when the pairs are read (:func:`tfreg.data.pair_preprocessing.check_pair`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from tfreg.checks import check_choice, check_number
from tfreg.data.intensity_rescale import check_percentiles
from tfreg.data.label_renumbering import check_label_values
from tfreg.data.rigid_alignment import RegistrationSettings

#: the ways of rigid pre-alignment (``align``)
ALIGN_METHODS = ("label", "image", "none")
#: the transform of the pre-alignment (``align_transform``): rigid only, affine only (image-based Mattes MI from
#: the centred initialiser), or the rigid stage of ``align`` followed by an affine image-based stage
ALIGN_TRANSFORMS = ("rigid", "affine", "rigid_affine")


def _numbers(values, name: str, integer: bool) -> Optional[Tuple]:
    """``values`` as a tuple of positive numbers (integers when ``integer``); a single number is one value."""
    if values is None:
        return None
    items = [values] if np.isscalar(values) else list(values)
    kinds = (int, np.integer) if integer else (int, float, np.number)
    ok = bool(items) and all(
        not isinstance(v, (bool, np.bool_)) and isinstance(v, kinds) and np.isfinite(v) and v > 0 for v in items
    )
    if not ok:
        what = (
            "positive integers (voxels), one per image axis"
            if integer
            else "positive numbers (mm), one for all axes or one per axis"
        )
        raise ValueError(f"{name} must be {what}; got {values!r}")
    return tuple(int(v) for v in items) if integer else tuple(float(v) for v in items)


@dataclass(frozen=True)
class PreprocessOptions:
    """What the preprocessing does to every pair (units: mm for spacing, voxels for sizes, percent).

    Attributes:
        spacing: voxel size to resample both images to (one value: isotropic); None keeps each image's.
        align: ``label`` (mean squares on binary masks of ``align_labels``), ``image`` (Mattes mutual
            information on the images) or ``none``.
        align_labels: the label value(s) whose union is aligned (``align: label``), e.g. ``[5]``.
        align_transform: ``rigid`` (default), ``affine`` (an affine transform by Mattes MI on the images, from
            the centred initialiser; needs ``align: image``) or ``rigid_affine`` (the rigid stage of ``align``,
            on labels or images, then an affine Mattes MI stage on the images started from it).
        shape: output size in voxels, one per axis: the output grid (the fixed grid, cropped when
            ``crop_size`` is given) is resampled to this many voxels over the same physical extent, its
            spacing adjusted; None keeps the grid.
        crop_size: output size in voxels, one value per axis; None keeps the fixed image's grid.
        crop_labels: label values of the FIXED label map whose centroid the crop is centred on; None: the
            centre of the fixed grid.
        percentiles: ``(low, high)`` intensity percentiles mapped to 0 and 1 (clipped); None keeps the
            intensities.
        keep_labels: label values kept and renumbered 1..K in this order (others become 0); None keeps all.
        max_memory_gb: refuse a pair whose estimated working memory exceeds this (GiB); None: the machine's
            physical memory.
        registration: multi-resolution schedule, iterations, MI bins and sampling of the alignment.
    """

    spacing: Optional[Tuple[float, ...]] = None
    align: str = "none"
    align_labels: Optional[Tuple[int, ...]] = None
    align_transform: str = "rigid"
    shape: Optional[Tuple[int, ...]] = None
    crop_size: Optional[Tuple[int, ...]] = None
    crop_labels: Optional[Tuple[int, ...]] = None
    percentiles: Optional[Tuple[float, float]] = (1.0, 99.0)
    keep_labels: Optional[Tuple[int, ...]] = None
    max_memory_gb: Optional[float] = None
    registration: RegistrationSettings = field(default_factory=RegistrationSettings)

    def __post_init__(self):
        set_ = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731  (frozen dataclass)
        set_("spacing", _numbers(self.spacing, "spacing", integer=False))
        set_("crop_size", _numbers(self.crop_size, "crop_size", integer=True))
        set_("shape", _numbers(self.shape, "shape", integer=True))
        check_choice(self.align, "align", ALIGN_METHODS)
        check_choice(self.align_transform, "align_transform", ALIGN_TRANSFORMS)
        if self.align_transform == "affine" and self.align != "image":
            raise ValueError(
                f"align_transform='affine' is aligned on the images (Mattes MI): it needs align='image', got "
                f"align={self.align!r}; for a label-based rigid stage followed by the affine one use "
                "align_transform='rigid_affine'"
            )
        if self.align_transform == "rigid_affine" and self.align == "none":
            raise ValueError("align_transform='rigid_affine' needs a rigid stage: align='label' or 'image', not 'none'")
        for key in ("align_labels", "crop_labels", "keep_labels"):
            value = getattr(self, key)
            set_(key, None if value is None else check_label_values(value, key))
        if self.align == "label" and self.align_labels is None:
            raise ValueError("align='label' needs align_labels: the label value(s) to align on, e.g. [5]")
        if self.align != "label" and self.align_labels is not None:
            raise ValueError(f"align_labels is only used with align='label', but align={self.align!r}")
        if self.crop_labels is not None and self.crop_size is None:
            raise ValueError("crop_labels centres a crop: give crop_size too")
        set_("percentiles", check_percentiles(self.percentiles))
        if self.max_memory_gb is not None:
            set_("max_memory_gb", check_number(self.max_memory_gb, "max_memory_gb", exclusive_minimum=True))
        if not isinstance(self.registration, RegistrationSettings):
            raise ValueError(f"registration must be a RegistrationSettings, got {type(self.registration).__name__}")

    @property
    def needs_labels(self) -> bool:
        """Whether the options read label maps (alignment, crop centre or renumbering on labels)."""
        return self.align == "label" or self.crop_labels is not None or self.keep_labels is not None

    def to_dict(self) -> Dict[str, object]:
        """JSON-ready copy: tuples as lists, the registration settings as a nested dict."""
        values = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in values.items() if k != "registration"} | {
            "registration": {k: list(v) if isinstance(v, tuple) else v for k, v in values["registration"].items()}
        }


__all__ = ["ALIGN_METHODS", "ALIGN_TRANSFORMS", "PreprocessOptions"]
