"""Register the OASIS WSSAMNet++ demo's test pairs and report Dice (WSSAMNet++ Table I's metric).

Run from anywhere after ``demo_train.py``::

    python demos/oasis_wssamnet_pp/demo_predict.py                     # newest full run, contour attention
    python demos/oasis_wssamnet_pp/demo_predict.py --test              # newest demo_train.py --test run
    python demos/oasis_wssamnet_pp/demo_predict.py --ablation images   # another of Table I's inputs
    python demos/oasis_wssamnet_pp/demo_predict.py -k <run>/register_contour/save/ckpt-50

Calls ``tfreg.engine.predict.predict`` on the test split (pairs of test subjects), writing
``demos/oasis_wssamnet_pp/logs_predict/<timestamp>/test/``: per pair the images, the DDF, the warped
labels, each image's segmentation and attention map (NIfTI with the input's geometry), and
``metrics.csv``. It then prints the mean binary Dice of the warped moving labels against the fixed
labels (``label_binary_dice``, per label row), the number the paper reports (0.750 with contour attention).
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402
from demos.oasis_wssamnet_pp.demo_train import ABLATIONS, NAME  # noqa: E402

COLUMNS = ("label_binary_dice", "label_tre", "image_ssd")


def main(argv=None) -> str:
    """Predict; returns the predictions folder ``<dir>/logs_predict/<timestamp>/<split>``."""
    parser = staged_demo.predict_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--ablation", choices=sorted(ABLATIONS), default="contour")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the saved config's dataset paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    ckpt = args.ckpt_path or staged_demo.latest_stage_checkpoint(folder, f"register_{args.ablation}", NAME, args.test)
    out = staged_demo.predict_split(ckpt, args.split, folder, args.gpu)
    print(f"[demo_predict] checkpoint {ckpt}; predictions in {out}/")
    summary = staged_demo.column_means(os.path.join(out, "metrics.csv"), COLUMNS)
    staged_demo.print_summary(
        f"{args.split} pairs, {args.ablation} (paper Dice: contour 0.750, images 0.736, concat 0.731, masks 0.724)",
        summary,
    )
    return out


if __name__ == "__main__":
    main()
