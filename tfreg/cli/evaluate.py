"""``tfreg_evaluate``: evaluate registration results from files, or compare evaluations.

A thin argparse layer over :func:`tfreg.evaluation.evaluate.evaluate` and
:func:`tfreg.evaluation.compare.compare`; it imports neither TensorFlow nor Keras, so it starts
in a fraction of a second. See ``tfreg_evaluate --help`` and docs/evaluation.md.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from typing import List, Optional

from tfreg.evaluation.evaluate import LEARN2REG_COLUMNS, LEARN2REG_STATISTICS, PAIR_CSV_COLUMNS

DESCRIPTION = """\
Evaluate registration results: Dice, Jaccard, Hausdorff distance (max, 95th, 99th percentile), ASSD,
MSD, relative volume difference, volumetric overlap error, centroid distance, recall and precision per
pair and label (distances in mm from the fixed grid's spacing); Jacobian statistics of the DDF (folding
fraction, folding per mille); landmark TRE and robustness; mutual information (nats, and normalised in %)
and SSIM (Gaussian window, or whole-image statistics with --ssim global) of the fixed and warped images.

Modes (choose one):

  1. prediction folder written by tfreg_predict / deepreg_predict:
       tfreg_evaluate --pred-dir logs/exp/test -o results.csv
     reads pair_<id>/{fixed_image,moving_image,pred_fixed_image,ddf}.nii.gz and
     pair_<id>/label_<k>/{fixed_label,moving_label,pred_fixed_label}.nii.gz (binary masks, >= 0.5);
     the "before" columns compare the fixed and moving labels/images.

  2. one pair from explicit files:
       tfreg_evaluate --fixed-label f.nii.gz --warped-label w.nii.gz [--moving-label m.nii.gz]
                      [--ddf ddf.nii.gz] [--fixed-image F --warped-image W [--moving-image M]]
                      [--fixed-landmarks f.csv --warped-landmarks w.csv [--moving-landmarks m.csv]]
                      [--pair-id NAME] -o results.csv
     label files are integer label maps (evaluated per non-zero value), binary masks, or one-hot
     (*spatial, n) files; landmark files hold one point per row in mm (a header with x,y,z is allowed).

  3. several pairs listed in a CSV:
       tfreg_evaluate --pairs pairs.csv -o results.csv
     header: pair plus any of fixed_label, warped_label, moving_label, ddf, fixed_image, warped_image,
     moving_image, fixed_landmarks, warped_landmarks, moving_landmarks; empty cells are allowed;
     relative paths are relative to the CSV's folder.

  4. compare evaluations of the same pairs, paired by (pair, label):
       tfreg_evaluate --compare a.csv b.csv [c.csv ...] --metric dice [-o compare_dice.csv]
     prints and writes, per label and overall, the mean and median of the differences b - a and the
     two-sided Wilcoxon signed-rank p-value; with more than two files the first is the baseline and
     every other file is compared with it on its own (one table per run, p-values not corrected).

