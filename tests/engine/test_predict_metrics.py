"""tfreg.engine.predict_metrics: DeepReg's per-sample metrics and its three metrics CSV tables.

References are hand-computed numbers, NumPy formulas and (when installed) pandas reproducing
DeepReg's ``groupby``/``describe`` code on the ``metrics.csv`` tfreg wrote.
"""

import csv
import math
import os

import numpy as np
import pytest

from tfreg.engine.predict_metrics import COLUMNS, METRIC_COLUMNS, sample_metrics, write_metrics_csvs


def cube(shape, start, size, value=1.0):
    out = np.zeros(shape, dtype=np.float32)
    sl = tuple(slice(s, s + size) for s in start)
    out[sl] = value
    return out


# ---------------------------------------------------------------------------------------------- sample_metrics
def test_ssd_is_mean_squared_difference_hand_case():
    fixed = np.array([[0.0, 1.0], [2.0, 3.0]], dtype=np.float32)
    pred = np.array([[1.0, 1.0], [0.0, 3.5]], dtype=np.float32)
    # squared differences 1, 0, 4, 0.25 -> mean 5.25 / 4
    out = sample_metrics(fixed, pred, None, None)
    assert out["image_ssd"] == pytest.approx(5.25 / 4, abs=1e-12)
    assert math.isnan(out["label_binary_dice"]) and math.isnan(out["label_tre"])
    assert set(out) == set(METRIC_COLUMNS)


def test_ssd_random_matches_numpy():
    rng = np.random.default_rng(0)
    a = rng.random((5, 6, 7)).astype(np.float32)
    b = rng.random((5, 6, 7)).astype(np.float32)
    expected = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    assert sample_metrics(a, b, None, None)["image_ssd"] == pytest.approx(expected, rel=1e-6)


def test_image_ssd_nan_when_images_absent():
    label = cube((6, 6, 6), (1, 1, 1), 2)
    out = sample_metrics(None, None, label, label)
    assert math.isnan(out["image_ssd"])
    assert out["label_binary_dice"] == pytest.approx(1.0)
    assert out["label_tre"] == pytest.approx(0.0)
    # one of the two images missing (conditional model) -> also NaN
    assert math.isnan(sample_metrics(np.ones((2, 2)), None, None, None)["image_ssd"])
    assert math.isnan(sample_metrics(None, np.ones((2, 2)), None, None)["image_ssd"])


def test_dice_two_known_cubes():
    shape = (10, 10, 10)
    fixed = cube(shape, (0, 0, 0), 4)  # 64 voxels
    pred = cube(shape, (2, 0, 0), 4)  # 64 voxels, overlap 2*4*4 = 32
    out = sample_metrics(None, None, fixed, pred)
    assert out["label_binary_dice"] == pytest.approx(2 * 32 / (64 + 64), abs=1e-12)


def test_dice_threshold_at_half_inclusive():
    shape = (8, 8, 8)
    fixed = cube(shape, (0, 0, 0), 4)  # 64 voxels of 1.0
    # the prediction holds soft values: 0.5 exactly counts as foreground, 0.4999 does not
    pred = np.zeros(shape, dtype=np.float32)
    pred[0:4, 0:4, 0:2] = 0.5  # 32 voxels, inside fixed -> foreground
    pred[0:4, 0:4, 2:4] = 0.49  # 32 voxels inside fixed -> background
    pred[4:6, 0:4, 0:4] = 0.75  # 32 voxels outside fixed -> foreground
    # |A| = 64, |B| = 64, |A n B| = 32 -> 0.5
    assert sample_metrics(None, None, fixed, pred)["label_binary_dice"] == pytest.approx(0.5, abs=1e-12)
    # soft fixed label at exactly 0.5 is foreground too
    soft_fixed = fixed * 0.5
    assert sample_metrics(None, None, soft_fixed, fixed)["label_binary_dice"] == pytest.approx(1.0, abs=1e-12)
    # and just under 0.5 it is empty: dice 0 (one empty mask), TRE NaN
    under = fixed * np.float32(0.4999)
    out = sample_metrics(None, None, under, fixed)
    assert out["label_binary_dice"] == pytest.approx(0.0, abs=1e-12)
    assert math.isnan(out["label_tre"])


