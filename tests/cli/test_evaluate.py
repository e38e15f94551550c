"""tfreg_evaluate (tfreg.cli.evaluate) and its --compare mode (tfreg.evaluation.compare)."""

import csv
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from scipy.stats import wilcoxon

from tests.evaluation.test_evaluate import (
    GEO,
    label_maps,
    read_rows,
    write_label_case,
    write_landmarks,
    write_prediction_dir,
)
from tests.vis._png import png_size
from tfreg.cli.evaluate import main
from tfreg.data.errors import DataError
from tfreg.data.image_io import save_image
from tfreg.evaluation.compare import compare, format_table


# ---------------------------------------------------------------------------------------------- evaluate
def test_help_documents_every_mode(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    for flag in (
        "--pred-dir",
        "--pairs",
        "--compare",
        "--metric",
        "--fixed-label",
        "--warped-label",
        "--moving-label",
        "--ddf",
        "--fixed-landmarks",
        "--warped-landmarks",
        "--fixed-image",
        "--overwrite",
        "--quiet",
        "--summary",
        "--labels",
        "--ddf-units",
        "--ssim",
        "--learn2reg",
    ):
        assert flag in text
    assert "Wilcoxon" in text and "summary" in text


def test_import_does_not_load_tensorflow():
    code = (
        "import sys, tfreg.cli.evaluate, tfreg.evaluation.evaluate, tfreg.evaluation.compare; "
        "assert 'tensorflow' not in sys.modules; assert 'keras' not in sys.modules; "
        "assert not [m for m in sys.modules if m.startswith('tfreg.engine')], 'tfreg.evaluation imports the engine'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})


def test_explicit_files(tmp_path, capsys):
    paths = write_label_case(tmp_path)
    lm = write_landmarks(tmp_path)
    out = tmp_path / "res" / "eval.csv"
    argv = [
        "--fixed-label",
        paths["fixed"],
        "--warped-label",
        paths["warped"],
        "--moving-label",
        paths["moving"],
        "--fixed-landmarks",
        lm["fixed"],
        "--warped-landmarks",
        lm["warped"],
        "--moving-landmarks",
        lm["moving"],
        "--pair-id",
        "case7",
        "-o",
        str(out),
    ]
    assert main(argv) == 0
    rows = read_rows(out)
    assert [(r["pair"], r["label"]) for r in rows] == [("case7", "1"), ("case7", "2")]
    assert float(rows[0]["dice"]) == pytest.approx(16 / 35)
    assert float(rows[1]["dice_before"]) == pytest.approx(0.5)
    assert float(rows[0]["tre_mean"]) == pytest.approx(2.25) and float(rows[0]["robustness"]) == 0.5
    summary = {(r["metric"], r["label"]): r for r in read_rows(tmp_path / "res" / "eval_summary.csv")}
    assert float(summary["dice", "all"]["mean"]) == pytest.approx((16 / 35 + 0.75) / 2)
    captured = capsys.readouterr()
    assert "dice" in captured.out and "eval_summary.csv" in captured.err

    # an existing output is refused (exit 1, message on stderr), then replaced with --overwrite
    assert main(argv) == 1
    assert "already exists; pass --overwrite" in capsys.readouterr().err
    assert main(argv + ["--overwrite", "--quiet", "--labels", "2"]) == 0
    assert [r["label"] for r in read_rows(out)] == ["2"]
    assert capsys.readouterr().out == ""


def test_pred_dir_and_pairs_csv(tmp_path):
    write_prediction_dir(str(tmp_path / "pred"))
    out = tmp_path / "pred.csv"
    assert main(["--pred-dir", str(tmp_path / "pred"), "-o", str(out), "-q", "--no-summary"]) == 0
    assert [(r["pair"], r["label"]) for r in read_rows(out)] == [("pair_2", "0"), ("pair_2", "1"), ("pair_10", "0")]
    assert not os.path.exists(tmp_path / "pred_summary.csv")

    write_label_case(tmp_path)
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows([["pair", "fixed_label", "warped_label"], ["x", "fixed.nii.gz", "warped.nii.gz"]])
    out2 = tmp_path / "pairs_eval.csv"
    summary = tmp_path / "s.csv"
    assert main(["--pairs", str(tmp_path / "pairs.csv"), "-o", str(out2), "--summary", str(summary), "-q"]) == 0
    assert float(read_rows(out2)[1]["dice"]) == pytest.approx(0.75)
    assert summary.exists()


def test_bad_input_exit_status_and_message(tmp_path, capsys):
    paths = write_label_case(tmp_path, moving=False)
    assert (
        main(
            [
                "--fixed-label",
                paths["fixed"],
                "--warped-label",
                str(tmp_path / "missing.nii.gz"),
                "-o",
                str(tmp_path / "o.csv"),
                "-q",
            ]
        )
        == 1
    )
    err = capsys.readouterr().err
    assert err.startswith("tfreg_evaluate: error:") and "missing.nii.gz does not exist" in err
    assert main(["--fixed-label", paths["fixed"], "-o", str(tmp_path / "o.csv")]) == 1
    assert "warped_label is not" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv,match",
    [
        ([], "nothing to do"),
        (["--pred-dir", "a", "--pairs", "b.csv"], "choose one mode"),
        (["--pred-dir", "a", "--fixed-label", "f"], r"choose one mode.*--fixed-label"),
        (["--compare", "a.csv", "b.csv"], "--compare needs --metric"),
        (["--pred-dir", "a", "--metric", "dice"], "--metric is only used with --compare"),
        (["--compare", "a.csv", "--metric", "dice"], "--compare needs at least two evaluation CSVs"),
        (
            ["--compare", "a.csv", "b.csv", "--metric", "dice", "--union-label", "L543"],
            "--union-label only work",
        ),
        (
            ["--compare", "a.csv", "b.csv", "--metric", "dice", "--jacobian-figure", "j.png"],
            "--jacobian-figure only work",
        ),
        (["--pred-dir", "a", "--jacobian-mask", "moving"], "invalid choice: 'moving'"),
        (["--pred-dir", "a", "--ssim", "box"], "invalid choice: 'box'"),
        (["--compare", "a.csv", "b.csv", "--metric", "dice", "--ssim", "global"], "--ssim only work"),
    ],
)
def test_usage_errors(argv, match, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert pytest.importorskip("re").search(match, capsys.readouterr().err)


def test_macjnet_columns_from_a_prediction_folder(tmp_path, capsys):
    """--ssim global on a tfreg_predict folder: ssim_global replaces ssim; nmi_pct, folding_permille, recall
    and precision are there with the values NumPy gives on the folder's files."""
    from tests.evaluation.test_evaluate_macjnet import numpy_global_ssim, numpy_nmi_pct
    from tfreg.data.image_io import read_image

    root = tmp_path / "pred"
    write_prediction_dir(str(root))
    # a warped image that differs from the fixed one (the fixture copies it), and a field that folds
    rng = np.random.default_rng(4)
    fixed, _ = read_image(str(root / "pair_2" / "fixed_image.nii.gz"))
    warped = (0.7 * fixed + 0.1 * rng.random(fixed.shape)).astype(np.float32)
    save_image(warped, root / "pair_2" / "pred_fixed_image.nii.gz", GEO)
    ddf = np.zeros(fixed.shape + (3,), np.float32)
    ddf[:4, ..., 0] = -1.5 * np.arange(4, dtype=np.float32)[:, None, None]  # det J = -0.5 at i = 0..2 (central diff.)
    save_image(ddf, root / "pair_2" / "ddf.nii.gz", GEO)
    out = tmp_path / "macjnet.csv"
    assert main(["--pred-dir", str(root), "--ssim", "global", "-o", str(out)]) == 0
    assert "ssim_global" in capsys.readouterr().out  # the printed summary lists the new columns
    rows = {(r["pair"], r["label"]): r for r in read_rows(out)}
    header = list(next(iter(rows.values())))
    assert "ssim" not in header and "ssim_before" not in header
    for column in ("recall", "precision", "folding_permille", "nmi_pct", "ssim_global", "ssim_global_before"):
        assert column in header
    row = rows["pair_2", "0"]
    assert float(row["ssim_global"]) == pytest.approx(numpy_global_ssim(fixed, warped), rel=1e-10)
    assert float(row["nmi_pct"]) == pytest.approx(numpy_nmi_pct(fixed, warped), rel=1e-10)
    u = ddf.astype(np.float64)
    jac = np.stack([np.stack(np.gradient(u[..., c]), axis=-1) for c in range(3)], axis=-2) + np.eye(3)
    det = np.linalg.det(jac)
    assert float(row["folding_permille"]) == pytest.approx(1000 * np.mean(det < 0))
    assert float(row["folding_permille"]) > 0
    assert float(row["recall"]) == pytest.approx(64 / 216) and float(row["precision"]) == 1.0
    assert float(rows["pair_10", "0"]["folding_permille"]) == 0.0 and float(rows["pair_10", "0"]["nmi_pct"]) == (
        pytest.approx(100.0)
    )


# ---------------------------------------------------------------------------------------------- compare
def write_eval_csv(path, rows, columns=("pair", "label", "dice", "tre_mean")):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if r.get(c) is None else r[c] for c in columns])


