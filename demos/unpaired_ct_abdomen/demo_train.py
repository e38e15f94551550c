"""Train DeepReg's unpaired abdominal CT demo with tfreg, as DeepReg's ``demo_train.py`` does.

Run from anywhere after ``demo_data.py``::

    python demos/unpaired_ct_abdomen/demo_train.py --method unsup          # quick: 16^3 images, 1 epoch
    python demos/unpaired_ct_abdomen/demo_train.py --method weakly --full  # unpaired_ct_abdomen_weakly.yaml

``--method`` (required, as in DeepReg) chooses the YAML: ``unsup`` (SSD + gradient, label weight 0),
``weakly`` (multi-scale Dice + gradient, image weight 0) or ``comb`` (both). Runs go to
``demos/unpaired_ct_abdomen/logs_train/<method>/<timestamp>[-test]``; from the command line:
``tfreg_train -c demos/unpaired_ct_abdomen/unpaired_ct_abdomen_<method>.yaml [config/test/demo_unpaired_grouped.yaml]
--log_dir demos/unpaired_ct_abdomen -l logs_train/<method>/<timestamp>``.
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import deepreg_demo  # noqa: E402

NAME = "unpaired_ct_abdomen"
METHODS = ("comb", "unsup", "weakly")


def add_method(parser):
    parser.add_argument("--method", required=True, choices=METHODS, help="training method: comb, unsup or weakly")
    return parser


def main(argv=None) -> str:
    """Train; returns the run folder ``demos/unpaired_ct_abdomen/logs_train/<method>/<timestamp>[-test]``."""
    parser = add_method(deepreg_demo.run_parser(NAME, __doc__.split("\n\n")[0], quick_default=True))
    args = parser.parse_args(argv)
    config = f"{NAME}_{args.method}.yaml"
    return deepreg_demo.run_training(NAME, config, "unpaired", args, runs=f"logs_train/{args.method}")


if __name__ == "__main__":
    main()
