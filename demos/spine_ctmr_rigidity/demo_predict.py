"""Register the spine CT/MR rigidity demo's test pairs with one configuration and evaluate them as the thesis does.

Run from anywhere after ``demo_train.py --method <m>``::

    python demos/spine_ctmr_rigidity/demo_predict.py --method us
    python demos/spine_ctmr_rigidity/demo_predict.py --method us_rp --baseline us   # + Wilcoxon vs US
    python demos/spine_ctmr_rigidity/demo_predict.py --method us --test             # the newest --test run

1. ``tfreg.engine.predict.predict`` on the test split with the newest run of the method (or ``-k``), into
   ``demos/spine_ctmr_rigidity/logs_predict/<timestamp>-<method>/test/`` (per pair the images, the DDF and,
   per vertebra/bone, ``label_<k>/{moving,fixed,pred_fixed}_label``);
2. ``tfreg_evaluate --pred-dir`` on it: ``evaluation.csv`` (per pair and structure: DSC, MSD, HD99, mean and
   standard deviation of det J inside the structure, ...), a pooled ``union`` row per pair (the thesis'
   "L543"), ``evaluation_summary.csv`` (median and IQR, the thesis' statistics) and ``jacobian.png``;
3. with ``--baseline``, ``tfreg_evaluate --compare`` of the newest evaluation of that method with this one
   for each of :data:`COMPARED` (Wilcoxon signed-rank over the pairs): ``compare_<metric>_vs_<baseline>.csv``.

It prints the medians of :data:`COMPARED` per structure; van Ulsen's Table 4.1 (L543): US DSC 0.924, sigma
det J 0.095; US-RP 0.923, 0.025; WS 0.939, 0.151; WS-RP 0.937, 0.020.
"""

import csv
import glob
import os
import sys

DEMO_DIR = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.dirname(os.path.dirname(DEMO_DIR))
if REPO_ROOT not in sys.path:  # run as a script from a checkout without `pip install -e`
    sys.path.insert(0, REPO_ROOT)

from demos import staged_demo  # noqa: E402
from demos.spine_ctmr_rigidity.demo_train import METHODS, NAME  # noqa: E402

#: the thesis' measures (Table 4.1), compared against --baseline
COMPARED = ("dice", "msd", "hd99", "jac_det_mean_in_label", "jac_det_std_in_label")
#: the name of the pooled row of all structures (the thesis' "L543")
UNION_LABEL = "union"
EVALUATION = "evaluation.csv"


def run_suffix(method: str, test: bool) -> str:
    """The prediction run's name after its timestamp: ``-<method>`` (``-<method>-test`` for --test runs)."""
    return f"-{method}" + ("-test" if test else "")


def latest_evaluation(folder: str, method: str, split: str, test: bool) -> str:
    """The newest ``logs_predict/<ts>-<method>/<split>/evaluation.csv``; FileNotFoundError naming the command."""
    pattern = os.path.join(folder, "logs_predict", f"*{run_suffix(method, test)}", split, EVALUATION)
    found = sorted(glob.glob(pattern))  # timestamps sort in time order
    if not found:
        raise FileNotFoundError(
            f"no evaluation of method {method} under {os.path.join(folder, 'logs_predict')}: run "
            f"python demos/{NAME}/demo_predict.py --method {method}{' --test' if test else ''} first"
        )
    return found[-1]


def evaluate(out: str) -> str:
    """``tfreg_evaluate --pred-dir out`` (with the union row and the det J figure); returns the CSV path."""
    from tfreg.cli import evaluate as evaluate_cli

    output = os.path.join(out, EVALUATION)
    # det J inside the FIXED structures: the field's own grid (the thesis' Table 4.1, as the spec reads it)
    argv = ["--pred-dir", out, "--union-label", UNION_LABEL, "--jacobian-mask", "fixed", "-o", output]
    argv += ["--overwrite", "-q"]
    argv += ["--jacobian-figure", os.path.join(out, "jacobian.png")]
    status = evaluate_cli.main(argv)
    if status:
        raise RuntimeError(f"tfreg_evaluate {' '.join(argv)} failed with exit status {status}")
    return output


def compare(baseline_csv: str, csv_path: str, baseline: str, out: str) -> list:
    """``tfreg_evaluate --compare baseline this --metric m`` for each of :data:`COMPARED`; the files written."""
    from tfreg.cli import evaluate as evaluate_cli

    written = []
    for metric in COMPARED:
        output = os.path.join(out, f"compare_{metric}_vs_{baseline}.csv")
        argv = ["--compare", baseline_csv, csv_path, "--metric", metric, "-o", output, "--overwrite", "-q"]
        status = evaluate_cli.main(argv)
        if status:
            raise RuntimeError(f"tfreg_evaluate {' '.join(argv)} failed with exit status {status}")
        written.append(output)
    return written


def medians(summary_csv: str) -> dict:
    """``{(metric, label): (median, iqr)}`` of :data:`COMPARED` from a ``tfreg_evaluate`` summary CSV."""
    out = {}
    with open(summary_csv, newline="", encoding="utf-8") as stream:
        for row in csv.DictReader(stream):
            if row["metric"] in COMPARED:
                out[(row["metric"], row["label"])] = (float(row["median"] or "nan"), float(row["iqr"] or "nan"))
    return out


def main(argv=None) -> str:
    """Predict and evaluate; returns the predictions folder ``<dir>/logs_predict/<ts>-<method>/<split>``."""
    parser = staged_demo.predict_parser(NAME, __doc__.split("\n\n")[0])
    parser.add_argument("--method", choices=METHODS, required=True, help="the configuration whose run to use")
    parser.add_argument("--baseline", choices=METHODS, default=None, help="compare with this method's evaluation")
    args = parser.parse_args(argv)
    os.chdir(REPO_ROOT)  # the saved config's dataset paths are relative to the repository root
    folder = staged_demo.demo_dir(NAME, args.dir)
    ckpt = args.ckpt_path or staged_demo.latest_stage_checkpoint(folder, args.method, NAME, args.test)
    out = staged_demo.predict_split(ckpt, args.split, folder, args.gpu, suffix=run_suffix(args.method, args.test))
    csv_path = evaluate(out)
    print(f"[demo_predict] {args.method}: checkpoint {ckpt}; predictions and {EVALUATION} in {out}/")
    for (metric, label), (median, iqr) in sorted(medians(os.path.splitext(csv_path)[0] + "_summary.csv").items()):
        print(f"[demo_predict]   {metric:<24} {label:<8} median {median:.4f}  IQR {iqr:.4f}")
    if args.baseline:
        baseline_csv = latest_evaluation(folder, args.baseline, args.split, args.test)
        for path in compare(baseline_csv, csv_path, args.baseline, out):
            print(f"[demo_predict] {args.method} vs {args.baseline}: {path}")
    return out


if __name__ == "__main__":
    main()
