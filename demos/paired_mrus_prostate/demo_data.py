"""Get the prostate MR-ultrasound pairs of DeepReg's paired_mrus_prostate demo and partition them into 11 folds.

Run from anywhere::

    python demos/paired_mrus_prostate/demo_data.py                    # download (when online) and convert
    python demos/paired_mrus_prostate/demo_data.py --source mrus.zip  # an archive downloaded by hand

The data are the demo pairs of Hu et al., "Weakly-supervised convolutional neural networks for
multimodal image registration" (Medical Image Analysis 2018): MR (moving) and transrectal ultrasound
(fixed) images of the prostate with gland labels; DeepReg's README calls them "simulated dummy images"
(no real clinical data). They are the ``mrus`` branch of YipengHu/example-data; neither DeepReg nor that
repository publishes a checksum, so the archive's SHA-256 is printed and kept in ``dataset/conversion.json``.
``mrus.zip`` holds::

    example-data-mrus/{moving_images,moving_labels,fixed_images,fixed_labels}/<case>.nii.gz

The conversion is DeepReg's: the files of each folder in name order, case ``i`` into fold ``i mod 11``
(the YAML trains on part00-part07, validates on part08 and tests on part09-part10)::

    dataset/partNN/{moving_images,moving_labels,fixed_images,fixed_labels}/<case>.nii.gz

Difference from DeepReg: the four folders must hold the same file names (DeepReg only compares their
counts, and pairs files by position); fewer than 11 cases, which would leave a fold empty, is an error.
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

NAME = "paired_mrus_prostate"
RELEASE = deepreg_demo.Release(
    url="https://github.com/yipenghu/example-data/archive/mrus.zip",
    filename="mrus.zip",
    sha256=None,
    checksum_note="neither DeepReg nor YipengHu/example-data publishes one",
)
FOLDERS = ("moving_images", "moving_labels", "fixed_images", "fixed_labels")
#: DeepReg's demo cuts the pairs into this many folds
NUM_PARTS = 11


def convert(source: str, args) -> tuple:
    root = os.path.join(source, "example-data-mrus")
    if not os.path.isdir(root):
        root = source
    folders = [deepreg_demo.require_folder(os.path.join(root, f), f"{f} folder") for f in FOLDERS]
    names = [deepreg_demo.files_with_suffix(f) for f in folders]
    if any(n != names[0] for n in names[1:]):
        raise DataError(f"{', '.join(folders)} must hold the same file names (one file per case in each)")
    cases = names[0]
    if len(cases) < NUM_PARTS:
        raise DataError(f"{root} holds {len(cases)} cases; the demo's {NUM_PARTS} folds need at least {NUM_PARTS}")
    splits = {f"part{p:02d}": [conversion.nifti_stem(c) for c in cases[p::NUM_PARTS]] for p in range(NUM_PARTS)}
    plan = [
        conversion.PlannedFile(os.path.join(folder, case), f"part{i % NUM_PARTS:02d}/{sub}/{case}")
        for i, case in enumerate(cases)
        for folder, sub in zip(folders, FOLDERS)
    ]
    return plan, splits, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
