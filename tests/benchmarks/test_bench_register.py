"""benchmarks/bench_register.py at a tiny size: SimpleITK's transforms as tfreg DDFs, the scores, one run of
every method on a 32^3 crop of the brain scan (one pair, a few iterations) and the table's rows.

The full benchmark (80x96x112, minutes per pair) is not run here.
"""

import numpy as np
import pytest
import SimpleITK as sitk
from scipy import ndimage

from tests.benchmarks.script_loader import load_benchmark

bench = load_benchmark("bench_register")


def _grid(shape):
    return np.stack(np.meshgrid(*[np.arange(s) for s in shape], indexing="ij"), axis=-1)


def test_a_simpleitk_transform_becomes_the_ddf_that_resamples_like_simpleitk():
    rng = np.random.default_rng(0)
    moving = ndimage.gaussian_filter(rng.random((12, 14, 10)), 1.5).astype(np.float32)
    reference = bench.to_sitk(moving)
    assert reference.GetSize() == (12, 14, 10)  # SimpleITK index (x, y, z) = array axes (i, j, k)
    translation = sitk.TranslationTransform(3, (1.0, -2.0, 0.5))
    np.testing.assert_allclose(
        bench.transform_to_ddf(translation, reference), np.broadcast_to([1.0, -2.0, 0.5], (12, 14, 10, 3))
    )
    # an affine map that is not symmetric in the axes: x' = x + 0.1 y, y' = 0.9 y, z' = z + 1
    affine = sitk.AffineTransform(3)
    affine.SetMatrix((1.0, 0.1, 0.0, 0.0, 0.9, 0.0, 0.0, 0.0, 1.0))
    affine.SetTranslation((0.0, 0.0, 1.0))
    ddf = bench.transform_to_ddf(affine, reference)
    grid = _grid((12, 14, 10))
    np.testing.assert_allclose(ddf[..., 0], 0.1 * grid[..., 1], atol=1e-5)
    np.testing.assert_allclose(ddf[..., 1], -0.1 * grid[..., 1], atol=1e-5)
    np.testing.assert_allclose(ddf[..., 2], 1.0, atol=1e-5)
    # SimpleITK's own resampling (linear) equals sampling the array at grid + ddf, away from the edges
    resampled = np.transpose(sitk.GetArrayFromImage(sitk.Resample(reference, reference, affine, sitk.sitkLinear, 0.0)))
    ours = ndimage.map_coordinates(moving, np.moveaxis(grid + ddf, -1, 0), order=1)
    inner = (slice(1, 9), slice(1, 11), slice(1, 8))
    np.testing.assert_allclose(resampled[inner], ours[inner], atol=1e-5)


def test_scores_against_a_direct_count():
    fixed = np.zeros((10, 10, 10), np.int64)
    fixed[2:6, 2:6, 2:6] = 3
    fixed[6:8, 2:8, 2:8] = 5  # clear of the last slice, which the warp replicates
    moving = np.roll(fixed, 1, axis=0)  # moving(x) = fixed(x - e0): the DDF +1 along i undoes it
    pair = {"fixed_label_map": fixed, "moving_label_map": moving}
    identity = bench.score(pair, np.zeros((10, 10, 10, 3), np.float32), [3, 5, 7])
    expected = [2 * np.sum((fixed == v) & (moving == v)) / (np.sum(fixed == v) + np.sum(moving == v)) for v in (3, 5)]
    assert identity["labels"] == 2  # label 7 is absent from the fixed map: not scored
    assert identity["dice"] == pytest.approx(np.mean(expected)) and identity["folding"] == 0.0
    assert identity["hd95"] == pytest.approx(1.0)  # every surface voxel that moved moved by one voxel
    shift = np.zeros((10, 10, 10, 3), np.float32)
    shift[..., 0] = 1.0
    exact = bench.score(pair, shift, [3, 5])
    assert exact["dice"] == 1.0 and exact["hd95"] == 0.0
    folded = shift.copy()
    folded[..., 0] = -2.0 * _grid((10, 10, 10))[..., 0]  # x -> -x along i: det J = -1 everywhere
    assert bench.score(pair, folded, [3, 5])["folding"] == 1.0


