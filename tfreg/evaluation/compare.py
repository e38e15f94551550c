"""Paired comparison of evaluation CSVs (``tfreg_evaluate --compare a.csv b.csv [c.csv ...] --metric dice``).

Rows of the two files are matched by ``(pair, label)``; for each label and over all labels the paired
differences ``d = b - a`` (second file minus first) are summarised by their mean and median and tested
with the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, SciPy's defaults: zero
differences dropped, exact distribution for small samples; identical values give statistic 0 and
p = 1). Per-pair metrics (Jacobian, landmark and
image columns, which repeat on every label row of a pair) are compared once per pair, in one ``all``
row. Union rows (``union_of`` set, ``tfreg_evaluate --union-label``) are compared as their own label and
left out of ``all``, which would otherwise count their labels twice.

:func:`compare_runs` compares one baseline with several runs, each run on its own against the baseline
(van Ulsen's thesis tests every model against the rigid alignment and against US this way); the p-values
are not corrected for the number of runs.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.evaluation.evaluate import PAIR_METRICS, POOLED_LABEL, UNION_COLUMN, _check_outputs, natural_key, write_csv

#: Columns of the comparison CSV.
COMPARE_COLUMNS = (
    "metric",
    "label",
    "n",
    "mean_a",
    "mean_b",
    "mean_diff",
    "median_diff",
    "wilcoxon_statistic",
    "p_value",
)
#: Columns of the comparison CSV of one baseline with several runs (:func:`compare_runs`).
COMPARE_RUNS_COLUMNS = ("baseline", "run") + COMPARE_COLUMNS


def read_metric(path: str, metric: str) -> Dict[Tuple[str, str], float]:
    """``{(pair, label): value}`` of one metric column of an evaluation CSV (empty cells become NaN).

    Raises:
        DataNotFoundError: missing file. DataError: no ``pair``/``label`` columns, the metric column is
        missing (listing the columns there are), a (pair, label) row appears twice, or a cell is not a
        number.
    """
    if not os.path.isfile(path):
        raise DataNotFoundError(f"evaluation CSV {path} does not exist")
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = list(reader.fieldnames or [])
        for required in ("pair", "label"):
            if required not in header:
                raise DataError(f"{path}: no {required!r} column; is it a tfreg_evaluate CSV? Columns: {header}")
        if metric not in header:
            available = [c for c in header if c not in ("pair", "label")]
            raise DataError(f"{path}: no column {metric!r}; the metric columns there are: {', '.join(available)}")
        values: Dict[Tuple[str, str], float] = {}
        for row in reader:
            key = (row["pair"], row["label"])
            if key in values:
                raise DataError(f"{path}, line {reader.line_num}: pair {key[0]!r} label {key[1]!r} appears twice")
            cell = (row[metric] or "").strip()
            try:
                values[key] = float(cell) if cell else math.nan
            except ValueError:
                raise DataError(f"{path}, line {reader.line_num}: {metric} value {cell!r} is not a number") from None
    return values


def read_union_labels(path: str) -> set:
    """The labels of the union rows of an evaluation CSV (rows whose ``union_of`` cell is not empty);
    an empty set for a CSV without that column."""
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        if UNION_COLUMN not in (reader.fieldnames or []):
            return set()
        return {row["label"] for row in reader if (row.get(UNION_COLUMN) or "").strip()}


def _test(a: np.ndarray, b: np.ndarray) -> Dict[str, float]:
    """Mean/median of ``b - a`` and the Wilcoxon signed-rank test of the paired samples."""
    n = int(a.size)
    out = {
        "n": n,
        "mean_a": math.nan,
        "mean_b": math.nan,
        "mean_diff": math.nan,
        "median_diff": math.nan,
        "wilcoxon_statistic": math.nan,
        "p_value": math.nan,
    }
    if n == 0:
        return out
    diff = b - a
    out.update(
        mean_a=float(a.mean()), mean_b=float(b.mean()), mean_diff=float(diff.mean()), median_diff=float(np.median(diff))
    )
    if not np.any(diff):
        # no difference at all: SciPy answers statistic 0, p 1 for n >= 2 but raises for n == 1
        out["wilcoxon_statistic"], out["p_value"] = 0.0, 1.0
        return out
    from scipy.stats import wilcoxon  # scipy.stats is slow to import; only this mode needs it

    with warnings.catch_warnings():
        # tiny samples: SciPy warns and returns what it can; the n column tells the reader
        warnings.simplefilter("ignore")
        try:
            result = wilcoxon(diff)
        except ValueError:
            return out
    out["wilcoxon_statistic"] = float(result.statistic)
    out["p_value"] = float(result.pvalue)
    return out


def compare(
    csv_a: str,
    csv_b: str,
    metric: str,
    output: Optional[str] = None,
    overwrite: bool = False,
) -> List[Dict[str, object]]:
    """Compare one metric of two evaluation CSVs, paired by ``(pair, label)``.

    Rows present in only one file, and pairs where either value is NaN or empty, are left out (a
    warning gives their numbers).

    Args:
        csv_a, csv_b: per-pair, per-label CSVs written by :func:`tfreg.evaluation.evaluate.evaluate`.
        metric: the column to compare (e.g. ``dice``, ``hd95``, ``tre_mean``).
        output: comparison CSV to write (columns :data:`COMPARE_COLUMNS`); None writes nothing.
        overwrite: replace an existing ``output`` (never ``csv_a`` or ``csv_b``: refused).

    Returns:
        One row per label (natural order; a union label too) and a final ``all`` row over the labels
        that are not unions; for per-pair metrics only ``all``. ``mean_diff``/``median_diff`` are of
        ``b - a``; ``p_value`` is the two-sided Wilcoxon p-value.

    Raises:
        DataError: a missing metric column, or no (pair, label) row shared by the two files.
    """
    _check_outputs([output], overwrite, {"csv_a": csv_a, "csv_b": csv_b})
    va = read_metric(csv_a, metric)
    vb = read_metric(csv_b, metric)
    unions = read_union_labels(csv_a) | read_union_labels(csv_b)
    rows = _compare_values(va, vb, metric, unions, csv_a, csv_b, f"compare {metric}")
    if output:
        write_csv(output, COMPARE_COLUMNS, rows)
    return rows


def compare_runs(
    baseline: str,
    runs: Sequence[str],
    metric: str,
    output: Optional[str] = None,
    overwrite: bool = False,
) -> List[Dict[str, object]]:
    """Compare one metric of several runs with one baseline: :func:`compare` of ``baseline`` (a) with
    each run (b) on its own, pairs matched per run.

    Every file is read and checked before anything is written. The p-values are those of each
    two-sample test, not corrected for the number of runs (correct them, e.g. Bonferroni: multiply by
    the number of runs, when one claim rests on several tests).

    Args:
        baseline: the evaluation CSV every run is compared with (e.g. the rigid pre-alignment).
        runs: one or more other evaluation CSVs, all different from each other and from ``baseline``.
        metric, overwrite: as for :func:`compare`.
        output: CSV to write, columns :data:`COMPARE_RUNS_COLUMNS` (the two file names, then
            :data:`COMPARE_COLUMNS`); None writes nothing.

    Returns:
        :func:`compare`'s rows of every run in the order given, each with ``baseline`` and ``run``.

    Raises:
        ValueError: no run, or a file given twice. DataError, DataNotFoundError: as :func:`compare`.
    """
    runs = list(runs)
    if not runs:
        raise ValueError("compare_runs: give at least one run to compare with the baseline")
    files = [baseline] + runs
    resolved = [os.path.realpath(f) for f in files]
    for i, path in enumerate(resolved):
        if path in resolved[:i]:
            raise ValueError(f"compare: {files[i]} is given twice (as {files[resolved.index(path)]}); each file once")
    _check_outputs([output], overwrite, {("baseline" if i == 0 else f"run {i}"): f for i, f in enumerate(files)})
    base = read_metric(baseline, metric)
    base_unions = read_union_labels(baseline)
    values = [(run, read_metric(run, metric), read_union_labels(run)) for run in runs]
    rows = []
    for run, vb, unions in values:
        for row in _compare_values(base, vb, metric, base_unions | unions, baseline, run, f"compare {metric} ({run})"):
            rows.append({"baseline": baseline, "run": run, **row})
    if output:
        write_csv(output, COMPARE_RUNS_COLUMNS, rows)
    return rows


def _compare_values(
    va: Dict[Tuple[str, str], float],
    vb: Dict[Tuple[str, str], float],
    metric: str,
    unions: set,
    csv_a: str,
    csv_b: str,
    who: str,
) -> List[Dict[str, object]]:
    """The comparison rows of two files' values (see :func:`compare`); ``unions``: union labels."""
    shared = sorted(set(va) & set(vb), key=lambda k: (natural_key(k[0]), natural_key(k[1])))
    if not shared:
        sample_a = ", ".join(f"({p}, {l})" for p, l in list(va)[:3])
        sample_b = ", ".join(f"({p}, {l})" for p, l in list(vb)[:3])
        raise DataError(
            f"{csv_a} and {csv_b} share no (pair, label) row to compare (first rows: {sample_a or 'none'} vs "
            f"{sample_b or 'none'}); were they evaluated on the same pairs?"
        )
    only = len(set(va) ^ set(vb))
    per_pair = metric in PAIR_METRICS
    if per_pair:
        # the value repeats on every label row of a pair: keep one per pair
        first: Dict[str, Tuple[float, float]] = {}
        for key in shared:
            first.setdefault(key[0], (va[key], vb[key]))
        items = [((POOLED_LABEL,), v) for v in first.values()]
    else:
        # a union row repeats its labels' voxels: it is its own group, outside the pooled "all"
        items = [((key[1],) if key[1] in unions else (key[1], POOLED_LABEL), (va[key], vb[key])) for key in shared]
    finite = [(groups, a, b) for groups, (a, b) in items if not (math.isnan(a) or math.isnan(b))]
    dropped = len(items) - len(finite)
    if only or dropped:
        warnings.warn(
            f"{who}: {only} (pair, label) row(s) appear in only one file and {dropped} "
            f"{'pair(s)' if per_pair else 'row(s)'} have a NaN or empty value; they are left out",
            UserWarning,
            stacklevel=3,
        )
    labels = sorted({g for groups, _, _ in finite for g in groups if g != POOLED_LABEL}, key=natural_key)
    rows = []
    for label in labels + [POOLED_LABEL]:
        a = np.asarray([x for groups, x, _ in finite if label in groups], dtype=np.float64)
        b = np.asarray([y for groups, _, y in finite if label in groups], dtype=np.float64)
        rows.append({"metric": metric, "label": label, **_test(a, b)})
    return rows


def format_table(rows: Sequence[Dict[str, object]], csv_a: str = "a", csv_b: str = "b") -> str:
    """A fixed-width text table of :func:`compare`'s rows, with a legend naming the two files."""
    head = ("label", "n", "mean_a", "mean_b", "mean_diff", "median_diff", "p_value")
    lines = []
    if rows:
        lines.append(f"metric {rows[0]['metric']}: a = {csv_a}, b = {csv_b}, differences are b - a")
    cells = [head] + [tuple(str(r[h]) if h in ("label", "n") else _short(r[h]) for h in head) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(head))]
    for row in cells:
        lines.append("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def _short(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "nan"
    return f"{float(value):.4g}"


__all__ = [
    "COMPARE_COLUMNS",
    "COMPARE_RUNS_COLUMNS",
    "compare",
    "compare_runs",
    "format_table",
    "read_metric",
    "read_union_labels",
]
