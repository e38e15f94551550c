"""Train DeepReg's grouped cardiac MR demo with tfreg, as DeepReg's ``demo_train.py`` does.

Run from anywhere after ``demo_data.py``::

    python demos/grouped_mr_heart/demo_train.py          # quick: 16^3 images, 1 epoch
    python demos/grouped_mr_heart/demo_train.py --full   # grouped_mr_heart.yaml as it is (4000 epochs)

The same run from the command line: ``tfreg_train -c demos/grouped_mr_heart/grouped_mr_heart.yaml
[config/test/demo_unpaired_grouped.yaml] --log_dir demos/grouped_mr_heart -l logs_train/<timestamp>``.
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import deepreg_demo  # noqa: E402

NAME = "grouped_mr_heart"


def main(argv=None) -> str:
    """Train; returns the run folder ``demos/grouped_mr_heart/logs_train/<timestamp>[-test]``."""
    args = deepreg_demo.run_parser(NAME, __doc__.split("\n\n")[0], quick_default=True).parse_args(argv)
    return deepreg_demo.run_training(NAME, f"{NAME}.yaml", "grouped", args)


if __name__ == "__main__":
    main()
