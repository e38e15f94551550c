"""tfreg.evaluation.evaluate with learn2reg (``tfreg_evaluate --learn2reg``): Learn2Reg's task-3 numbers per pair
and over the pairs, against values derived by hand.

Geometry: test_evaluate's shape (16, 10, 10) and spacing (2.0, 0.5, 1.0) mm. Every structure is a 4^3 box.

Shifting a 4^3 box by one voxel along an axis of spacing ``s`` gives Dice 2 * 48 / 128 = 0.75. Of the 56
face-connected surface voxels of each box, 36 lie on the other box's surface too (distance 0), the 16 of the
face left behind are ``s`` from the other box's new face, and the 4 in the middle of the leading face lie inside
the other box, ``min(s, d)`` from its surface (``d``: the smaller spacing of the two other axes; those voxels are
one voxel from the box's sides). Pooled over both directions: 72 zeros, 8 values ``min(s, d)`` and 32 values
``s``, the largest. The 95th percentile (linear interpolation at position 0.95 * 111 = 105.45 of the 112 sorted
values) falls among the last 32: HD95 = ``s``, 0.5 mm for a shift along j and 1 mm along k. An unmoved box has
Dice 1 and HD95 0.

DDFs: ``u = M x`` has the same det J everywhere, so both SDlogJs are 0. ``u_i = c i^2 / 2`` (i the first voxel
index, other components 0) has central differences ``c i`` exactly, so det J = 1 + c i; after cropping 2 voxels
per side (i = 2..13, every i on the same number of voxels) SDlogJ is the population std of log(1 + c i) over
those i, and Learn2Reg's of log(4 + c i).
"""

import math
import re
import statistics

import numpy as np
import pytest

from tests.evaluation.test_evaluate import GEO, SHAPE, box, linear_ddf, read_rows
from tfreg.cli.evaluate import main
from tfreg.data.image_io import save_image
from tfreg.evaluation.evaluate import (
    LEARN2REG_COLUMNS,
    LEARN2REG_STATISTICS,
    PairSpec,
    default_learn2reg_path,
    evaluate,
)
from tfreg.metrics import EmptyMaskWarning

C = 0.05  # curvature of the quadratic field
CROPPED = range(2, SHAPE[0] - 2)  # first-axis indices left by the 2-voxel crop
SDLOGJ = statistics.pstdev([math.log(1 + C * i) for i in CROPPED])
SDLOGJ_L2R = statistics.pstdev([math.log(4 + C * i) for i in CROPPED])

BOX_1 = ((2, 2, 2), (5, 5, 5))
BOX_2 = ((9, 2, 5), (12, 5, 8))


def shifted(corners, axis):
    lo, hi = (list(c) for c in corners)
    lo[axis] += 1
    hi[axis] += 1
    return tuple(lo), tuple(hi)


def label_map(*boxes):
    """Integer map with label n + 1 in the n-th box (None: label absent)."""
    out = np.zeros(SHAPE, dtype=np.float32)
    for value, corners in enumerate(boxes, start=1):
        if corners is not None:
            out[box(*corners)] = value
    return out


def quadratic_ddf():
    i = np.arange(SHAPE[0], dtype=np.float64)[:, None, None]
    ddf = np.zeros(SHAPE + (3,))
    ddf[..., 0] = C * i**2 / 2
    return ddf


def write(folder, name, array):
    path = str(folder / f"{name}.nii.gz")
    save_image(array.astype(np.float32), path, GEO)
    return path


def two_pairs(tmp_path):
    """Pair a: label 1 shifted along j, label 2 unmoved, label 3 absent from the moving map (not counted),
    label 4 absent from the fixed map (not counted); affine DDF. Pair b (no moving map): labels 1 and 2
    shifted along k and j; quadratic DDF."""
    box_3, box_4 = ((13, 7, 1), (14, 8, 2)), ((13, 7, 6), (14, 8, 7))
    a = PairSpec(
        "a",
        fixed_label=write(tmp_path, "a_fixed", label_map(BOX_1, BOX_2, box_3, None)),
        warped_label=write(tmp_path, "a_warped", label_map(shifted(BOX_1, 1), BOX_2, shifted(box_3, 2), box_4)),
        moving_label=write(tmp_path, "a_moving", label_map(BOX_1, BOX_2, None, box_4)),
        ddf=write(tmp_path, "a_ddf", linear_ddf([[0.1, 0.05, 0.0], [0.0, -0.2, 0.0], [0.02, 0.0, 0.3]], SHAPE)),
    )
    b = PairSpec(
        "b",
        fixed_label=write(tmp_path, "b_fixed", label_map(BOX_1, BOX_2)),
        warped_label=write(tmp_path, "b_warped", label_map(shifted(BOX_1, 2), shifted(BOX_2, 1))),
        ddf=write(tmp_path, "b_ddf", quadratic_ddf()),
    )
    return [a, b]


