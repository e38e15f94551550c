"""Predict the paired brain MR-ultrasound demo's test pairs, as DeepReg's ``demo_predict.py`` does.

Run from anywhere after ``demo_train.py``::

    python demos/paired_mrus_brain/demo_predict.py                # the newest training run's last checkpoint
    python demos/paired_mrus_brain/demo_predict.py --full         # the newest --full run
    python demos/paired_mrus_brain/demo_predict.py -k <run folder>/save/ckpt-2000

Writes ``demos/paired_mrus_brain/logs_predict/<timestamp>/test/``: per pair the images and the DDF, and
``metrics.csv``. Prints the mean of predict's metrics over the pairs. DeepReg's script loads the pretrained
checkpoint of its model zoo instead:
``dataset/pretrained/learn2reg_t1_paired_train_logs/save/weights-epoch800.ckpt``.
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
    """Predict; returns the predictions folder ``demos/paired_mrus_brain/logs_predict/<timestamp>/<split>``."""
    args = deepreg_demo.predict_parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    return deepreg_demo.run_prediction(NAME, args)


if __name__ == "__main__":
    main()