def compare_fixture(tmp_path):
    """Two evaluations of 8 pairs x 2 labels; b has one extra row and a NaN, a has an empty cell."""
    rng = np.random.default_rng(3)
    a_rows, b_rows = [], []
    for p in range(8):
        tre_a, tre_b = rng.uniform(2, 6), rng.uniform(1, 5)
        for label in ("1", "2"):
            da = float(rng.uniform(0.6, 0.8))
            db = float(da + rng.normal(0.03, 0.02))
            a_rows.append({"pair": f"pair_{p}", "label": label, "dice": da, "tre_mean": tre_a})
            b_rows.append({"pair": f"pair_{p}", "label": label, "dice": db, "tre_mean": tre_b})
    b_rows[3]["dice"] = "nan"  # pair_1 label 2: undefined in b
    a_rows[5]["dice"] = None  # pair_2 label 2: empty cell in a
    b_rows.append({"pair": "pair_99", "label": "1", "dice": 0.1, "tre_mean": 1.0})
    write_eval_csv(tmp_path / "a.csv", a_rows)
    write_eval_csv(tmp_path / "b.csv", b_rows)
    return a_rows, b_rows


def _expected(a_rows, b_rows, metric, keep):
    a = np.array([float(r[metric]) for r in a_rows if keep(r)])
    b = np.array([float(r[metric]) for r in b_rows[: len(a_rows)] if keep(r)])
    return a, b


