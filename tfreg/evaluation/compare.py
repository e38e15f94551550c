"""Paired comparison of two evaluation CSVs (``tfreg_evaluate --compare a.csv b.csv --metric dice``).

Rows of the two files are matched by ``(pair, label)``; for each label and over all labels the paired
differences ``d = b - a`` (second file minus first) are summarised by their mean and median and tested
with the Wilcoxon signed-rank test (``scipy.stats.wilcoxon``, two-sided, SciPy's defaults: zero
differences dropped, exact distribution for small samples; identical values give statistic 0 and
p = 1). Per-pair metrics (Jacobian, landmark and
image columns, which repeat on every label row of a pair) are compared once per pair, in one ``all``
row.
"""

from __future__ import annotations

import csv
import math
import os
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.evaluation.evaluate import PAIR_METRICS, _check_outputs, natural_key, write_csv

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
        One row per label (natural order) and a final ``all`` row; for per-pair metrics only ``all``.
        ``mean_diff``/``median_diff`` are of ``b - a``; ``p_value`` is the two-sided Wilcoxon p-value.

    Raises:
        DataError: a missing metric column, or no (pair, label) row shared by the two files.
    """
    _check_outputs([output], overwrite, {"csv_a": csv_a, "csv_b": csv_b})
    va = read_metric(csv_a, metric)
    vb = read_metric(csv_b, metric)
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
        items = [(("all",), v) for v in first.values()]
    else:
        items = [((key[1], "all"), (va[key], vb[key])) for key in shared]
    finite = [(groups, a, b) for groups, (a, b) in items if not (math.isnan(a) or math.isnan(b))]
    dropped = len(items) - len(finite)
    if only or dropped:
        warnings.warn(
            f"compare {metric}: {only} (pair, label) row(s) appear in only one file and {dropped} "
            f"{'pair(s)' if per_pair else 'row(s)'} have a NaN or empty value; they are left out",
            UserWarning,
            stacklevel=2,
        )
    labels = sorted({g for groups, _, _ in finite for g in groups if g != "all"}, key=natural_key)
    rows = []
    for label in labels + ["all"]:
        a = np.asarray([x for groups, x, _ in finite if label in groups], dtype=np.float64)
        b = np.asarray([y for groups, _, y in finite if label in groups], dtype=np.float64)
        rows.append({"metric": metric, "label": label, **_test(a, b)})
    if output:
        write_csv(output, COMPARE_COLUMNS, rows)
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


__all__ = ["COMPARE_COLUMNS", "compare", "format_table", "read_metric"]
