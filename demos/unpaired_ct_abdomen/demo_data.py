"""Get the abdominal CT of DeepReg's unpaired_ct_abdomen demo and convert it to DeepReg's unpaired layout.

Run from anywhere::

    python demos/unpaired_ct_abdomen/demo_data.py                     # download (when online) and convert
    python demos/unpaired_ct_abdomen/demo_data.py --source abdct.zip  # an archive downloaded by hand

The data are the 30 training CT of Learn2Reg 2020 task 3 (abdomen CT-CT; Dalca et al., Zenodo
10.5281/zenodo.3715652), 192 x 160 x 256 voxels with 13 organ labels, as re-hosted for DeepReg in the
``abdct`` branch of ucl-candi/datasets_deepreg_demo. Neither DeepReg nor that repository publishes a
checksum: the archive's SHA-256 is printed and kept in ``dataset/conversion.json``. ``abdct.zip`` holds::

    datasets_deepreg_demo-abdct/dataset/images/NNNN.nii.gz   CT
    datasets_deepreg_demo-abdct/dataset/labels/NNNN.nii.gz   label numbers 0 (background) .. 13

The conversion is DeepReg's: cases in the order of their number, the first ``cases - int(0.1 cases) -
int(0.15 cases)`` for train, then ``int(0.1 cases)`` for valid (folder ``val``) and the rest for test;
images copied unchanged; each label map written as 13 one-hot channels (label ``c + 1`` in channel ``c``,
all 13 whether present or not)::

    dataset/{train,val,test}/images/NNNN.nii.gz
    dataset/{train,val,test}/labels/NNNN.nii.gz     (X, Y, Z, 13) uint8

Differences from DeepReg: uint8 channels (DeepReg writes int8; both read as 0/1); a label value outside
0..13 is an error naming the file (DeepReg drops it silently); each split gets at least two cases.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import conversion  # noqa: E402
from demos import deepreg_demo  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402

NAME = "unpaired_ct_abdomen"
RELEASE = deepreg_demo.Release(
    url="https://github.com/ucl-candi/datasets_deepreg_demo/archive/abdct.zip",
    filename="abdct.zip",
    sha256=None,
    checksum_note="neither DeepReg nor ucl-candi/datasets_deepreg_demo publishes one",
)
#: Learn2Reg task 3's organ labels, one channel each
NUM_LABELS = 13
#: the folder names of the YAML's splits (DeepReg's demo writes "val", not "valid")
FOLDERS = {"train": "train", "valid": "val", "test": "test"}


def convert(source: str, args) -> tuple:
    root = os.path.join(source, "datasets_deepreg_demo-abdct", "dataset")
    if not os.path.isdir(root):
        root = os.path.join(source, "dataset")
    images = deepreg_demo.require_folder(os.path.join(root, "images"), "CT images (dataset/images)")
    labels = deepreg_demo.require_folder(os.path.join(root, "labels"), "label maps (dataset/labels)")
    names = deepreg_demo.files_with_suffix(images, (".nii.gz",))
    if names != deepreg_demo.files_with_suffix(labels, (".nii.gz",)):
        raise DataError(f"{images} and {labels} must hold the same file names (an image and its label map per case)")
    cases = sorted(names, key=lambda name: int(name.split(".")[0]))
    total = len(cases)
    counts = deepreg_demo.split_counts(total, int(total * 0.1), int(total * 0.15), minimum=2)
    splits = deepreg_demo.ordered_split(cases, counts)
    plan = []
    for split, members in splits.items():
        for name in members:
            folder = FOLDERS[split]
            plan.append(conversion.PlannedFile(os.path.join(images, name), f"{folder}/images/{name}"))
            plan.append(
                conversion.PlannedFile(os.path.join(labels, name), f"{folder}/labels/{name}", num_labels=NUM_LABELS)
            )
    return plan, splits, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
