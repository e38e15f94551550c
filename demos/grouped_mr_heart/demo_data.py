"""Get the multi-sequence cardiac MR of DeepReg's grouped_mr_heart demo and convert it to DeepReg's grouped layout.

Run from anywhere::

    python demos/grouped_mr_heart/demo_data.py                     # download (when online) and convert
    python demos/grouped_mr_heart/demo_data.py --source myops.zip  # an archive downloaded by hand

The data are the 45 patients of the MyoPS 2020 challenge (Zhuang, "Multivariate mixture model for
myocardial segmentation combining multi-source images", TPAMI 2019), three sequences each: bSSFP (C0),
late gadolinium enhancement (DE) and T2, as re-hosted for DeepReg in the ``myops`` branch of
ucl-candi/datasets_deepreg_demo. Neither DeepReg nor that repository publishes a checksum: the archive's
SHA-256 is printed and kept in ``dataset/conversion.json``. ``myops.zip`` holds::

    datasets_deepreg_demo-myops/<patient>_{C0,DE,T2}.nii.gz     e.g. 101_C0.nii.gz

The conversion is DeepReg's: one group per patient, in the order of the patient numbers, named
``subject000``, ``subject001``, ...; every image resampled to 1.5 mm voxels (``scipy.ndimage.zoom`` by
``spacing / 1.5``, cubic spline); the first ``P - int(0.05 P) - int(0.10 P)`` groups for train, the next
``int(0.05 P)`` for valid (folder ``val``), the rest for test::

    dataset/{train,val,test}/images/subjectNNN/{C0,DE,T2}.nii.gz

Differences from DeepReg: the resampled files carry their geometry (the spacing ``zoom`` really gives,
``spacing * (n - 1) / (m - 1)`` for ``n`` voxels resampled to ``m``: close to 1.5 mm in-plane, but
markedly less across the few thick slices of a short-axis stack, since ``zoom`` keeps the end voxels'
centres; and the source's origin and direction) where DeepReg writes an identity affine; groups are split
in patient order (DeepReg's follows ``os.listdir``); each split gets at least one patient.
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
from scipy import ndimage

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import conversion  # noqa: E402
from demos import deepreg_demo  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402
from tfreg.data.geometry import ImageGeometry  # noqa: E402
from tfreg.data.image_io import read_image, save_image  # noqa: E402

NAME = "grouped_mr_heart"
RELEASE = deepreg_demo.Release(
    url="https://github.com/ucl-candi/datasets_deepreg_demo/archive/myops.zip",
    filename="myops.zip",
    sha256=None,
    checksum_note="neither DeepReg nor ucl-candi/datasets_deepreg_demo publishes one",
)
#: MyoPS' three sequences, one file each per patient
SEQUENCES = ("C0", "DE", "T2")
#: DeepReg resamples every image to this isotropic voxel size, mm
SPACING_MM = 1.5
FOLDERS = {"train": "train", "valid": "val", "test": "test"}


def resample_writer(source: str):
    """A :attr:`PlannedFile.write` resampling ``source`` to about 1.5 mm voxels as DeepReg's demo does."""

    def write(target: str) -> None:
        image, geometry = read_image(source)
        zoomed = ndimage.zoom(image, [s / SPACING_MM for s in geometry.spacing])
        # zoom (grid_mode=False) keeps the first and last voxel centres: n voxels of s mm become m voxels
        spacing = [
            s * (n - 1) / (m - 1) if m > 1 else SPACING_MM
            for s, n, m in zip(geometry.spacing, image.shape, zoomed.shape)
        ]
        save_image(
            zoomed.astype(np.float32),
            target,
            ImageGeometry(spacing=spacing, origin=geometry.origin, direction=geometry.direction),
        )

    return write


def patients(root: str) -> Dict[int, List[str]]:
    """``{patient number: [file per sequence]}`` (DataError naming a patient who misses a sequence)."""
    found: Dict[int, Dict[str, str]] = {}
    for name in deepreg_demo.files_with_suffix(root, (".nii.gz",)):
        number, _, sequence = name[: -len(".nii.gz")].partition("_")
        if number.isdigit() and sequence in SEQUENCES:
            found.setdefault(int(number), {})[sequence] = name
    if not found:
        raise DataError(f"{root} holds no <patient>_{{{','.join(SEQUENCES)}}}.nii.gz files")
    for number, files in found.items():
        missing = [s for s in SEQUENCES if s not in files]
        if missing:
            raise DataError(f"patient {number} in {root} has no {', '.join(missing)} image ({number}_<seq>.nii.gz)")
    return {number: [found[number][s] for s in SEQUENCES] for number in sorted(found)}


def convert(source: str, args) -> tuple:
    root = os.path.join(source, "datasets_deepreg_demo-myops")
    if not os.path.isdir(root):
        root = source
    groups = patients(root)
    numbers = list(groups)
    counts = deepreg_demo.split_counts(len(numbers), int(len(numbers) * 0.05), int(len(numbers) * 0.10), minimum=1)
    splits = deepreg_demo.ordered_split(numbers, counts)
    plan = []
    for split, members in splits.items():
        for number in members:
            group = f"subject{numbers.index(number):03d}"
            for sequence, name in zip(SEQUENCES, groups[number]):
                path = os.path.join(root, name)
                target = f"{FOLDERS[split]}/images/{group}/{sequence}.nii.gz"
                plan.append(conversion.PlannedFile(path, target, write=resample_writer(path)))
    notes = [f"subjectNNN is the NNN-th patient in number order ({numbers[0]} is subject000)"]
    return plan, splits, notes


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
