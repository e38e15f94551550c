"""tfreg.evaluation.compare: union rows outside the pooled ``all``, and one baseline against several runs
(references: scipy.stats.wilcoxon on the paired differences computed here)."""

import csv

import numpy as np
import pytest
from scipy.stats import wilcoxon

from tfreg.evaluation.compare import COMPARE_RUNS_COLUMNS, compare, compare_runs, read_union_labels

LABELS = ("3", "4", "5", "L543")


def write_run(path, dice):
    """An evaluation CSV of 9 pairs x (3, 4, 5, union L543); ``dice``: (9, 4) values in that label order."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["pair", "label", "union_of", "dice", "folding_fraction"])
        for p in range(9):
            for k, label in enumerate(LABELS):
                union = "3;4;5" if label == "L543" else ""
                w.writerow([f"pair_{p}", label, union, repr(float(dice[p, k])), repr(0.001 * p)])
    return str(path)


def runs(tmp_path):
    rng = np.random.default_rng(7)
    base = rng.uniform(0.85, 0.95, (9, 4))
    a = base + rng.normal(0.01, 0.01, (9, 4))
    b = base + rng.normal(-0.005, 0.02, (9, 4))
    files = [write_run(tmp_path / f"{n}.csv", d) for n, d in (("rigid", base), ("us", a), ("ws", b))]
    return files, [base, a, b]


def test_union_rows_are_their_own_label_and_not_in_all(tmp_path):
    (base_csv, run_csv, _), (base, run, _) = runs(tmp_path)
    assert read_union_labels(base_csv) == {"L543"}
    rows = {r["label"]: r for r in compare(base_csv, run_csv, "dice")}
    assert list(rows) == ["3", "4", "5", "L543", "all"]
    diff = run - base
    assert rows["L543"]["n"] == 9
    assert rows["L543"]["p_value"] == pytest.approx(wilcoxon(diff[:, 3]).pvalue)
    # "all" pools the 27 vertebra rows only
    assert rows["all"]["n"] == 27
    assert rows["all"]["p_value"] == pytest.approx(wilcoxon(diff[:, :3].ravel()).pvalue)
    assert rows["all"]["mean_diff"] == pytest.approx(diff[:, :3].mean())


def test_compare_runs_each_against_the_baseline(tmp_path):
    files, values = runs(tmp_path)
    out = tmp_path / "cmp.csv"
    rows = compare_runs(files[0], files[1:], "dice", output=str(out))
    assert [(r["run"], r["label"]) for r in rows] == [(f, label) for f in files[1:] for label in LABELS + ("all",)]
    for run_file, run in zip(files[1:], values[1:]):
        mine = {r["label"]: r for r in rows if r["run"] == run_file}
        for k, label in enumerate(LABELS):
            d = run[:, k] - values[0][:, k]
            ref = wilcoxon(d)
            assert mine[label]["baseline"] == files[0]
            assert mine[label]["median_diff"] == pytest.approx(np.median(d))
            assert mine[label]["wilcoxon_statistic"] == pytest.approx(ref.statistic)
            assert mine[label]["p_value"] == pytest.approx(ref.pvalue)
        # the same numbers as the two-file comparison
        single = compare(files[0], run_file, "dice")
        assert [r["p_value"] for r in single] == pytest.approx([mine[r["label"]]["p_value"] for r in single])
    with open(out, newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames) == COMPARE_RUNS_COLUMNS
        assert len(list(reader)) == 10
    # a per-pair metric: one value per pair, one "all" row per run
    per_pair = compare_runs(files[0], files[1:], "folding_fraction")
    assert [(r["run"], r["label"], r["n"]) for r in per_pair] == [(files[1], "all", 9), (files[2], "all", 9)]


def test_compare_runs_errors(tmp_path):
    files, _ = runs(tmp_path)
    with pytest.raises(ValueError, match="at least one run"):
        compare_runs(files[0], [], "dice")
    with pytest.raises(ValueError, match=r"us.csv is given twice"):
        compare_runs(files[0], [files[1], files[1]], "dice")
    with pytest.raises(ValueError, match=r"rigid.csv is given twice"):
        compare_runs(files[0], [files[1], files[0]], "dice")
    with pytest.raises(FileExistsError, match="is the input run 2"):
        compare_runs(files[0], files[1:], "dice", output=files[2], overwrite=True)
