"""Get the longitudinal prostate masks of DeepReg's grouped_mask_prostate_longitudinal demo and convert them.

Run from anywhere::

    python demos/grouped_mask_prostate_longitudinal/demo_data.py                    # download and convert
    python demos/grouped_mask_prostate_longitudinal/demo_data.py --source data.zip  # downloaded by hand

The data are prostate gland segmentations of patients seen several times (active surveillance), grouped by
patient; DeepReg's demo uses them as images for feature-based registration (Hu et al., "Morphological
change forecasting for prostate glands using feature-based registration and kernel density
extrapolation", 2021). The archive is ``longi-masks/data.zip`` of YipengHu/example-data; neither DeepReg
nor that repository publishes a checksum, so the archive's SHA-256 is printed and kept in
``dataset/conversion.json``. It holds one HDF5 file::

    data.h5     one dataset per mask, keys group-<patient>-<visit> (DeepReg's grouped h5 keys)

The conversion is DeepReg's: patients in the order of their number, the first ``G - int(0.1 G) - int(0.2 G)``
for train, the next ``int(0.1 G)`` for valid (folder ``val``), the rest for test; every mask is kept as
the label and, smoothed by a Gaussian of sigma 3 voxels (float32), as the image::

    dataset/{train,val,test}/images.h5     keys group-<patient>-<visit>, smoothed masks
    dataset/{train,val,test}/labels.h5     the masks as published

Difference from DeepReg: each split gets at least one patient.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Dict, List, Optional, Sequence

import h5py
import numpy as np
from scipy import ndimage

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import conversion  # noqa: E402
from demos import deepreg_demo  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402

NAME = "grouped_mask_prostate_longitudinal"
RELEASE = deepreg_demo.Release(
    url="https://github.com/YipengHu/example-data/raw/master/longi-masks/data.zip",
    filename="data.zip",
    sha256=None,
    checksum_note="neither DeepReg nor YipengHu/example-data publishes one",
)
#: DeepReg's image: the mask smoothed by a Gaussian of this sigma (voxels)
SIGMA = 3.0
FOLDERS = {"train": "train", "valid": "val", "test": "test"}
KEY = re.compile(r"^group-(\d+)-(\d+)$")


def group_keys(path: str) -> Dict[int, List[str]]:
    """``{patient: [keys]}`` of ``data.h5`` (DataError naming a key that is not ``group-<int>-<int>``)."""
    groups: Dict[int, List[str]] = {}
    with h5py.File(path, "r") as data:
        for key in data.keys():
            match = KEY.match(key)
            if not match:
                raise DataError(f"{path} holds the key {key!r}; expected group-<patient>-<visit> (integers)")
            groups.setdefault(int(match.group(1)), []).append(key)
    if not groups:
        raise DataError(f"{path} holds no masks")
    return {g: sorted(keys, key=lambda k: int(KEY.match(k).group(2))) for g, keys in sorted(groups.items())}


def h5_writer(source: str, keys: Sequence[str], smooth: bool):
    """A :attr:`PlannedFile.write` copying ``keys`` of ``source`` into a new HDF5 file, smoothed or as published."""

    def write(target: str) -> None:
        with h5py.File(source, "r") as data, h5py.File(target, "w") as out:
            for key in keys:
                mask = data[key][()]
                if smooth:
                    out.create_dataset(key, data=ndimage.gaussian_filter(mask, sigma=SIGMA, output=np.float32))
                else:
                    out.create_dataset(key, data=mask)

    return write


def convert(source: str, args) -> tuple:
    path = os.path.join(source, "data.h5")
    if not os.path.isfile(path):
        raise DataError(f"the release has no masks: expected the file {path}")
    groups = group_keys(path)
    ids = list(groups)
    counts = deepreg_demo.split_counts(len(ids), int(len(ids) * 0.1), int(len(ids) * 0.2), minimum=1)
    splits = deepreg_demo.ordered_split(ids, counts)
    plan = []
    for split, members in splits.items():
        keys = [key for g in members for key in groups[g]]
        folder = FOLDERS[split]
        plan.append(conversion.PlannedFile(path, f"{folder}/labels.h5", write=h5_writer(path, keys, smooth=False)))
        plan.append(conversion.PlannedFile(path, f"{folder}/images.h5", write=h5_writer(path, keys, smooth=True)))
    return plan, splits, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
