"""Get Learn2Reg's hippocampus MR (task 4) and convert it to DeepReg's unpaired layout (DeepReg's unpaired_mr_brain).

Run from anywhere::

    python demos/unpaired_mr_brain/demo_data.py                                          # download and convert
    python demos/unpaired_mr_brain/demo_data.py --source L2R_Task4_HippocampusMRI.tar    # downloaded by hand

The data are the training set of Learn2Reg 2020 task 4 (hippocampus MR of the Medical Segmentation
Decathlon, Simpson et al. 2019): T1 MR crops around the hippocampus with labels 1 (head) and 2 (body),
as re-hosted for DeepReg in acasamitjana/Data. Neither DeepReg nor that repository publishes a checksum:
the archive's SHA-256 is printed and kept in ``dataset/conversion.json``. The tar file holds::

    Training/img/hippocampus_NNN.nii.gz      T1 MR, zero-padded crops
    Training/label/hippocampus_NNN.nii.gz    0 background, 1 head, 2 body

The conversion is DeepReg's:

- subjects numbered below 311 go to train, the others to test (the YAML validates on ``test``);
- a box mask of each image's field of view (see :func:`field_of_view`) is written to ``masks/``, and the
  image is multiplied by it and, when its maximum exceeds 255, min-max rescaled to [0, 255];
- labels 1 and 2 become two one-hot channels (background dropped).

It writes ``dataset/{train,test}/{images,labels,masks}/hippocampus_NNN.nii.gz`` (labels ``(X, Y, Z, 2)``).
Differences from DeepReg: images are written as float32 (DeepReg keeps NumPy's float64); a label value
other than 0, 1, 2 is an error naming the file (DeepReg drops it silently).
"""

from __future__ import annotations

import os
import sys
from typing import List, Optional, Sequence, Tuple

import numpy as np

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import conversion  # noqa: E402
from demos import deepreg_demo  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402
from tfreg.data.image_io import read_image, save_image  # noqa: E402

NAME = "unpaired_mr_brain"
RELEASE = deepreg_demo.Release(
    url="https://github.com/acasamitjana/Data/raw/master/L2R_Task4_HippocampusMRI.tar",
    filename="L2R_Task4_HippocampusMRI.tar",
    sha256=None,
    checksum_note="neither DeepReg nor acasamitjana/Data publishes one",
)
#: foreground labels (head, body), one channel each
NUM_LABELS = 2
#: subjects numbered below this are training subjects, the others test subjects (DeepReg's split)
FIRST_TEST_SUBJECT = 311


def _span(profile: np.ndarray, start_tolerance: float, end_tolerance: float) -> Tuple[int, int]:
    """``[first, last)`` rows of the 2-D ``profile`` (rows along the axis) that differ from its edge rows.

    Walking in from row 0, ``first`` is the first row whose squared difference to row 0 exceeds
    ``start_tolerance``; walking in from the last row, ``last`` is one past the first row (from the end)
    whose squared difference to the last row exceeds ``end_tolerance``, DeepReg's exact (off-by-one) bounds.
    """
    rows = len(profile)
    first = 1
    while first < rows - 1 and np.sum((profile[first] - profile[0]) ** 2) <= start_tolerance:
        first += 1
    last = rows - 2
    while last > 0 and np.sum((profile[last] - profile[rows - 1]) ** 2) <= end_tolerance:
        last -= 1
    return first, last + 1


def field_of_view(image: np.ndarray) -> np.ndarray:
    """DeepReg's box mask of the non-padded part of a hippocampus crop, same shape as ``image`` (0/1).

    Along each axis ``a`` DeepReg looks at one line of voxels per position: the line along axis ``(a + 2) % 3``
    through index ``c_a = shape[a] // 2`` of axis ``(a + 1) % 3`` (it indexes that axis with the centre of
    axis ``a``, which is the centre of the crop only for cubic crops; kept as it is). The box runs from the
    first position whose line differs from the first one (any difference) to the last position whose line
    differs from the last one by a squared sum above 1.
    """
    shape = image.shape
    mask = np.zeros_like(image)
    box = []
    for axis in range(3):
        order = (axis, (axis + 1) % 3, (axis + 2) % 3)
        moved = np.transpose(image, order)
        centre = min(shape[axis] // 2, moved.shape[1] - 1)
        box.append(_span(moved[:, centre, :], 0.0, 1.0))
    mask[box[0][0] : box[0][1], box[1][0] : box[1][1], box[2][0] : box[2][1]] = 1
    return mask


def subject_number(name: str) -> int:
    """``hippocampus_NNN.nii.gz`` -> NNN (DataError for any other name)."""
    stem = conversion.nifti_stem(name)
    prefix, _, number = stem.rpartition("_")
    if not prefix or not number.isdigit():
        raise DataError(f"unexpected file name {name}: expected <name>_<subject number>.nii.gz")
    return int(number)


def image_writer(source: str, mask_only: bool):
    """A :attr:`PlannedFile.write` of DeepReg's preprocessing: the field-of-view mask, or the masked image."""

    def write(target: str) -> None:
        image, geometry = read_image(source, dtype=np.float64)
        mask = field_of_view(image)
        if mask_only:
            save_image(mask.astype(np.float32), target, geometry)
            return
        image = image * mask
        high, low = image.max(), image.min()
        if high > 255:
            image = (image - low) / (high - low) * 255.0
        save_image(image.astype(np.float32), target, geometry)

    return write


def convert(source: str, args) -> tuple:
    root = os.path.join(source, "Training")
    images = deepreg_demo.require_folder(os.path.join(root, "img"), "images (Training/img)")
    labels = deepreg_demo.require_folder(os.path.join(root, "label"), "labels (Training/label)")
    names = deepreg_demo.files_with_suffix(images, (".nii.gz",))
    if names != deepreg_demo.files_with_suffix(labels, (".nii.gz",)):
        raise DataError(f"{images} and {labels} must hold the same file names (an image and its labels per subject)")
    splits: dict = {"train": [], "test": []}
    plan: List[conversion.PlannedFile] = []
    for name in names:
        split = "train" if subject_number(name) < FIRST_TEST_SUBJECT else "test"
        splits[split].append(conversion.nifti_stem(name))
        image = os.path.join(images, name)
        plan.append(conversion.PlannedFile(image, f"{split}/images/{name}", write=image_writer(image, False)))
        plan.append(conversion.PlannedFile(image, f"{split}/masks/{name}", write=image_writer(image, True)))
        plan.append(conversion.PlannedFile(os.path.join(labels, name), f"{split}/labels/{name}", num_labels=NUM_LABELS))
    for split, members in splits.items():
        if len(members) < 2:
            raise DataError(f"the {split} split would hold {len(members)} subject(s); unpaired registration needs 2")
    return plan, splits, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
