"""Get Learn2Reg's lung CT training data and convert it to DeepReg's unpaired layout (DeepReg's unpaired_ct_lung).

Run from anywhere::

    python demos/unpaired_ct_lung/demo_data.py                        # download (when online) and convert
    python demos/unpaired_ct_lung/demo_data.py --source training.zip  # an archive downloaded by hand

The release is the one of ``paired_ct_lung`` ("Learn2Reg Challenge: CT Lung Registration - Training
Data", Zenodo record 3835682, ``training.zip``; no checksum published with the download, see that demo).
For inter-patient registration DeepReg's demo keeps one time point, the expiration scans and their lung
masks, and:

- leaves case_020 out, rescales images above 255 to ``(x + 285) / (3770 + 285) * 255``, as paired_ct_lung;
- draws ``int(0.4 * cases)`` cases at random for valid and test (half each, test rounded down).

It writes ``dataset/{train,valid,test}/{images,labels}/case_NNN.nii.gz``. The YAML validates on ``test``
(as DeepReg's does); ``valid`` is written all the same. Differences from DeepReg: the draw is seeded
(``--seed``), it has no off-by-one (DeepReg's returns one drawn case to train), each split gets at least
two cases (unpaired pairs are drawn within a split), rescaled images keep their geometry.
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
from demos.paired_ct_lung.demo_data import DROPPED_CASE, RELEASE, lung_cases, lung_split, rescale_writer  # noqa: E402

NAME = "unpaired_ct_lung"
#: the time point kept (DeepReg keeps the "moving" one of the paired demo, expiration)
PHASE = "exp"


def convert(source: str, args) -> tuple:
    root, cases = lung_cases(source)
    splits = lung_split(cases, 0.4, 2, args.seed)
    plan = []
    for split, names in splits.items():
        for case in names:
            scan = os.path.join(root, "scans", f"{case}_{PHASE}.nii.gz")
            mask = os.path.join(root, "lungMasks", f"{case}_{PHASE}.nii.gz")
            plan.append(conversion.PlannedFile(scan, f"{split}/images/{case}.nii.gz", write=rescale_writer(scan)))
            plan.append(conversion.PlannedFile(mask, f"{split}/labels/{case}.nii.gz"))
    return plan, splits, [f"{DROPPED_CASE} left out, as in DeepReg's demo", "expiration scans only"]


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = deepreg_demo.data_parser(NAME, __doc__, RELEASE)
    return deepreg_demo.run_data(NAME, RELEASE, convert, parser, argv)


if __name__ == "__main__":
    sys.exit(main())
