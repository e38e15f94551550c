"""Predict the unpaired abdominal CT demo's test pairs with a trained checkpoint (DeepReg's ``demo_predict.py``).

Run from anywhere after ``demo_train.py``::

    python demos/unpaired_ct_abdomen/demo_predict.py --method comb          # newest comb run's last checkpoint
    python demos/unpaired_ct_abdomen/demo_predict.py --method unsup --full  # newest --full unsup run
    python demos/unpaired_ct_abdomen/demo_predict.py --method weakly -k <run>/save/ckpt-5000

Writes ``demos/unpaired_ct_abdomen/logs_predict/<method>/<timestamp>/test/`` (per pair the images, the DDF
and the 13 warped organ labels; ``metrics.csv``) and prints the mean of predict's metrics over the pairs.
DeepReg's script loads the pretrained checkpoint of its model zoo instead:
``dataset/pretrained/<method>/ckpt-5000``.
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import deepreg_demo  # noqa: E402
from demos.unpaired_ct_abdomen.demo_train import NAME, add_method  # noqa: E402


def main(argv=None) -> str:
    """Predict; returns ``demos/unpaired_ct_abdomen/logs_predict/<method>/<timestamp>/<split>``."""
    args = add_method(deepreg_demo.predict_parser(NAME, __doc__.split("\n\n")[0])).parse_args(argv)
    method = args.method
    return deepreg_demo.run_prediction(NAME, args, runs=f"logs_train/{method}", outputs=f"logs_predict/{method}")


if __name__ == "__main__":
    main()
