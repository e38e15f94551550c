"""Predict the grouped prostate mask demo's test pairs with a trained checkpoint (DeepReg's ``demo_predict.py``).

Run from anywhere after ``demo_train.py``::

    python demos/grouped_mask_prostate_longitudinal/demo_predict.py          # newest run's last checkpoint
    python demos/grouped_mask_prostate_longitudinal/demo_predict.py --full   # the newest --full run
    python demos/grouped_mask_prostate_longitudinal/demo_predict.py -k <run>/save/ckpt-5000

The checkpoint's own training config says whether it is the ddf or the dvf model (DeepReg's script takes
``--dvf`` to choose the YAML; here the run's saved config is used). Writes
``demos/grouped_mask_prostate_longitudinal/logs_predict/<timestamp>/test/`` (per pair of visits the smoothed
masks and the DDF; ``metrics.csv``) and prints the mean image SSD over the pairs. DeepReg's script loads
the pretrained checkpoint of its model zoo instead: ``dataset/pretrained/ckpt-5000``.
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
    """Predict; returns ``demos/grouped_mask_prostate_longitudinal/logs_predict/<timestamp>/<split>``."""
    args = deepreg_demo.predict_parser(NAME, __doc__.split("\n\n")[0]).parse_args(argv)
    return deepreg_demo.run_prediction(NAME, args)


if __name__ == "__main__":
    main()
