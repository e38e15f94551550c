"""Get the 3-D transrectal ultrasound of DeepReg's unpaired_us_prostate_cv demo (10 folds of HDF5 files).

Run from anywhere::

    python demos/unpaired_us_prostate_cv/demo_data.py                      # download (when online) and convert
    python demos/unpaired_us_prostate_cv/demo_data.py --source master.zip  # an archive downloaded by hand

The data are 3-D transrectal ultrasound images of prostate cancer patients derived from the
Prostate-MRI-US-Biopsy collection of The Cancer Imaging Archive, already cut into 10 folds for
cross-validation in ucl-candi/dataset_trus3d. Neither DeepReg nor that repository publishes a checksum: the
archive's SHA-256 is printed and kept in ``dataset/conversion.json``. ``master.zip`` holds::

    dataset_trus3d-master/fold0 ... fold9/images.h5    one dataset per image (DeepReg's unpaired h5 layout)

The conversion is DeepReg's: the release's folder becomes ``dataset/`` as it is (the YAML trains on
fold0-fold7, validates on fold8 and tests on fold9; the first of the ten runs of the cross-validation)::

    dataset/fold0 ... fold9/images.h5

Difference from DeepReg: only the ``fold*/`` folders are copied (DeepReg moves the whole repository
folder, its other files included), and a fold without ``images.h5`` is an error here.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

import h5py

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import conversion  # noqa: E402
from demos import deepreg_demo  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402

NAME = "unpaired_us_prostate_cv"
RELEASE = deepreg_demo.Release(
    url="https://github.com/ucl-candi/dataset_trus3d/archive/master.zip",
    filename="master.zip",
    sha256=None,
    checksum_note="neither DeepReg nor ucl-candi/dataset_trus3d publishes one",
)
NUM_FOLDS = 10


def convert(source: str, args) -> tuple:
    root = os.path.join(source, "dataset_trus3d-master")
    if not os.path.isdir(root):
        root = source
    plan, splits = [], {}
    for fold in range(NUM_FOLDS):
        folder = deepreg_demo.require_folder(os.path.join(root, f"fold{fold}"), f"fold{fold} folder")
        images = os.path.join(folder, "images.h5")
        if not os.path.isfile(images):
            raise DataError(f"fold{fold} has no images: expected the file {images}")
        with h5py.File(images, "r") as stream:
            splits[f"fold{fold}"] = sorted(stream.keys())
        if len(splits[f"fold{fold}"]) < 2:
            raise DataError(f"{images} holds {len(splits[f'fold{fold}'])} image(s); unpaired registration needs 2")
        for parent, _, names in os.walk(folder):
            for name in sorted(names):
                path = os.path.join(parent, name)
                plan.append(conversion.PlannedFile(path, os.path.relpath(path, root).replace(os.sep, "/")))
    return plan, splits, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
