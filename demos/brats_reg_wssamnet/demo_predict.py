"""Register the BraTSReg WSSAMNet demo's test cases and report the landmark errors (WSSAMNet Table 1's metrics).

Run from anywhere after ``demo_train.py``::

    python demos/brats_reg_wssamnet/demo_predict.py           # newest full run
    python demos/brats_reg_wssamnet/demo_predict.py --test    # newest demo_train.py --test run

Calls ``tfreg.engine.predict.predict`` on the test split, writing
``demos/brats_reg_wssamnet/logs_predict/<timestamp>/test/``: per case the scans, the DDF, the warped
follow-up, both segmenters' ROI maps and the attentive images, and ``metrics.csv`` with, per case, the
landmark errors in mm (``landmark_mean_ae``, ``landmark_median_ae``, the same ``_before`` registration,
``landmark_robustness``; docs/landmarks.md). It prints the paper's aggregates: the mean and median over
cases of the per-case median and mean AE, and the mean and median robustness (WSSAMNet on the challenge's
validation set: median of median AE 5.00, mean of median 8.37, median of mean 6.68, mean of mean 9.09, mean
robustness 0.32, median 0.28).
"""

import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402
from demos.brats_reg_wssamnet.demo_train import NAME  # noqa: E402

COLUMNS = (
    "landmark_median_ae",
    "landmark_mean_ae",
    "landmark_median_ae_before",
    "landmark_mean_ae_before",
    "landmark_robustness",
    "landmark_count",
    "image_ssd",
)


def main(argv=None) -> str:
    """Predict; returns the predictions folder ``<dir>/logs_predict/<timestamp>/<split>``."""
    parser = staged_demo.predict_parser(NAME, __doc__.split("\n\n")[0])
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the saved config's dataset paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    ckpt = args.ckpt_path or staged_demo.latest_stage_checkpoint(folder, "register", NAME, args.test)
    out = staged_demo.predict_split(ckpt, args.split, folder, args.gpu)
    print(f"[demo_predict] checkpoint {ckpt}; predictions in {out}/")
    summary = staged_demo.column_means(os.path.join(out, "metrics.csv"), COLUMNS)
    staged_demo.print_summary(
        f"{args.split} cases, landmark errors in mm (mean = 'Mean of ...', median = 'Median of ...' in the paper)",
        summary,
    )
    return out


if __name__ == "__main__":
    main()