def as_numbers(row):
    return {k: (v if k == "pair" else (float(v) if v != "" else None)) for k, v in row.items()}


def test_learn2reg_per_pair_and_statistics_rows(tmp_path):
    out = tmp_path / "res.csv"
    with pytest.warns(EmptyMaskWarning):  # label 3 of the moving map and label 4 of the fixed map are empty
        result = evaluate(two_pairs(tmp_path), output=str(out), learn2reg=True)
    assert result.learn2reg_path == str(tmp_path / "res_learn2reg.csv") == default_learn2reg_path(str(out))
    per_label = {(r["pair"], r["label"]): r for r in result.rows}
    # the hand-derived per-label values the means are made of
    for key, dice, hd95 in (
        (("a", "1"), 0.75, 0.5),
        (("a", "2"), 1.0, 0.0),
        (("b", "1"), 0.75, 1.0),
        (("b", "2"), 0.75, 0.5),
    ):
        assert per_label[key]["dice"] == pytest.approx(dice) and per_label[key]["hd95"] == pytest.approx(hd95)

    rows = {r["pair"]: r for r in result.learn2reg}
    assert [r["pair"] for r in result.learn2reg] == ["a", "b", *LEARN2REG_STATISTICS]
    a, b = rows["a"], rows["b"]
    assert a["n_labels"] == 2 and b["n_labels"] == 2  # a: labels 3 (not in moving) and 4 (not in fixed) left out
    assert a["dice"] == pytest.approx(0.875) and a["hd95"] == pytest.approx(0.25)
    assert b["dice"] == pytest.approx(0.75) and b["hd95"] == pytest.approx(0.75)
    assert a["sdlogj"] == pytest.approx(0.0, abs=1e-6) and a["sdlogj_l2r"] == pytest.approx(0.0, abs=1e-6)
    assert b["sdlogj"] == pytest.approx(SDLOGJ, rel=1e-4) and b["sdlogj_l2r"] == pytest.approx(SDLOGJ_L2R, rel=1e-4)

    expected = {"dice": (0.875, 0.75), "hd95": (0.25, 0.75), "sdlogj": (0.0, SDLOGJ), "sdlogj_l2r": (0.0, SDLOGJ_L2R)}
    for metric, (va, vb) in expected.items():
        lo, hi = sorted((va, vb))
        assert rows["mean"][metric] == pytest.approx((va + vb) / 2, abs=1e-6)
        assert rows["std"][metric] == pytest.approx(abs(va - vb) / math.sqrt(2), abs=1e-6)  # sample std of two
        assert rows["q30"][metric] == pytest.approx(lo + 0.3 * (hi - lo), abs=1e-6)  # linear interpolation
        assert rows["n"][metric] == 2
    assert all(rows[name].get("n_labels") is None for name in LEARN2REG_STATISTICS)

    # the file holds the same rows, n_labels empty on the statistics rows; the main CSV got sdlogj_l2r
    written = [as_numbers(r) for r in read_rows(result.learn2reg_path)]
    assert list(written[0]) == list(LEARN2REG_COLUMNS)
    for got, want in zip(written, result.learn2reg):
        for column in LEARN2REG_COLUMNS[1:]:
            if want.get(column) is None:
                assert got[column] is None
            else:
                assert got[column] == pytest.approx(want[column], nan_ok=True)
    assert float(read_rows(out)[-1]["sdlogj_l2r"]) == pytest.approx(SDLOGJ_L2R, rel=1e-4)
    summary = {(s["metric"], s["label"]): s for s in read_rows(tmp_path / "res_summary.csv")}
    assert int(summary["sdlogj_l2r", "all"]["n"]) == 2  # one value per pair, as every per-pair column


