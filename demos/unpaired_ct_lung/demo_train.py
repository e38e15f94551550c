"""Train DeepReg's unpaired lung CT demo with tfreg, as DeepReg's ``demo_train.py`` does.

Run from anywhere after ``demo_data.py``::

    python demos/unpaired_ct_lung/demo_train.py          # quick: 16^3 images, 1 epoch
    python demos/unpaired_ct_lung/demo_train.py --full   # unpaired_ct_lung.yaml as it is (5000 epochs)

The same run from the command line: ``tfreg_train -c demos/unpaired_ct_lung/unpaired_ct_lung.yaml
[config/test/demo_unpaired_grouped.yaml] --log_dir demos/unpaired_ct_lung -l logs_train/<timestamp>``.
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import deepreg_demo  # noqa: E402

NAME = "unpaired_ct_lung"


def main(argv=None) -> str:
    """Train; returns the run folder ``demos/unpaired_ct_lung/logs_train/<timestamp>[-test]``."""
    args = deepreg_demo.run_parser(NAME, __doc__.split("\n\n")[0], quick_default=True).parse_args(argv)
    return deepreg_demo.run_training(NAME, f"{NAME}.yaml", "unpaired", args)


if __name__ == "__main__":
    main()