def test_overrides_parse_as_json_and_replace_tfreg_settings():
    overrides = bench.parse_overrides(["iterations=[5,3]", "levels=[2,1]", 'model="dvf"', "learning_rate=0.2"])
    assert overrides == {"iterations": (5, 3), "levels": (2, 1), "model": "dvf", "learning_rate": 0.2}
    settings = bench.tfreg_settings("mi", False, overrides)
    assert settings.iterations == (5, 3) and settings.model == "dvf" and settings.loss["image"]["name"] == "mi"
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        bench.parse_overrides(["iterations"])


@pytest.mark.slow
def test_a_tiny_run_has_every_row_with_finite_figures(shared_data):
    # --quick's 32^3 crop: on a 24^3 crop SimpleITK's Mattes-MI affine stage can leave the image (trial)
    methods = [m for m in bench.METHODS if m not in bench.REFERENCES]
    tiny = {"levels": (1,), "iterations": (3,), "affine_iterations": 0}
    results = bench.run_benchmark(methods, bench.MODALITIES, 1, 0, True, log=lambda _: None, overrides=tiny)
    rows = {(r["modality"], r["method"]): r for r in results}
    assert set(rows) == {(m, n) for n, method in bench.METHODS.items() for m in method.modalities}
    for key, r in rows.items():
        assert "error" not in r, (key, r.get("error"))
        assert 0 <= r["dice"] <= 1 and np.isfinite(r["hd95"]) and 0 <= r["folding"] <= 1 and r["seconds"] >= 0, key
        assert r["labels"] > 5 and r["load_before"] >= 0 and r["load_after"] >= 0
    for modality in bench.MODALITIES:  # the known answer is the best; the same deformations in both modalities
        assert rows[modality, "ground-truth"]["dice"] > rows[modality, "identity"]["dice"]
    assert rows["mono", "ground-truth"]["dice"] == rows["multi", "ground-truth"]["dice"]
    assert [s["iterations"] for s in rows["mono", "tfreg-lncc"]["details"]["stages"]] == [3]

    text = bench.table(results, "header")
    for label in ("identity (no registration)", "ground truth (ceiling)", "tfreg_register, LNCC, B-spline 4 vox"):
        assert f"| {label} | " in text
    assert "| SimpleITK Demons | " in text
    assert text.count("| SimpleITK B-spline (MSE / Mattes MI) | ") == 2 and "**multi-modal** (1 pairs)" in text
    assert "not measured" not in text and text.count("- mono:") == 3 and "- multi:" in text


def test_failures_are_rows_and_targets_read_the_means():
    def row(modality, method, dice, seconds=1.0, folding=0.0):
        figures = dict(dice=dice, hd95=1.0, folding=folding, seconds=seconds)
        return dict(modality=modality, method=method, load_before=1.0, load_after=2.0, **figures)

    results = [
        row("mono", "ground-truth", 0.84),
        row("mono", "tfreg-lncc", 0.82, seconds=20.0),
        row("mono", "tfreg-lncc", 0.83, seconds=25.0),
        row("mono", "sitk-demons", 0.83),
        dict(modality="multi", method="sitk-bspline", error="RuntimeError: no", load_before=1.0, load_after=1.0),
        row("multi", "tfreg-mi", 0.7, folding=1e-4),
    ]
    text = bench.table(results)
    assert (
        "| tfreg_register, LNCC, B-spline 4 vox | 0.825 +- 0.007 | 1.00 +- 0.00 | 0.000 +- 0.000 | 22.5 +- 3.5 "
        "| 1.0 / 2.0 |" in text
    )
    assert "| SimpleITK B-spline (MSE / Mattes MI) | - (1 failed [1]) | - | - | - | - |" in text
    assert "- [1] multi sitk-bspline: RuntimeError: no" in text
    assert "- mono: tfreg-lncc Dice >= SimpleITK Demons': NOT met" in text  # 0.825 < 0.83
    assert "- mono: tfreg-lncc Dice within 0.03 of the ceiling: met" in text
    assert "- mono: tfreg-lncc under 30 s per pair: met" in text
    assert "- multi: best tfreg Dice >= SimpleITK Mattes-MI B-spline's + 0.1: not measured" in text
    assert "- no folding (every tfreg DDF): NOT met" in text