def test_learn2reg_nan_rules(tmp_path):
    ddf = write(tmp_path, "ddf", linear_ddf(np.zeros((3, 3)), SHAPE))
    fixed = write(tmp_path, "fixed", label_map(BOX_1, BOX_2))
    # pair lost: label 1 vanished in the warp (present in fixed and moving) -> hd95 NaN, dice still counted
    lost = PairSpec("lost", fixed_label=fixed, warped_label=write(tmp_path, "w1", label_map(None, BOX_2)), ddf=ddf)
    # pair none: no label of the fixed map is in the moving map -> nothing counted
    none = PairSpec(
        "none",
        fixed_label=fixed,
        warped_label=fixed,
        moving_label=write(tmp_path, "m0", label_map(None, None, BOX_1)),
        ddf=ddf,
    )
    good = PairSpec("good", fixed_label=fixed, warped_label=fixed, ddf=ddf)
    with pytest.warns((UserWarning, EmptyMaskWarning)) as caught:
        result = evaluate([lost, none, good], learn2reg=True)
    messages = [str(w.message) for w in caught if w.category is UserWarning]
    assert any(re.search(r"pair 'lost': the warped label of label\(s\) 1 is empty.*hd95 is NaN", m) for m in messages)
    assert any(re.search(r"pair 'none': no evaluated label is present.*dice and hd95 are NaN", m) for m in messages)
    assert result.learn2reg_path is None  # no output given: computed, not written
    rows = {r["pair"]: r for r in result.learn2reg}
    assert rows["lost"]["dice"] == pytest.approx(0.5) and math.isnan(rows["lost"]["hd95"])
    assert rows["none"]["n_labels"] == 0 and math.isnan(rows["none"]["dice"]) and math.isnan(rows["none"]["hd95"])
    assert rows["good"]["dice"] == 1.0 and rows["good"]["hd95"] == 0.0
    # statistics over the finite values only, counted in n
    assert rows["n"]["dice"] == 2 and rows["mean"]["dice"] == pytest.approx(0.75)
    assert rows["n"]["hd95"] == 1 and rows["mean"]["hd95"] == 0.0 and math.isnan(rows["std"]["hd95"])
    assert rows["n"]["sdlogj"] == 3 and rows["mean"]["sdlogj"] == pytest.approx(0.0, abs=1e-6)


def test_learn2reg_refusals_before_any_work(tmp_path):
    fixed = write(tmp_path, "fixed", label_map(BOX_1))
    ddf = write(tmp_path, "ddf", linear_ddf(np.zeros((3, 3)), SHAPE))
    out = tmp_path / "o.csv"
    no_ddf = PairSpec("p", fixed_label=fixed, warped_label=fixed)
    with pytest.raises(ValueError, match=r"needs a DDF \(SDlogJ.*in every pair; 1 pair\(s\) have none: 'p'"):
        evaluate([no_ddf], output=str(out), learn2reg=True)
    with pytest.raises(ValueError, match=r"needs labels \(Dice and HD95\) in every pair; 1 pair\(s\) have none: 'q'"):
        evaluate([PairSpec("q", ddf=ddf)], output=str(out), learn2reg=True)
    with pytest.raises(ValueError, match=r"pair 'mean' has the name of a statistics row"):
        evaluate([PairSpec("mean", fixed_label=fixed, warped_label=fixed, ddf=ddf)], output=str(out), learn2reg=True)
    assert not list(tmp_path.glob("o*.csv"))
    evaluate([no_ddf], output=str(out))  # without learn2reg a pair without a DDF is fine

    spec = PairSpec("p", fixed_label=fixed, warped_label=fixed, ddf=ddf)
    existing = tmp_path / "r_learn2reg.csv"
    existing.write_text("keep me")
    with pytest.raises(FileExistsError, match=r"r_learn2reg.csv already exists; pass --overwrite"):
        evaluate([spec], output=str(tmp_path / "r.csv"), learn2reg=True)
    assert existing.read_text() == "keep me" and not (tmp_path / "r.csv").exists()
    evaluate([spec], output=str(tmp_path / "r.csv"), learn2reg=True, overwrite=True)
    assert read_rows(existing)[0]["pair"] == "p"


def test_cli_learn2reg(tmp_path, capsys):
    a, b = two_pairs(tmp_path)
    out = tmp_path / "cli.csv"
    argv = ["--fixed-label", b.fixed_label, "--warped-label", b.warped_label, "--ddf", b.ddf, "--learn2reg"]
    assert main(argv + ["-o", str(out)]) == 0
    printed = capsys.readouterr()
    assert "Learn2Reg" in printed.out and "cli_learn2reg.csv" in printed.err
    mean_line = next(line for line in printed.out.splitlines() if line.startswith("mean "))
    assert [float(v) for v in mean_line.split()[1:]] == pytest.approx([0.75, 0.75, SDLOGJ, SDLOGJ_L2R], rel=1e-3)
    rows = read_rows(tmp_path / "cli_learn2reg.csv")
    assert [r["pair"] for r in rows] == ["pair", *LEARN2REG_STATISTICS]
    assert main(argv + ["-o", str(tmp_path / "quiet.csv"), "--quiet"]) == 0
    assert capsys.readouterr().out == "" and (tmp_path / "quiet_learn2reg.csv").exists()
    # refusals reach the user as one line and exit status 1; --compare does not take the option
    assert main(["--fixed-label", b.fixed_label, "--warped-label", b.warped_label, "--learn2reg", "-o", str(out)]) == 1
    assert "needs a DDF" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        main(["--compare", str(out), str(out), "--metric", "dice", "--learn2reg"])
    assert exc.value.code == 2 and "--learn2reg" in capsys.readouterr().err