def test_tre_is_centroid_distance_of_shifted_cubes_in_voxels():
    shape = (12, 12, 12)
    fixed = cube(shape, (1, 2, 3), 3)  # centroid (2, 3, 4)
    pred = cube(shape, (4, 6, 3), 3)  # centroid (5, 7, 4): shift (3, 4, 0) -> distance 5
    out = sample_metrics(None, None, fixed, pred)
    assert out["label_tre"] == pytest.approx(5.0, abs=1e-12)
    assert out["label_binary_dice"] == pytest.approx(0.0, abs=1e-12)  # no overlap


def test_tre_nan_when_a_thresholded_label_is_empty():
    shape = (6, 6, 6)
    fixed = cube(shape, (1, 1, 1), 2)
    empty = np.full(shape, 0.3, dtype=np.float32)  # nonzero but all below the threshold
    for a, b in ((fixed, empty), (empty, fixed), (empty, empty)):
        out = sample_metrics(None, None, a, b)
        assert math.isnan(out["label_tre"])
    # both empty: Dice's convention is 1 (agree), one empty: 0
    assert sample_metrics(None, None, empty, empty)["label_binary_dice"] == pytest.approx(1.0)
    assert sample_metrics(None, None, fixed, empty)["label_binary_dice"] == pytest.approx(0.0)


