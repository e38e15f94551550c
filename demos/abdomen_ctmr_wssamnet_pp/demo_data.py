"""Convert Learn2Reg's Abdomen MR-CT release to DeepReg's paired layout (moving CT, fixed MR) for the demo.

Run from anywhere::

    python demos/abdomen_ctmr_wssamnet_pp/demo_data.py --source ~/data/AbdomenMRCT   # the extracted release
    python demos/abdomen_ctmr_wssamnet_pp/demo_data.py --synthetic                   # no network: tiny synthetic
    python demos/abdomen_ctmr_wssamnet_pp/demo_data.py                               # prints how to download

Download (about 1.8 GB, no login, no checksum published): ``AbdomenMRCT.zip`` from the AbdomenMRCT entry
of https://learn2reg.grand-challenge.org/Datasets/ (a share of the University of Lübeck cloud), then::

    unzip AbdomenMRCT.zip -d demos/abdomen_ctmr_wssamnet_pp/dataset_source

which gives ``dataset_source/AbdomenMRCT`` (``AbdomenMRCT_dataset.json``, ``imagesTr``, ``labelsTr``,
``masksTr``), the default ``--source``. The share link is only on that page, so the script prints these
steps instead of downloading. The conversion is ``data_scripts/learn2reg_abdomen_ctmr.py SOURCE dataset``
into ``demos/abdomen_ctmr_wssamnet_pp/dataset/``::

    dataset/{train,valid}/{moving,fixed}_images/<pair>.nii.gz    CT (moving) and MR (fixed)
    dataset/{train,valid}/{moving,fixed}_labels/<pair>.nii.gz    (X, Y, Z, 4): liver, spleen, kidneys

``train`` holds ``training_paired_images`` and ``valid`` the ``registration_val`` pairs. ``--synthetic``
writes ``--cases`` synthetic patients (``data_scripts/synthetic_releases.py``: CT in HU, MR with another
contrast and moved organs) in the release's own layout, every one paired and the last one in
``registration_val``, and converts them the same way.
"""

from __future__ import annotations

import os
import sys
from typing import Optional, Sequence

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from data_scripts import learn2reg_abdomen_ctmr  # noqa: E402
from demos import staged_demo  # noqa: E402

NAME = "abdomen_ctmr_wssamnet_pp"


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = staged_demo.data_parser(
        __doc__, NAME, "the extracted AbdomenMRCT folder", 4, "patients", [32, 32, 32], "--synthetic: seed"
    )
    args = parser.parse_args(argv)

    folder = staged_demo.demo_dir(NAME, args.dir)
    dataset = os.path.join(folder, "dataset")
    try:
        staged_demo.clear_dataset(dataset, args.overwrite)
        source = staged_demo.abdomen_mrct_source(folder, args)
        if source is None:
            return 2
        splits = learn2reg_abdomen_ctmr.convert(source, dataset)
    except (ValueError, OSError) as err:
        print(f"[demo_data] error: {err}", file=sys.stderr)
        return 1
    print(f"[demo_data] {', '.join(f'{k}: {len(v)}' for k, v in splits.items())} CT/MR pairs in {dataset}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
