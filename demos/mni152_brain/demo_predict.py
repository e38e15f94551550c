"""Register the MNI152 brain demo's test pairs with a trained checkpoint (DeepReg's ``demo_predict.py``).

Run from the repository root after ``demo_train.py``::

    python demos/mni152_brain/demo_predict.py                       # newest logs_train run, last checkpoint
    python demos/mni152_brain/demo_predict.py --ckpt_path demos/mni152_brain/logs_train/<ts>/save/ckpt-20

Calls ``tfreg.engine.predict.predict`` on the test split, writing to
``demos/mni152_brain/logs_predict/<timestamp>/test/pair_*/`` (images, DDF, and per label
``moving_label``, ``fixed_label``, ``pred_fixed_label``) and ``metrics.csv``, then prints the mean Dice
before (identity) and after registration (``report.py``).
"""

import argparse
import glob
import os
import re
import sys
from datetime import datetime

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

NAME = "mni152_brain"
LOG_DIR = f"demos/{NAME}"


def checkpoint_numbers(save_dir: str) -> list:
    """The ``N`` of every ``ckpt-N*`` file in ``save_dir`` (empty when the folder is missing)."""
    if not os.path.isdir(save_dir):
        return []
    matches = (re.match(r"ckpt-(\d+)", name) for name in os.listdir(save_dir))
    return sorted({int(m.group(1)) for m in matches if m})


def latest_checkpoint(train_root: str = f"demos/{NAME}/logs_train") -> str:
    """``<newest run>/save/ckpt-<largest N>`` under ``train_root`` (runs are named by timestamp)."""
    for run in sorted(glob.glob(os.path.join(train_root, "*")), reverse=True):
        numbers = checkpoint_numbers(os.path.join(run, "save"))
        if numbers:
            return os.path.join(run, "save", f"ckpt-{numbers[-1]}")
    raise FileNotFoundError(f"no checkpoint under {train_root}/*/save: run python demos/{NAME}/demo_train.py first")


def main(argv=None) -> str:
    """Predict; returns the experiment folder ``demos/mni152_brain/logs_predict/<timestamp>``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "-k", "--ckpt_path", default=None, help="checkpoint (default: the newest demo_train run's last)"
    )
    parser.add_argument("--split", default="test", choices=("train", "valid", "test"))
    parser.add_argument("-g", "--gpu", default="0", help="CUDA_VISIBLE_DEVICES ('' for CPU); default %(default)r")
    parser.add_argument("--save_png", action="store_true", help="also write PNG slices")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the saved config's dataset paths are relative to the repository root
    ckpt_path = args.ckpt_path or latest_checkpoint()

    from tfreg.engine.predict import predict

    exp_name = "logs_predict/" + datetime.now().strftime("%Y%m%d-%H%M%S")
    predict(
        gpu=args.gpu,
        gpu_allow_growth=True,
        ckpt_path=ckpt_path,
        split=args.split,
        batch_size=1,
        exp_name=exp_name,
        config_path=[],  # DeepReg's default: the training run's <ckpt>/../../config.yaml
        save_nifti=True,
        save_png=args.save_png,
        log_dir=LOG_DIR,
    )
    run = os.path.join(LOG_DIR, exp_name)
    print(f"[demo_predict] checkpoint {ckpt_path}; predictions in {run}/{args.split}/")
    from demos.mni152_brain import report  # noqa: E402 - after the TensorFlow-heavy predict

    rows = report.label_dice(run, args.split)
    if rows:
        print(report.summarize(rows, report.label_names()))
    return run


if __name__ == "__main__":
    main()