Modes 1-3 write the per-pair, per-label CSV (-o) and a summary CSV (mean, std, median, q1, q3, IQR per
metric and label, plus "all"; --summary, default <output stem>_summary.csv). --union-label L543 adds,
per pair, a row for the union of the pair's labels (van Ulsen's pooled vertebrae), summarised and
compared as a label of its own. --jacobian-figure jacobian.png draws det J inside each label (violins
over the pooled voxels with each pair's median, and histograms with bin width 0.01). --ssim global
(or both) writes ssim_global, macJNet's SSIM from whole-image statistics. --learn2reg also writes
<output stem>_learn2reg.csv: Learn2Reg's OASIS numbers per pair (mean Dice and mean HD95 over the labels
present in the fixed and moving labels, SDlogJ, and Learn2Reg's SDlogJ of log(det J + 3)) and their mean,
std, 30th percentile and count over the pairs; every pair needs labels and a DDF. Existing output
files are refused unless --overwrite is given. Exit status: 0 success, 1 bad input (message on stderr),
2 usage.
"""

#: the file arguments of the explicit-files mode: the pairs-CSV columns after ``pair``
_EXPLICIT = PAIR_CSV_COLUMNS[1:]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tfreg_evaluate`` (every mode's flags)."""
    parser = argparse.ArgumentParser(
        prog="tfreg_evaluate", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    mode = parser.add_argument_group("mode 1, 3 and 4 inputs")
    mode.add_argument("--pred-dir", metavar="DIR", help="prediction folder of tfreg_predict (holding pair_<id>/)")
    mode.add_argument("--pairs", metavar="CSV", help="CSV listing the files of several pairs (see above)")
    mode.add_argument(
        "--compare",
        nargs="+",
        metavar=("A_CSV", "B_CSV"),
        help="evaluation CSVs to compare: a baseline, then one or more runs (each compared with the baseline)",
    )
    mode.add_argument("--metric", help="with --compare: the metric column to compare (e.g. dice, hd95, tre_mean)")

    files = parser.add_argument_group("mode 2: one pair from explicit files")
    files.add_argument("--fixed-label", metavar="FILE", help="fixed (reference) label map")
    files.add_argument("--warped-label", metavar="FILE", help="moving label map warped onto the fixed grid")
    files.add_argument("--moving-label", metavar="FILE", help="unregistered moving label map (adds *_before columns)")
    files.add_argument("--ddf", metavar="FILE", help="dense displacement field (*fixed_spatial, ndim)")
    files.add_argument("--fixed-image", metavar="FILE", help="fixed image (MI and SSIM with --warped-image)")
    files.add_argument("--warped-image", metavar="FILE", help="moving image warped onto the fixed grid")
    files.add_argument("--moving-image", metavar="FILE", help="unregistered moving image (mi_before, ssim_before)")
    files.add_argument("--fixed-landmarks", metavar="CSV", help="fixed landmarks, one point per row, mm")
    files.add_argument("--warped-landmarks", metavar="CSV", help="the same landmarks after registration, mm")
    files.add_argument(
        "--moving-landmarks",
        metavar="CSV",
        help="the same landmarks before registration, mm (tre_*_before and robustness)",
    )
    files.add_argument("--pair-id", default="pair", help="name of the pair in the output (default: pair)")

    out = parser.add_argument_group("output and options")
    out.add_argument(
        "-o",
        "--output",
        metavar="CSV",
        help="output CSV (default: evaluation.csv; with --compare: compare_<metric>.csv)",
    )
    out.add_argument("--summary", metavar="CSV", help="summary CSV (default: <output stem>_summary.csv)")
    out.add_argument("--no-summary", action="store_true", help="do not write the summary CSV")
    out.add_argument(
        "--labels",
        metavar="L1,L2,...",
        help="comma-separated labels to evaluate (label values, or k of label_<k>); default: all found",
    )
    out.add_argument(
        "--union-label",
        metavar="NAME",
        help="add per pair a row NAME for the union of the pair's labels (e.g. L543 for van Ulsen's pooled "
        "vertebrae L3-L5): every label metric, the before metrics and det J inside the union; NAME must not "
        "be a label's name (nor a number when labels come as label maps) nor 'all'",
    )
    out.add_argument(
        "--jacobian-mask",
        choices=("warped", "fixed"),
        default="warped",
        help="the label mask on the fixed grid that det J is summarised over (jac_det_*_in_label and the "
        "figure): warped (default; the fixed-grid voxels mapped into the moving structure) or fixed",
    )
    out.add_argument(
        "--jacobian-figure",
        metavar="FILE.png",
        help="write a figure of det J inside each label (and the union): violins of the voxels pooled over "
        "the pairs with each pair's median marked, and histograms with bin width 0.01 (.png, .pdf or .svg; "
        "the folder must exist; needs a DDF)",
    )
    out.add_argument(
        "--ssim",
        choices=("gaussian", "global", "both"),
        default="gaussian",
        help="SSIM of the fixed and warped (and moving) images: gaussian (default; column ssim, the mean over "
        "Gaussian windows of sigma 1.5 voxels), global (column ssim_global: one SSIM from whole-image means, "
        "variances and covariance, macJNet's eq. 2) or both",
    )
    out.add_argument(
        "--learn2reg",
        action="store_true",
        help="also write <output stem>_learn2reg.csv: per pair the mean Dice and mean HD95 (mm) over the labels "
        "present in the fixed and moving labels, sdlogj and Learn2Reg's sdlogj_l2r (std of log(det J + 3)), "
        "then rows mean, std, q30 and n over the pairs (printed unless --quiet); every pair needs labels and "
        "a DDF",
    )
    out.add_argument(
        "--ddf-units",
        choices=("voxel", "physical"),
        default="voxel",
        help="DDF displacement units: voxel (tfreg/DeepReg, default) or physical (mm along the world "
        "axes, as ITK/ANTs/Elastix write them)",
    )
    out.add_argument("--overwrite", action="store_true", help="replace existing output files")
    out.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no printed summary")
    return parser


def _mode(args, parser: argparse.ArgumentParser) -> str:
    explicit = [f"--{name.replace('_', '-')}" for name in _EXPLICIT if getattr(args, name)]
    chosen = [
        flag
        for flag, value in (("--pred-dir", args.pred_dir), ("--pairs", args.pairs), ("--compare", args.compare))
        if value
    ]
    if explicit:
        chosen.append("explicit files")
    if len(chosen) != 1:
        if not chosen:
            parser.error("nothing to do: give --pred-dir, --pairs, --compare, or explicit files (see --help)")
        parser.error(
            f"choose one mode, got {', '.join(chosen)}"
            + (f" (explicit file flags: {', '.join(explicit)})" if explicit else "")
        )
    if args.metric and not args.compare:
        parser.error("--metric is only used with --compare")
    if args.compare and not args.metric:
        parser.error("--compare needs --metric (the column to compare, e.g. dice)")
    if args.compare and len(args.compare) < 2:
        parser.error("--compare needs at least two evaluation CSVs (a baseline and a run)")
    if args.compare:
        used = [
            flag
            for flag, value in (
                ("--union-label", args.union_label),
                ("--jacobian-figure", args.jacobian_figure),
                ("--ssim", args.ssim != "gaussian"),
                ("--learn2reg", args.learn2reg),
            )
            if value
        ]
        if used:
            parser.error(f"{', '.join(used)} only work(s) when evaluating (modes 1-3), not with --compare")
    return chosen[0]


def _print_summary(result, stream) -> None:
    rows = [r for r in result.summary if r["label"] == "all"]
    if not rows:
        return
    width = max(len(r["metric"]) for r in rows)
    print(f"{'metric'.ljust(width)}  {'n':>4}  {'mean':>10}  {'std':>10}  {'median':>10}", file=stream)
    for r in rows:
        print(
            f"{r['metric'].ljust(width)}  {r['n']:>4}  {r['mean']:>10.4g}  {r['std']:>10.4g}  {r['median']:>10.4g}",
            file=stream,
        )


def _print_learn2reg(result, stream) -> None:
    """The statistics rows of the Learn2Reg CSV (the per-pair rows are in the file)."""
    metrics = LEARN2REG_COLUMNS[2:]
    print("Learn2Reg (over pairs)  " + "  ".join(m.rjust(10) for m in metrics), file=stream)
    for row in result.learn2reg:
        if row["pair"] in LEARN2REG_STATISTICS:
            cells = [f"{row[m]:>10}" if row["pair"] == "n" else f"{row[m]:>10.4g}" for m in metrics]
            print(f"{row['pair']:<23}  " + "  ".join(cells), file=stream)


def main(argv: Optional[List[str]] = None) -> int:
    """Run ``tfreg_evaluate`` with ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    mode = _mode(args, parser)
    # the engine is imported in _run, so that --help and usage errors stay instant
    with warnings.catch_warnings():
        # one plain line per warning, without the source location Python adds for developers
        warnings.showwarning = _show_warning
        return _run(args, mode)


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"tfreg_evaluate: warning: {message}", file=sys.stderr)


def _run(args, mode: str) -> int:
    from tfreg.data.errors import DataError
    from tfreg.evaluation import evaluate as evaluation

    try:
        if mode == "--compare":
            from tfreg.evaluation.compare import compare, compare_runs, format_table

            output = args.output or f"compare_{args.metric}.csv"
            baseline, runs = args.compare[0], args.compare[1:]
            if len(runs) == 1:
                rows = compare(baseline, runs[0], args.metric, output=output, overwrite=args.overwrite)
                print(format_table(rows, baseline, runs[0]))
            else:
                rows = compare_runs(baseline, runs, args.metric, output=output, overwrite=args.overwrite)
                tables = [format_table([r for r in rows if r["run"] == run], baseline, run) for run in runs]
                print("\n\n".join(tables))
            if not args.quiet:
                print(f"wrote {output}", file=sys.stderr)
            return 0
        labels = [s.strip() for s in args.labels.split(",") if s.strip()] if args.labels else None
        if mode == "--pred-dir":
            pairs = evaluation.pairs_from_prediction_dir(args.pred_dir, labels)
        elif mode == "--pairs":
            pairs = evaluation.pairs_from_csv(args.pairs)
        else:
            pairs = [evaluation.PairSpec(pair=args.pair_id, **{name: getattr(args, name) for name in _EXPLICIT})]
        output = args.output or "evaluation.csv"
        summary = "" if args.no_summary else args.summary
        result = evaluation.evaluate(
            pairs,
            output=output,
            summary=summary,
            labels=labels,
            ddf_units=args.ddf_units,
            overwrite=args.overwrite,
            progress=not args.quiet,
            pairs_file=args.pairs if mode == "--pairs" else None,
            union_label=args.union_label,
            jacobian_mask=args.jacobian_mask,
            jacobian_figure=args.jacobian_figure,
            ssim_window=args.ssim,
            learn2reg=args.learn2reg,
        )
    except (DataError, ValueError, OSError) as err:
        print(f"tfreg_evaluate: error: {err}", file=sys.stderr)
        return 1
    if not args.quiet:
        _print_summary(result, sys.stdout)
        if result.learn2reg:
            _print_learn2reg(result, sys.stdout)
        written = ", ".join(
            p for p in (result.output, result.summary_path, result.learn2reg_path, result.jacobian_figure) if p
        )
        print(f"evaluated {len(pairs)} pair(s), {len(result.rows)} row(s); wrote {written}", file=sys.stderr)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