def test_compare_against_scipy_wilcoxon(tmp_path):
    a_rows, b_rows = compare_fixture(tmp_path)
    with pytest.warns(UserWarning, match=r"1 \(pair, label\) row\(s\) appear in only one file and 2 row\(s\)"):
        rows = compare(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "dice", output=str(tmp_path / "c.csv"))
    assert [r["label"] for r in rows] == ["1", "2", "all"]
    bad = {("pair_1", "2"), ("pair_2", "2")}
    for row, keep in (
        (rows[0], lambda r: r["label"] == "1"),
        (rows[1], lambda r: r["label"] == "2" and (r["pair"], r["label"]) not in bad),
        (rows[2], lambda r: (r["pair"], r["label"]) not in bad),
    ):
        a, b = _expected(a_rows, b_rows, "dice", keep)
        ref = wilcoxon(b - a)
        assert row["n"] == a.size
        assert row["mean_a"] == pytest.approx(a.mean()) and row["mean_b"] == pytest.approx(b.mean())
        assert row["mean_diff"] == pytest.approx((b - a).mean())
        assert row["median_diff"] == pytest.approx(np.median(b - a))
        assert row["p_value"] == pytest.approx(ref.pvalue)
        assert row["wilcoxon_statistic"] == pytest.approx(ref.statistic)
    assert rows[1]["n"] == 6 and rows[2]["n"] == 14
    written = read_rows(tmp_path / "c.csv")
    assert float(written[2]["p_value"]) == pytest.approx(rows[2]["p_value"])
    table = format_table(rows, "a.csv", "b.csv")
    assert "b - a" in table and table.splitlines()[1].split()[:2] == ["label", "n"]


def test_compare_per_pair_metric_counts_each_pair_once(tmp_path):
    a_rows, b_rows = compare_fixture(tmp_path)
    with pytest.warns(UserWarning):
        rows = compare(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "tre_mean")
    assert [r["label"] for r in rows] == ["all"]
    a, b = _expected(a_rows, b_rows, "tre_mean", lambda r: r["label"] == "1")
    assert rows[0]["n"] == 8
    assert rows[0]["mean_diff"] == pytest.approx((b - a).mean())
    assert rows[0]["p_value"] == pytest.approx(wilcoxon(b - a).pvalue)


