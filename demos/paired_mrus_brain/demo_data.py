"""Get the brain MR-ultrasound pairs of DeepReg's paired_mrus_brain demo and convert them to DeepReg's paired layout.

Run from anywhere::

    python demos/paired_mrus_brain/demo_data.py                      # download (when online) and convert
    python demos/paired_mrus_brain/demo_data.py --source master.zip  # an archive downloaded by hand

The data are pre-operative T1 MR and intra-operative (before resection) 3-D ultrasound of low-grade glioma
patients from RESECT (Xiao et al., "REtroSpective Evaluation of Cerebral Tumors (RESECT)", Medical Physics
2017), resampled and paired for DeepReg in ucl-candi/dataset_resect (DeepReg's default: "only a part of
the original data"; its script's download of the full EASY-RESECT release is marked "not tested" and is
not reproduced here). Neither DeepReg nor that repository publishes a checksum: the archive's SHA-256 is
printed and kept in ``dataset/conversion.json``. ``master.zip`` holds::

    dataset_resect-master/paired_mr_us_brain/{train,test}/moving_images/CaseN.nii.gz   ultrasound
    dataset_resect-master/paired_mr_us_brain/{train,test}/fixed_images/CaseN.nii.gz    T1 MR
    (and per-case folders CaseN/ with the files before renaming, which the demo does not use)

The conversion is DeepReg's: the ``train`` and ``test`` folders as published (the YAML validates on
``test``)::

    dataset/{train,test}/{moving_images,fixed_images}/CaseN.nii.gz

Difference from DeepReg: only ``moving_images`` and ``fixed_images`` are copied (DeepReg moves the whole
folders, unused ``CaseN/`` folders included); a case missing from one of the two is an error here.
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

NAME = "paired_mrus_brain"
RELEASE = deepreg_demo.Release(
    url="https://github.com/ucl-candi/dataset_resect/archive/master.zip",
    filename="master.zip",
    sha256=None,
    checksum_note="neither DeepReg nor ucl-candi/dataset_resect publishes one",
)
SPLITS = ("train", "test")
FOLDERS = ("moving_images", "fixed_images")


def convert(source: str, args) -> tuple:
    root = os.path.join(source, "dataset_resect-master", "paired_mr_us_brain")
    if not os.path.isdir(root):
        root = os.path.join(source, "paired_mr_us_brain")
    plan, splits = [], {}
    for split in SPLITS:
        folders = [
            deepreg_demo.require_folder(os.path.join(root, split, f), f"{split} {f} (paired_mr_us_brain/{split}/{f})")
            for f in FOLDERS
        ]
        moving, fixed = (deepreg_demo.files_with_suffix(f) for f in folders)
        if moving != fixed or not moving:
            raise DataError(
                f"{folders[0]} and {folders[1]} must hold the same, non-empty list of files (one ultrasound and "
                f"one MR per case); found {len(moving)} and {len(fixed)}"
            )
        splits[split] = [conversion.nifti_stem(name) for name in moving]
        for folder, sub in zip(folders, FOLDERS):
            plan += [conversion.PlannedFile(os.path.join(folder, n), f"{split}/{sub}/{n}") for n in moving]
    return plan, splits, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
