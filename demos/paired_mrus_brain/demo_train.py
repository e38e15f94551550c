"""Train DeepReg's paired brain MR-ultrasound demo with tfreg, as DeepReg's ``demo_train.py`` does.

Run from anywhere after ``demo_data.py``::

    python demos/paired_mrus_brain/demo_train.py          # quick: 16^3 moving, 8^3 fixed, 1 epoch
    python demos/paired_mrus_brain/demo_train.py --full   # paired_mrus_brain.yaml as it is (2000 epochs)

The same run from the command line: ``tfreg_train -c demos/paired_mrus_brain/paired_mrus_brain.yaml
[config/test/demo_paired.yaml] --log_dir demos/paired_mrus_brain -l logs_train/<timestamp>``.
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import deepreg_demo  # noqa: E402

NAME = "paired_mrus_brain"


def main(argv=None) -> str:
    """Train; returns the run folder ``demos/paired_mrus_brain/logs_train/<timestamp>[-test]``."""
    args = deepreg_demo.run_parser(NAME, __doc__.split("\n\n")[0], quick_default=True).parse_args(argv)
    return deepreg_demo.run_training(NAME, f"{NAME}.yaml", "paired", args)


if __name__ == "__main__":
    main()
