"""Register the Learn2Reg MR -> CT macJNet demo's validation pairs at the CT's resolution and evaluate them.

Run from anywhere after ``demo_train.py``::

    python demos/abdomen_mrct_macjnet/demo_predict.py           # newest full run's joint stage
    python demos/abdomen_mrct_macjnet/demo_predict.py --test    # newest demo_train.py --test run

1. ``tfreg_predict --full_resolution`` with the joint stage's last checkpoint (or ``-k``) on the valid split
   (the release's ``registration_val`` pairs, kept on each CT's own grid by ``demo_data.py``): the network sees
   the pair resized to 128 x 128 x 96, and its field is up-sampled to the CT's grid (values scaled to its
   voxels) and applied to the MR and its liver label there, as macJNet up-samples its fields for evaluation;
   into ``demos/abdomen_mrct_macjnet/logs_predict/<timestamp>-joint/valid/``;
2. ``tfreg_evaluate --pred-dir`` on it: ``evaluation.csv`` (per pair: the liver's Dice, HD95 and the other
   label measures in mm from the files' spacing, the folding fraction and det J statistics of the field, the
   MI and SSIM of the warped MR with the CT) and ``evaluation_summary.csv`` (median and IQR).

It prints the medians of :data:`REPORTED`. For comparison only: macJNet reports a liver Dice of 94.75 % (macMIND,
30 % labels) on its private Lishui MR/CT pairs, not on Learn2Reg's.
"""

import csv
import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402
from demos.abdomen_mrct_macjnet.demo_train import NAME  # noqa: E402

#: the measures printed (macJNet's DSC and HD95 of the liver, folding, MI and SSIM)
REPORTED = ("dice", "hd95", "folding_fraction", "mi", "ssim")
EVALUATION = "evaluation.csv"
STAGE = "joint"


def run_suffix(test: bool) -> str:
    """The prediction run's name after its timestamp: ``-joint`` (``-joint-test`` for --test runs)."""
    return f"-{STAGE}" + ("-test" if test else "")


def evaluate(out: str) -> str:
    """``tfreg_evaluate --pred-dir out -o out/evaluation.csv``; returns the CSV path."""
    from tfreg.cli import evaluate as evaluate_cli

    output = os.path.join(out, EVALUATION)
    argv = ["--pred-dir", out, "-o", output, "--overwrite", "-q"]
    status = evaluate_cli.main(argv)
    if status:
        raise RuntimeError(f"tfreg_evaluate {' '.join(argv)} failed with exit status {status}")
    return output


def medians(summary_csv: str) -> dict:
    """``{(metric, label): (median, iqr)}`` of :data:`REPORTED` from a ``tfreg_evaluate`` summary CSV."""
    out = {}
    with open(summary_csv, newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if row["metric"] in REPORTED:
                out[(row["metric"], row["label"])] = (float(row["median"] or "nan"), float(row["iqr"] or "nan"))
    return out


def main(argv=None) -> str:
    """Predict and evaluate; returns the predictions folder ``<dir>/logs_predict/<ts>-joint/<split>``."""
    parser = staged_demo.predict_parser(NAME, __doc__.split("\n\n")[0], ("train", "valid"), "valid")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the saved config's dataset paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    ckpt = args.ckpt_path or staged_demo.latest_stage_checkpoint(folder, STAGE, NAME, args.test)
    out = staged_demo.predict_split(
        ckpt, args.split, folder, args.gpu, full_resolution=True, suffix=run_suffix(args.test)
    )
    csv_path = evaluate(out)
    print(f"[demo_predict] checkpoint {ckpt}; predictions and {EVALUATION} in {out}/")
    for (metric, label), (median, iqr) in sorted(medians(os.path.splitext(csv_path)[0] + "_summary.csv").items()):
        print(f"[demo_predict]   {metric:<20} {label:<8} median {median:.4f}  IQR {iqr:.4f}")
    return out


if __name__ == "__main__":
    main()