def test_tre_nan_emits_no_warning():
    import warnings

    shape = (4, 4, 4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        sample_metrics(None, None, np.zeros(shape), cube(shape, (0, 0, 0), 2))


# ---------------------------------------------------------------------------------------------- CSV tables
def make_rows():
    """Three labels (0, 1, 2) on a few pairs, with NaNs, plus an unlabeled block (-1)."""
    rng = np.random.default_rng(42)
    rows = []
    pairs = [[0, 1], [0, 2], [1, 2], [3, 1]]
    for pair in pairs:
        ssd = float(rng.random())
        for label in (0, 1, 2):
            dice_v = float(rng.random())
            tre_v = float(rng.random() * 10)
            rows.append(
                {
                    "image_ssd": ssd,
                    "label_binary_dice": dice_v,
                    "label_tre": tre_v,
                    "pair_index": pair,
                    "label_index": label,
                }
            )
    rows[4]["label_tre"] = math.nan  # an empty thresholded label
    rows[7]["image_ssd"] = math.nan  # conditional model style missing image
    rows[8]["label_tre"] = math.nan
    for pair in ([5, 6], [7, 8]):
        rows.append(
            {
                "image_ssd": float(rng.random()),
                "label_binary_dice": math.nan,
                "label_tre": math.nan,
                "pair_index": pair,
                "label_index": -1,
            }
        )
    return rows


def test_metrics_csv_exact_header_and_cells(tmp_path):
    rows = [
        {"image_ssd": 0.25, "label_binary_dice": 0.5, "label_tre": 2.0, "pair_index": [0, 1], "label_index": 3},
        {"image_ssd": 1.5, "label_binary_dice": math.nan, "label_tre": math.nan, "pair_index": [7], "label_index": -1},
        {
            "image_ssd": 0.125,
            "label_binary_dice": 1.0,
            "label_tre": 0.0,
            "pair_index": np.array([2.0, 4.0, 1.0, 3.0]),
            "label_index": np.float32(0.0),
        },
    ]
    paths = write_metrics_csvs(rows, str(tmp_path))
    assert [p.rsplit("/", 1)[-1] for p in paths] == [
        "metrics.csv",
        "metrics_stats_per_label.csv",
        "metrics_stats_overall.csv",
    ]
    text = (tmp_path / "metrics.csv").read_text()
    lines = text.splitlines()
    assert lines[0] == "image_ssd,label_binary_dice,label_tre,pair_index,label_index"
    assert tuple(lines[0].split(",")) == COLUMNS
    with open(tmp_path / "metrics.csv", newline="") as handle:
        table = list(csv.reader(handle))
    assert table[1] == ["0.25", "0.5", "2.0", "[0, 1]", "3"]
    assert table[2] == ["1.5", "", "", "[7]", "-1"]
    assert table[3] == ["0.125", "1.0", "0.0", "[2, 4, 1, 3]", "0"]
    assert len(table) == 4


def test_metrics_csv_floats_round_trip_exactly(tmp_path):
    rows = make_rows()
    write_metrics_csvs(rows, str(tmp_path))
    with open(tmp_path / "metrics.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == len(rows)
    for got, row in zip(table, rows):
        for m in METRIC_COLUMNS:
            if math.isnan(row[m]):
                assert got[m] == ""
            else:
                assert float(got[m]) == row[m]
        assert got["pair_index"] == "[" + ", ".join(str(i) for i in row["pair_index"]) + "]"
        assert int(got["label_index"]) == row["label_index"]


def test_per_label_and_overall_tables_match_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    rows = make_rows()
    write_metrics_csvs(rows, str(tmp_path))
    df = pd.read_csv(tmp_path / "metrics.csv")
    assert list(df.columns) == list(COLUMNS)
    assert df["pair_index"].iloc[0] == "[0, 1]"
    unlabeled = df[df["label_index"] == -1]
    assert len(unlabeled) == 2 and unlabeled["label_binary_dice"].isna().all() and unlabeled["label_tre"].isna().all()

    # DeepReg's deepreg/predict.py formulas
    metrics = df.drop(columns=["pair_index"])
    grouped = metrics.groupby(["label_index"])
    expected_per_label = pd.concat(
        [grouped.mean().add_suffix("_mean"), grouped.median().add_suffix("_median"), grouped.std().add_suffix("_std")],
        axis=1,
    )
    expected_per_label = expected_per_label.reindex(sorted(expected_per_label.columns), axis=1)
    got_per_label = pd.read_csv(tmp_path / "metrics_stats_per_label.csv", index_col="label_index")
    assert list(got_per_label.columns) == list(expected_per_label.columns)
    assert list(got_per_label.index) == list(expected_per_label.index) == [-1, 0, 1, 2]
    np.testing.assert_allclose(
        got_per_label.to_numpy(), expected_per_label.to_numpy(), rtol=0, atol=1e-12, equal_nan=True
    )
    # label -1 only has image_ssd values
    assert np.isnan(got_per_label.loc[-1, "label_tre_mean"])

    expected_overall = df[list(METRIC_COLUMNS)].describe()
    got_overall = pd.read_csv(tmp_path / "metrics_stats_overall.csv", index_col=0)
    assert list(got_overall.columns) == list(expected_overall.columns)
    assert list(got_overall.index) == list(expected_overall.index)
    np.testing.assert_allclose(got_overall.to_numpy(), expected_overall.to_numpy(), rtol=0, atol=1e-12, equal_nan=True)


def test_single_value_groups_have_nan_std_like_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    rows = [
        {"image_ssd": 0.5, "label_binary_dice": 0.25, "label_tre": 1.0, "pair_index": [0], "label_index": 0},
        {"image_ssd": 0.7, "label_binary_dice": 0.75, "label_tre": 3.0, "pair_index": [0], "label_index": 1},
        {"image_ssd": 0.9, "label_binary_dice": math.nan, "label_tre": math.nan, "pair_index": [1], "label_index": 1},
    ]
    write_metrics_csvs(rows, str(tmp_path))
    got = pd.read_csv(tmp_path / "metrics_stats_per_label.csv", index_col="label_index")
    assert np.isnan(got.loc[0, "image_ssd_std"])
    assert np.isnan(got.loc[1, "label_tre_std"])  # one finite value after dropping NaN
    # hand numbers: label 1 image_ssd mean 0.8, sample std sqrt(0.02)
    assert got.loc[1, "image_ssd_mean"] == pytest.approx(0.8, abs=1e-12)
    assert got.loc[1, "image_ssd_std"] == pytest.approx(math.sqrt(0.02), abs=1e-12)
    assert got.loc[1, "label_binary_dice_median"] == pytest.approx(0.75, abs=1e-12)
    overall = pd.read_csv(tmp_path / "metrics_stats_overall.csv", index_col=0)
    assert overall.loc["count", "label_tre"] == 2
    assert overall.loc["25%", "label_tre"] == pytest.approx(1.5, abs=1e-12)  # linear interpolation
    assert overall.loc["50%", "image_ssd"] == pytest.approx(0.7, abs=1e-12)


def test_tables_without_pandas_hand_numbers(tmp_path):
    rows = [
        {"image_ssd": 1.0, "label_binary_dice": 0.2, "label_tre": 4.0, "pair_index": [0, 1], "label_index": 0},
        {"image_ssd": 2.0, "label_binary_dice": 0.4, "label_tre": 2.0, "pair_index": [0, 2], "label_index": 0},
        {"image_ssd": 4.0, "label_binary_dice": 0.9, "label_tre": 0.0, "pair_index": [1, 2], "label_index": 0},
    ]
    write_metrics_csvs(rows, str(tmp_path))
    with open(tmp_path / "metrics_stats_per_label.csv", newline="") as handle:
        table = list(csv.reader(handle))
    header = table[0]
    assert header == ["label_index"] + sorted(f"{m}_{s}" for m in METRIC_COLUMNS for s in ("mean", "median", "std"))
    values = dict(zip(header, table[1]))
    assert values["label_index"] == "0"
    assert float(values["image_ssd_mean"]) == pytest.approx(7.0 / 3, abs=1e-12)
    assert float(values["image_ssd_median"]) == pytest.approx(2.0, abs=1e-12)
    assert float(values["image_ssd_std"]) == pytest.approx(
        math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2), abs=1e-12
    )
    assert float(values["label_tre_std"]) == pytest.approx(2.0, abs=1e-12)
    with open(tmp_path / "metrics_stats_overall.csv", newline="") as handle:
        overall = list(csv.reader(handle))
    assert overall[0] == ["", "image_ssd", "label_binary_dice", "label_tre"]
    assert [r[0] for r in overall[1:]] == ["count", "mean", "std", "min", "25%", "50%", "75%", "max"]
    by_row = {r[0]: [float(x) for x in r[1:]] for r in overall[1:]}
    assert by_row["count"] == [3.0, 3.0, 3.0]
    assert by_row["25%"][0] == pytest.approx(1.5)  # 1, 2, 4 -> position 0.5
    assert by_row["75%"][0] == pytest.approx(3.0)  # position 1.5
    assert by_row["min"][2] == 0.0 and by_row["max"][2] == 4.0


def test_unlabeled_only_tables_match_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    rows = [
        {"image_ssd": v, "label_binary_dice": math.nan, "label_tre": math.nan, "pair_index": [i], "label_index": -1}
        for i, v in enumerate((0.1, 0.4, 0.2, 0.8))
    ]
    write_metrics_csvs(rows, str(tmp_path))
    df = pd.read_csv(tmp_path / "metrics.csv")
    expected = df[list(METRIC_COLUMNS)].describe()
    got = pd.read_csv(tmp_path / "metrics_stats_overall.csv", index_col=0)
    assert list(got.index) == list(expected.index) and list(got.columns) == list(expected.columns)
    np.testing.assert_allclose(got.to_numpy(), expected.to_numpy(), rtol=0, atol=1e-12, equal_nan=True)
    assert got.loc["count", "label_tre"] == 0
    per_label = pd.read_csv(tmp_path / "metrics_stats_per_label.csv", index_col="label_index")
    assert list(per_label.index) == [-1]
    assert per_label.loc[-1, "image_ssd_median"] == pytest.approx(0.3, abs=1e-12)
    assert per_label[[c for c in per_label.columns if not c.startswith("image_ssd")]].isna().all().all()


# ---------------------------------------------------------------------- landmarks
def _rotated_geometry():
    from tfreg.data.geometry import ImageGeometry

    c, s = np.cos(0.4), np.sin(0.4)
    return ImageGeometry(
        spacing=(2.0, 1.0, 0.5), origin=(-7.0, 3.0, 11.0), direction=np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    )


def test_landmark_metrics_constant_translation_by_hand():
    from tfreg.engine.predict_metrics import LANDMARK_COLUMNS, landmark_metrics

    fixed = np.array([[1.0, 1.0, 1.0], [2.0, 3.0, 4.0], [9.0, 9.0, 9.0]])
    moving = np.array([[2.0, 1.0, 1.0], [2.0, 5.0, 4.0], [-5.0, 0.0, 0.0]])
    mask = np.array([1.0, 1.0, 0.0])  # the last row is padding
    ddf = np.zeros((6, 7, 8, 3))
    ddf[..., 0] = 1.0  # every fixed voxel x moves to the moving point x + (1, 0, 0)
    out = landmark_metrics(moving, fixed, mask, ddf, _rotated_geometry())
    assert set(out) == set(LANDMARK_COLUMNS)
    # after: residuals (0, 0, 0) and (-1, 2, 0) voxels -> 0 and sqrt((2*1)^2 + (1*2)^2) = sqrt(8) mm
    # (the direction is a rotation: only the spacing scales lengths); before: (1, 0, 0) and (0, 2, 0) -> 2, 2 mm
    assert out["landmark_count"] == 2
    assert out["landmark_mean_ae"] == pytest.approx(np.sqrt(8) / 2)
    assert out["landmark_median_ae"] == pytest.approx(np.sqrt(8) / 2)
    assert out["landmark_mean_ae_before"] == pytest.approx(2.0)
    assert out["landmark_median_ae_before"] == pytest.approx(2.0)
    assert out["landmark_robustness"] == pytest.approx(0.5)  # 0 < 2 improved, sqrt(8) > 2 did not


def test_landmark_metrics_interpolates_the_ddf_linearly_2d():
    from tfreg.data.geometry import ImageGeometry
    from tfreg.engine.predict_metrics import landmark_metrics

    i, j = np.meshgrid(np.arange(6.0), np.arange(5.0), indexing="ij")
    ddf = np.stack([0.5 * i, 0.25 * j], axis=-1)  # linear: exact under linear interpolation
    fixed = np.array([[2.5, 1.5], [4.0, 3.25], [0.0, 0.0]])
    moving = fixed + np.stack([0.5 * fixed[:, 0], 0.25 * fixed[:, 1]], axis=-1)  # the DDF's own answer
    moving[2] = [1.0, 0.0]
    out = landmark_metrics(moving, fixed, np.ones(3), ddf, ImageGeometry.identity(2))
    # landmarks 0 and 1 are exact; landmark 2: ddf(0, 0) = 0, error 1 voxel = 1 mm both before and after
    assert out["landmark_mean_ae"] == pytest.approx(1.0 / 3)
    assert out["landmark_median_ae"] == pytest.approx(0.0, abs=1e-12)
    assert out["landmark_robustness"] == pytest.approx(2.0 / 3)


def test_landmark_metrics_empty_mask_and_bad_shapes():
    from tfreg.engine.predict_metrics import landmark_metrics

    out = landmark_metrics(np.zeros((2, 3)), np.zeros((2, 3)), np.zeros(2), np.zeros((4, 4, 4, 3)), _rotated_geometry())
    assert out["landmark_count"] == 0 and math.isnan(out["landmark_mean_ae"])
    with pytest.raises(ValueError, match="landmark_metrics: ddf"):
        landmark_metrics(np.zeros((2, 2)), np.zeros((2, 2)), np.ones(2), np.zeros((4, 4, 4, 3)), _rotated_geometry())


def test_metrics_csvs_with_landmark_columns(tmp_path):
    from tfreg.engine.predict_metrics import LANDMARK_COLUMNS

    base = {"image_ssd": 0.5, "label_binary_dice": math.nan, "label_tre": math.nan, "label_index": -1}
    rows = [
        dict(base, pair_index=[0], landmark_count=2, landmark_mean_ae=1.0, landmark_median_ae=1.0,
             landmark_robustness=0.5, landmark_mean_ae_before=2.0, landmark_median_ae_before=2.0),
        dict(base, pair_index=[1]),  # no landmarks: empty cells
        dict(base, pair_index=[2], landmark_count=3, landmark_mean_ae=3.0, landmark_median_ae=2.0,
             landmark_robustness=1.0, landmark_mean_ae_before=4.0, landmark_median_ae_before=4.0),
    ]  # fmt: skip
    paths = write_metrics_csvs(rows, str(tmp_path))
    lines = open(paths[0]).read().splitlines()
    assert lines[0] == ",".join(COLUMNS + LANDMARK_COLUMNS)
    assert lines[2] == "0.5,,,[1],-1,,,,,,"
    assert lines[1].split(",")[5:] == ["2", "1.0", "1.0", "0.5", "2.0", "2.0"]
    overall = {r[0]: r[1:] for r in csv.reader(open(paths[2]))}
    header = overall[""]
    mean = dict(zip(header, overall["mean"]))
    assert float(mean["landmark_mean_ae"]) == pytest.approx(2.0)  # mean over the pairs with landmarks
    assert float(mean["landmark_robustness"]) == pytest.approx(0.75)
    assert float(dict(zip(header, overall["count"]))["landmark_mean_ae"]) == 2
    per_label = list(csv.DictReader(open(paths[1])))
    assert float(per_label[0]["landmark_median_ae_median"]) == pytest.approx(1.5)


# ------------------------------------------------------------------------------ surface distances, folding
def surface_points_mm(mask, spacing):
    """Surface voxels (foreground with a face neighbour in the background; outside the array is background)
    found by explicit neighbour checks, as physical points in mm."""
    mask = np.asarray(mask, dtype=bool)
    padded = np.pad(mask, 1)
    border = np.zeros_like(mask)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            neighbour = np.roll(padded, step, axis=axis)[tuple(slice(1, -1) for _ in range(mask.ndim))]
            border |= mask & ~neighbour
    return np.argwhere(border) * np.asarray(spacing, dtype=np.float64)


def reference_hd_assd(a, b, spacing):
    """Brute force: every surface point's distance to the nearest surface point of the other mask."""
    from scipy.spatial.distance import cdist

    pa, pb = surface_points_mm(a, spacing), surface_points_mm(b, spacing)
    d = cdist(pa, pb)
    d_ab, d_ba = d.min(axis=1), d.min(axis=0)
    pooled = np.concatenate([d_ab, d_ba])
    return pooled.max(), pooled.mean()


@pytest.mark.parametrize(
    "shape, spacing",
    [((12, 14), (0.5, 2.0)), ((9, 10, 11), (1.5, 0.7, 3.0))],
)
def test_surface_metrics_of_shifted_boxes_match_brute_force_in_mm(shape, spacing):
    from tfreg.engine.predict_metrics import SURFACE_COLUMNS, surface_and_folding_metrics

    ndim = len(shape)
    fixed = cube(shape, (2,) * ndim, 4)
    pred = cube(shape, (3,) + (4,) * (ndim - 1), 5) * 0.7  # soft values above 0.5 count as foreground
    out = surface_and_folding_metrics(fixed, pred, None, spacing)
    assert set(out) == set(SURFACE_COLUMNS)
    hd, mean = reference_hd_assd(fixed >= 0.5, pred >= 0.5, spacing)
    assert out["label_hd_mm"] == pytest.approx(hd, rel=1e-12)
    assert out["label_assd_mm"] == pytest.approx(mean, rel=1e-12)
    assert math.isnan(out["ddf_folding_count"])


def test_surface_metrics_nan_for_an_empty_label_or_no_labels():
    from tfreg.engine.predict_metrics import surface_and_folding_metrics

    fixed = cube((8, 8), (2, 2), 3)
    out = surface_and_folding_metrics(fixed, np.zeros((8, 8)), None, (1.0, 1.0))
    assert math.isnan(out["label_hd_mm"]) and math.isnan(out["label_assd_mm"])
    out = surface_and_folding_metrics(None, None, np.zeros((8, 8, 2)), None)
    assert math.isnan(out["label_hd_mm"]) and out["ddf_folding_count"] == 0


@pytest.mark.parametrize("ndim", [2, 3])
def test_folding_count_of_an_analytic_field(ndim):
    """u_0(x) = k(x_1) x_0 with k = -2 on the rows x_1 < 3, 0 elsewhere: det J = 1 + k exactly (u_1 = u_2 = 0,
    so the x_1-derivative of u_0 does not enter det J), i.e. -1 on those rows: 3 * n_0 (* n_2) folded voxels."""
    from tfreg.engine.predict_metrics import surface_and_folding_metrics

    shape = (7, 9, 5)[:ndim]
    grid = np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij")
    ddf = np.zeros(shape + (ndim,))
    ddf[..., 0] = np.where(grid[1] < 3, -2.0, 0.0) * grid[0]
    expected = 3 * shape[0] * (shape[2] if ndim == 3 else 1)
    assert surface_and_folding_metrics(None, None, ddf, None)["ddf_folding_count"] == expected
    assert surface_and_folding_metrics(None, None, np.zeros(shape + (ndim,)), None)["ddf_folding_count"] == 0


def test_metrics_csvs_put_surface_columns_last(tmp_path):
    from tfreg.engine.predict_metrics import LANDMARK_COLUMNS, SURFACE_COLUMNS

    base = {"image_ssd": 0.5, "label_binary_dice": 0.25, "label_tre": 1.0, "label_index": 0}
    rows = [
        dict(base, pair_index=[0, 1], label_hd_mm=3.0, label_assd_mm=1.5, ddf_folding_count=4),
        dict(base, pair_index=[1, 0], label_hd_mm=math.nan, label_assd_mm=math.nan, ddf_folding_count=0),
    ]
    paths = write_metrics_csvs(rows, str(tmp_path))
    lines = open(paths[0]).read().splitlines()
    assert lines[0] == ",".join(COLUMNS + SURFACE_COLUMNS)
    assert lines[1:] == ['0.5,0.25,1.0,"[0, 1]",0,3.0,1.5,4', '0.5,0.25,1.0,"[1, 0]",0,,,0']
    overall = {r[0]: r[1:] for r in csv.reader(open(paths[2]))}
    mean = dict(zip(overall[""], overall["mean"]))
    count = dict(zip(overall[""], overall["count"]))
    assert float(mean["ddf_folding_count"]) == 2.0 and float(count["label_hd_mm"]) == 1.0
    # with landmarks: DeepReg's, then the landmark columns, then the surface columns
    rows[0].update(landmark_count=1)
    header = open(write_metrics_csvs(rows, str(tmp_path))[0]).readline().strip()
    assert header == ",".join(COLUMNS + LANDMARK_COLUMNS + SURFACE_COLUMNS)


def test_metrics_csvs_put_the_inference_time_last_and_summarise_it(tmp_path):
    from tfreg.engine.predict_metrics import SURFACE_COLUMNS, TIMING_COLUMNS

    base = {"image_ssd": 0.5, "label_binary_dice": 0.25, "label_tre": 1.0, "label_hd_mm": 2.0, "label_index": 0}
    times = [0.25, 0.5, 1.5]
    rows = [dict(base, pair_index=[i, 0], inference_time_s=t) for i, t in enumerate(times)]
    paths = write_metrics_csvs(rows, str(tmp_path))
    lines = open(paths[0]).read().splitlines()
    assert lines[0] == ",".join(COLUMNS + SURFACE_COLUMNS + TIMING_COLUMNS)
    assert [float(line.rsplit(",", 1)[1]) for line in lines[1:]] == times
    overall = {r[0]: r[1:] for r in csv.reader(open(paths[2]))}
    described = {name: dict(zip(overall[""], overall[name])) for name in ("mean", "std", "50%", "max")}
    assert float(described["mean"]["inference_time_s"]) == pytest.approx(np.mean(times))
    assert float(described["std"]["inference_time_s"]) == pytest.approx(np.std(times, ddof=1))
    assert float(described["50%"]["inference_time_s"]) == 0.5 and float(described["max"]["inference_time_s"]) == 1.5
    per_label = list(csv.DictReader(open(paths[1])))
    assert float(per_label[0]["inference_time_s_median"]) == 0.5


# ---------------------------------------------------------------------------------------------- predict vs evaluate
@pytest.mark.slow
def test_predict_csv_and_tfreg_evaluate_report_the_same_dice_at_half_values(tmp_path):
    """One binarisation rule: predict used ``>= 0.5`` and tfreg_evaluate ``> 0.5``, so a linearly warped label
    with voxels at exactly 0.5 got two different Dice values for the same pair.

    A DDF model whose weights are all zero except the output biases (0.5, 0, 0) predicts the constant DDF of
    half a voxel along axis 0; warping the moving cube i = 2..4 with it gives, independently,
    ``(M[i] + M[i + 1]) / 2``: 0.5 at i = 1 and i = 4, 1 at i = 2, 3. The fixed cube is i = 1..4, so with
    ``>= 0.5`` Dice is 1; ``> 0.5`` would give 2 * 2 / (4 + 2) = 2/3.
    """
    from scipy import ndimage

    from tests.data.helpers import write_nifti_folder
    from tfreg.config import save_config, validate_config
    from tfreg.engine.build import build_loader, build_model, create_variables
    from tfreg.engine.checkpoint import CheckpointSaver, make_checkpoint
    from tfreg.engine.predict import predict
    from tfreg.evaluation.evaluate import evaluate, pairs_from_prediction_dir

    shape = (8, 8, 8)
    moving_label = np.zeros(shape, np.float32)
    moving_label[2:5, 2:6, 2:6] = 1
    fixed_label = np.zeros(shape, np.float32)
    fixed_label[1:5, 2:6, 2:6] = 1
    rng = np.random.default_rng(0)
    data = str(tmp_path / "data")
    for folder, array in (
        ("moving_images", rng.random(shape, dtype=np.float32)),
        ("fixed_images", rng.random(shape, dtype=np.float32)),
        ("moving_labels", moving_label),
        ("fixed_labels", fixed_label),
    ):
        write_nifti_folder(os.path.join(data, folder), {"p0": array})
    split = {"dir": data, "format": "nifti", "labeled": True}
    config = {
        "dataset": {
            "train": split,
            "test": split,
            "type": "paired",
            "moving_image_shape": list(shape),
            "fixed_image_shape": list(shape),
        },
        "train": {
            "method": "ddf",
            "backbone": {"name": "local", "num_channel_initial": 2, "extract_levels": [0]},
            "loss": {"image": {"name": "ssd", "weight": 1.0}},
            "optimizer": {"name": "Adam", "learning_rate": 1.0e-3},
            "preprocess": {"batch_size": 1, "shuffle_buffer_num_batch": 1, "data_augmentation": None},
            "epochs": 1,
            "save_period": 1,
        },
    }
    config = validate_config(config)
    loader = build_loader(config, "train")
    model = build_model(config, loader)
    create_variables(model, loader)
    loader.close()
    for weight in model.weights:
        weight.assign(np.zeros(weight.shape, weight.dtype))
    biases = [w for w in model.weights if w.path.endswith("bias") and tuple(w.shape) == (3,)]
    assert biases  # the DDF head's output convolution(s)
    for bias in biases:
        bias.assign(np.array([0.5, 0.0, 0.0], np.float32))
    save = tmp_path / "run" / "save"
    saver = CheckpointSaver(make_checkpoint(model), str(save), save_period=1)
    ckpt = saver.save(1)
    save_config(config, str(save / "config.yaml"))

    out = predict(ckpt_path=ckpt, split="test", log_dir=str(tmp_path), exp_name="pred")
    folder = os.path.join(out, "pair_0", "label_0")
    from tfreg.data.image_io import read_image

    ddf, _ = read_image(os.path.join(out, "pair_0", "ddf.nii.gz"))
    np.testing.assert_allclose(ddf, np.broadcast_to([0.5, 0.0, 0.0], shape + (3,)), atol=1e-6)
    soft, _ = read_image(os.path.join(folder, "pred_fixed_label.nii.gz"))
    grid = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"))
    reference = ndimage.map_coordinates(moving_label, grid + ddf.transpose(3, 0, 1, 2), order=1, mode="constant")
    np.testing.assert_allclose(soft, reference, atol=1e-6)
    assert np.count_nonzero(soft == 0.5) == 2 * 4 * 4  # the voxels the two rules disagreed on
    a, b = fixed_label >= 0.5, reference >= 0.5
    expected = 2 * np.count_nonzero(a & b) / (np.count_nonzero(a) + np.count_nonzero(b))
    assert expected == 1.0

    with open(os.path.join(out, "metrics.csv"), newline="") as stream:
        predicted = [float(row["label_binary_dice"]) for row in csv.DictReader(stream)]
    evaluated = [row["dice"] for row in evaluate(pairs_from_prediction_dir(out)).rows]
    assert predicted == pytest.approx([expected], abs=1e-12)
    assert evaluated == pytest.approx(predicted, abs=1e-12)
