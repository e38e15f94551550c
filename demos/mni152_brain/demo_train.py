"""Train the MNI152 brain demo's DDF LocalNet (DeepReg's ``demo_train.py``, calling ``tfreg.engine.train``).

Run from the repository root after ``python demos/mni152_brain/demo_data.py``::

    python demos/mni152_brain/demo_train.py           # the full run: about two minutes on two CPU cores
    python demos/mni152_brain/demo_train.py --test    # one epoch, to check that everything runs

Logs and checkpoints go to ``demos/mni152_brain/logs_train/<timestamp>/`` (``save/ckpt-N``), as in
DeepReg's demos; ``demo_predict.py`` picks the newest run up from there. The full run is short enough
that, unlike DeepReg's demos, it needs no pretrained checkpoint.
"""

import argparse
import os
import sys
from datetime import datetime

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

NAME = "mni152_brain"
LOG_DIR = f"demos/{NAME}"
CONFIG_PATH = f"demos/{NAME}/{NAME}.yaml"


def main(argv=None) -> str:
    """Train; returns the experiment folder ``demos/mni152_brain/logs_train/<timestamp>``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--test", action="store_true", help="train for one epoch only (a smoke test)")
    parser.add_argument("--max_epochs", type=int, default=-1, help="override train.epochs (-1: the config's)")
    parser.add_argument("-g", "--gpu", default="0", help="CUDA_VISIBLE_DEVICES ('' for CPU); default %(default)r")
    args = parser.parse_args(argv)
    # the config's dataset paths are relative to the repository root
    os.chdir(REPO_ROOT)
    if not os.path.isdir(f"demos/{NAME}/dataset"):
        sys.exit(f"demos/{NAME}/dataset is missing: run python demos/{NAME}/demo_data.py first")

    from tfreg.engine.train import train

    exp_name = "logs_train/" + datetime.now().strftime("%Y%m%d-%H%M%S")
    train(
        gpu=args.gpu,
        config_path=[CONFIG_PATH],
        gpu_allow_growth=True,
        ckpt_path="",
        log_dir=LOG_DIR,
        exp_name=exp_name,
        max_epochs=1 if args.test else args.max_epochs,
    )
    run = os.path.join(LOG_DIR, exp_name)
    print(f"[demo_train] logs and checkpoints: {run}/ (next: python demos/{NAME}/demo_predict.py)")
    return run


if __name__ == "__main__":
    main()