def test_compare_errors(tmp_path):
    compare_fixture(tmp_path)
    with pytest.raises(DataError, match=r"a.csv: no column 'hd95'; the metric columns there are: dice, tre_mean"):
        compare(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "hd95")
    write_eval_csv(tmp_path / "other.csv", [{"pair": "zzz", "label": "1", "dice": 0.5, "tre_mean": 1.0}])
    with pytest.raises(DataError, match=r"a.csv and .*other.csv share no \(pair, label\) row"):
        compare(str(tmp_path / "a.csv"), str(tmp_path / "other.csv"), "dice")
    (tmp_path / "c.csv").write_text("x")
    with pytest.raises(FileExistsError, match="c.csv already exists"):
        compare(str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "dice", output=str(tmp_path / "c.csv"))


def test_compare_cli_prints_table(tmp_path, capsys):
    compare_fixture(tmp_path)
    out = tmp_path / "cmp.csv"
    code = main(["--compare", str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "--metric", "dice", "-o", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert "p_value" in captured.out and "all" in captured.out
    # warnings are printed as one plain line each
    assert "tfreg_evaluate: warning: compare dice: 1 (pair, label) row(s) appear in only one file" in captured.err
    assert [r["label"] for r in read_rows(out)] == ["1", "2", "all"]
    assert (
        main(
            [
                "--compare",
                str(tmp_path / "a.csv"),
                str(tmp_path / "b.csv"),
                "--metric",
                "nope",
                "-o",
                str(tmp_path / "x.csv"),
            ]
        )
        == 1
    )
    assert "no column 'nope'" in capsys.readouterr().err
    assert not math.isnan(float(read_rows(out)[2]["p_value"]))


def test_compare_identical_files_p_one(tmp_path, capsys):
    """No difference at all (one pair per label included): statistic 0 and p = 1, no crash."""
    rows = [
        {"pair": "p0", "label": "1", "dice": 0.5, "tre_mean": 1.0},
        {"pair": "p0", "label": "2", "dice": 0.6, "tre_mean": 1.0},
        {"pair": "p1", "label": "2", "dice": 0.7, "tre_mean": 2.0},
    ]
    write_eval_csv(tmp_path / "a.csv", rows)
    out = compare(str(tmp_path / "a.csv"), str(tmp_path / "a.csv"), "dice")
    assert [(r["label"], r["n"], r["mean_diff"], r["p_value"]) for r in out] == [
        ("1", 1, 0.0, 1.0),
        ("2", 2, 0.0, 1.0),
        ("all", 3, 0.0, 1.0),
    ]


def test_empty_label_warning_on_stderr(tmp_path, capsys):
    paths = write_label_case(tmp_path, moving=False)
    out = tmp_path / "o.csv"
    assert (
        main(
            [
                "--fixed-label",
                paths["fixed"],
                "--warped-label",
                paths["warped"],
                "--labels",
                "1,5",
                "-o",
                str(out),
                "-q",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "tfreg_evaluate: warning: pair 'pair', label 5: the fixed and warped label have no foreground" in err
    rows = read_rows(out)
    assert rows[1]["label"] == "5" and float(rows[1]["dice"]) == 1.0 and rows[1]["hd"] == "nan"


def test_an_output_that_is_an_input_is_refused_even_with_overwrite(tmp_path, capsys):
    """Data loss: ``-o`` equal to the DDF (with --overwrite) turned the DDF into CSV text."""
    import hashlib

    paths = write_label_case(tmp_path)
    ddf = tmp_path / "ddf.nii.gz"
    save_image(np.zeros(label_maps()[0].shape + (3,), np.float32), str(ddf), GEO)
    before = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in [str(ddf), *paths.values()]}
    base = ["--fixed-label", paths["fixed"], "--warped-label", paths["warped"], "--ddf", str(ddf), "--overwrite", "-q"]
    for out in (str(ddf), paths["fixed"]):
        assert main(base + ["-o", out]) == 1
        assert "would destroy the input" in capsys.readouterr().err
    assert main(base + ["-o", str(tmp_path / "e.csv"), "--summary", paths["warped"]]) == 1
    assert "is the input" in capsys.readouterr().err
    after = {p: hashlib.sha256(open(p, "rb").read()).hexdigest() for p in before}
    assert after == before
    # the pairs CSV is an input too
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows([["pair", "fixed_label", "warped_label"], ["x", "fixed.nii.gz", "warped.nii.gz"]])
    text = (tmp_path / "pairs.csv").read_text()
    pairs_argv = ["--pairs", str(tmp_path / "pairs.csv"), "-o", str(tmp_path / "pairs.csv"), "--overwrite", "-q"]
    assert main(pairs_argv) == 1
    assert (tmp_path / "pairs.csv").read_text() == text


def test_compare_output_that_is_an_input_is_refused(tmp_path, capsys):
    compare_fixture(tmp_path)
    a = tmp_path / "a.csv"
    text = a.read_text()
    assert main(["--compare", str(a), str(tmp_path / "b.csv"), "--metric", "dice", "-o", str(a), "--overwrite"]) == 1
    assert "is the input csv_a" in capsys.readouterr().err
    assert a.read_text() == text


# ---------------------------------------------------------------------------------------------- union, figure
def test_union_label_and_jacobian_figure(tmp_path, capsys):
    """--union-label adds a row per pair for the union of its label_<k> masks; --jacobian-figure writes
    a PNG. The union's Dice is checked against NumPy on the OR of the masks written."""
    write_prediction_dir(str(tmp_path / "pred"))
    out, figure = tmp_path / "e.csv", tmp_path / "jac.png"
    argv = ["--pred-dir", str(tmp_path / "pred"), "-o", str(out), "--union-label", "L01"]
    assert main(argv + ["--jacobian-figure", str(figure), "--jacobian-mask", "fixed"]) == 0
    assert str(figure) in capsys.readouterr().err
    rows = read_rows(out)
    assert [(r["pair"], r["label"], r["union_of"]) for r in rows] == [
        ("pair_2", "0", ""),
        ("pair_2", "1", ""),
        ("pair_2", "L01", "0;1"),
        ("pair_10", "0", ""),
        ("pair_10", "L01", "0"),
    ]
    fixed, warped, _ = label_maps()
    f, w = fixed > 0, warped > 0  # pair_2 holds labels 1 and 2 of the maps: their union is every label
    assert float(rows[2]["dice"]) == pytest.approx(2 * np.count_nonzero(f & w) / (f.sum() + w.sum()))
    assert float(rows[2]["jac_det_mean_in_label"]) == pytest.approx(1.0)  # the folder's DDF is zero
    assert png_size(figure)[0] > 0 and os.path.getsize(figure) > 0
    summary = {(r["metric"], r["label"]): r for r in read_rows(tmp_path / "e_summary.csv")}
    assert summary["dice", "L01"]["n"] == "2" and summary["dice", "all"]["n"] == "3"


def test_union_and_figure_bad_input_exit_1(tmp_path, capsys):
    write_prediction_dir(str(tmp_path / "pred"))
    out = tmp_path / "e.csv"
    base = ["--pred-dir", str(tmp_path / "pred"), "-o", str(out), "-q"]
    assert main(base + ["--union-label", "1"]) == 1
    assert "union_label (--union-label) '1' is already the name of a label of pair 'pair_2'" in capsys.readouterr().err
    assert main(base + ["--jacobian-figure", str(tmp_path / "no" / "j.png")]) == 1
    assert "--jacobian-figure" in capsys.readouterr().err
    assert not out.exists()


def test_compare_one_baseline_with_several_runs(tmp_path, capsys):
    compare_fixture(tmp_path)
    rng = np.random.default_rng(11)
    c_rows = [
        {"pair": f"pair_{p}", "label": label, "dice": float(rng.uniform(0.6, 0.9)), "tre_mean": 1.0}
        for p in range(8)
        for label in ("1", "2")
    ]
    write_eval_csv(tmp_path / "c.csv", c_rows)
    out = tmp_path / "many.csv"
    files = [str(tmp_path / n) for n in ("a.csv", "b.csv", "c.csv")]
    assert main(["--compare", *files, "--metric", "dice", "-o", str(out)]) == 0
    printed = capsys.readouterr().out
    assert printed.count("metric dice: a = ") == 2 and f"b = {files[2]}" in printed
    written = read_rows(out)
    assert [(r["run"], r["label"]) for r in written] == [(f, label) for f in files[1:] for label in ("1", "2", "all")]
    assert {r["baseline"] for r in written} == {files[0]}
    with pytest.warns(UserWarning, match="1 row"):  # a's empty cell
        two = compare(files[0], files[2], "dice")
    assert [float(r["p_value"]) for r in written[3:]] == pytest.approx([r["p_value"] for r in two])
