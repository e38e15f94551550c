"""Get Learn2Reg's lung CT training data and convert it to DeepReg's paired layout (DeepReg's paired_ct_lung).

Run from anywhere::

    python demos/paired_ct_lung/demo_data.py                        # download (when online) and convert
    python demos/paired_ct_lung/demo_data.py --source training.zip  # an archive downloaded by hand

The release is "Learn2Reg Challenge: CT Lung Registration - Training Data" (Hering, Murphy and van
Ginneken, 2020; Zenodo record 3835682): 20 patients, each an inspiration and an expiration CT with lung
masks. DeepReg's ``demo_data.py`` passes no checksum to its download, and Zenodo lists the file's MD5 only
on the record page, which could not be read here: the archive's SHA-256 is printed and kept in
``dataset/conversion.json``. ``training.zip`` holds::

    training/scans/case_NNN_{insp,exp}.nii.gz       CT, Hounsfield units
    training/lungMasks/case_NNN_{insp,exp}.nii.gz   binary lung masks

The conversion is DeepReg's:

- case_020 is left out (DeepReg's demo drops it: "this case did not load correctly");
- expiration is the moving image, inspiration the fixed one; file names lose ``_insp`` / ``_exp``;
- an image whose maximum exceeds 255 is rescaled to ``(x + 285) / (3770 + 285) * 255`` (float32); masks
  are copied unchanged;
- ``int(0.2 * cases)`` cases are drawn at random for valid and test (half each, test rounded down).

It writes ``dataset/{train,valid,test}/{moving,fixed}_{images,labels}/case_NNN.nii.gz``. Differences from
DeepReg: the draw is seeded (``--seed``; DeepReg's is not); DeepReg's split returns one of the drawn cases
to train by an off-by-one, this one does not; every split gets at least one case; rescaled images keep
their file's geometry (DeepReg rewrites them with an identity affine, unlike their masks).
"""

from __future__ import annotations

import os
import sys
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import conversion  # noqa: E402
from demos import deepreg_demo  # noqa: E402
from tfreg.data.errors import DataError  # noqa: E402
from tfreg.data.image_io import read_image, save_image  # noqa: E402

NAME = "paired_ct_lung"
RELEASE = deepreg_demo.Release(
    url="https://zenodo.org/record/3835682/files/training.zip",
    filename="training.zip",
    sha256=None,
    checksum_note="DeepReg passes none; Zenodo lists an MD5 on the record page, not recorded here",
)
#: DeepReg's demo leaves this case out ("did not load correctly")
DROPPED_CASE = "case_020"
#: the rescaling DeepReg applies to images above 255: (x - LOW) / (HIGH - LOW) * 255
LOW, HIGH = -285.0, 3770.0
#: (moving, fixed): DeepReg registers expiration to inspiration
PHASES = ("exp", "insp")


def release_folder(source: str) -> str:
    """The ``training`` folder of an extracted release (``source`` itself, or its ``training/``)."""
    inner = os.path.join(source, "training")
    return inner if os.path.isdir(inner) else source


def lung_cases(source: str) -> Tuple[str, List[str]]:
    """``(training folder, case names)``: every ``case_NNN`` with both phases' scan and mask, case_020 left out.

    Raises:
        DataNotFoundError: no ``scans`` or ``lungMasks`` folder.
        DataError: a case misses a phase's scan or mask.
    """
    root = release_folder(source)
    scans = deepreg_demo.require_folder(os.path.join(root, "scans"), "scans folder (training/scans)")
    masks = deepreg_demo.require_folder(os.path.join(root, "lungMasks"), "lung masks folder (training/lungMasks)")
    names = deepreg_demo.files_with_suffix(scans) + deepreg_demo.files_with_suffix(masks)
    cases = sorted({"_".join(name.split("_")[:2]) for name in names})
    for case in cases:
        for folder in (scans, masks):
            for phase in PHASES:
                if not os.path.isfile(os.path.join(folder, f"{case}_{phase}.nii.gz")):
                    raise DataError(f"{case} has no {phase} file in {folder}: expected {case}_{phase}.nii.gz")
    return root, [case for case in cases if case != DROPPED_CASE]


def rescale_writer(source: str):
    """A :attr:`PlannedFile.write` giving DeepReg's CT rescaling when the image's maximum exceeds 255."""

    def write(target: str) -> None:
        image, geometry = read_image(source)
        if image.max() > 255.0:
            image = (image - LOW) / (HIGH - LOW) * 255.0
        save_image(image.astype(np.float32), target, geometry)

    return write


def lung_split(cases: Sequence[str], ratio: float, minimum: int, seed: int) -> Dict[str, List[str]]:
    """DeepReg's draw: ``int(ratio * cases)`` cases for valid and test, test getting the rounded-down half."""
    drawn = int(ratio * len(cases))
    counts = deepreg_demo.split_counts(len(cases), drawn - drawn // 2, drawn // 2, minimum)
    return conversion.seeded_split(cases, counts, seed)


def convert(source: str, args) -> tuple:
    root, cases = lung_cases(source)
    splits = lung_split(cases, 0.2, 1, args.seed)
    plan = []
    for split, names in splits.items():
        for case in names:
            for phase, role in zip(PHASES, ("moving", "fixed")):
                scan = os.path.join(root, "scans", f"{case}_{phase}.nii.gz")
                mask = os.path.join(root, "lungMasks", f"{case}_{phase}.nii.gz")
                plan.append(
                    conversion.PlannedFile(scan, f"{split}/{role}_images/{case}.nii.gz", write=rescale_writer(scan))
                )
                plan.append(conversion.PlannedFile(mask, f"{split}/{role}_labels/{case}.nii.gz"))
    return plan, splits, [f"{DROPPED_CASE} left out, as in DeepReg's demo"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
