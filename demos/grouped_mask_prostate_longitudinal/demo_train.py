"""Train DeepReg's grouped prostate mask demo with tfreg, as DeepReg's ``demo_train.py`` does.

Run from anywhere after ``demo_data.py``::

    python demos/grouped_mask_prostate_longitudinal/demo_train.py          # quick: 16^3 images, 1 epoch
    python demos/grouped_mask_prostate_longitudinal/demo_train.py --full   # the _ddf.yaml as it is (5000 epochs)
    python demos/grouped_mask_prostate_longitudinal/demo_train.py --dvf    # the _dvf.yaml (a DVF, integrated)

Runs go to ``demos/grouped_mask_prostate_longitudinal/logs_train/<timestamp>[-test]``; from the command
line: ``tfreg_train -c demos/grouped_mask_prostate_longitudinal/grouped_mask_prostate_longitudinal_ddf.yaml
[config/test/demo_unpaired_grouped.yaml] --log_dir demos/grouped_mask_prostate_longitudinal -l logs_train/<ts>``.
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import deepreg_demo  # noqa: E402

NAME = "grouped_mask_prostate_longitudinal"


def main(argv=None) -> str:
    """Train; returns the run folder ``demos/grouped_mask_prostate_longitudinal/logs_train/<timestamp>[-test]``."""
    parser = deepreg_demo.run_parser(NAME, __doc__.split("\n\n")[0], quick_default=True)
    parser.add_argument("--dvf", action="store_true", help="train the dvf model (_dvf.yaml) instead of ddf")
    args = parser.parse_args(argv)
    config = f"{NAME}_{'dvf' if args.dvf else 'ddf'}.yaml"
    return deepreg_demo.run_training(NAME, config, "grouped", args)


if __name__ == "__main__":
    main()
