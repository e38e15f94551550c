"""tfreg.evaluation.evaluate: label, DDF, landmark and image metrics from files, with closed-form references.

Geometry used by the label cases: shape (16, 10, 10), spacing (2.0, 0.5, 1.0) mm (anisotropic).

- label 1: fixed box [2..7]^3 (216 voxels), warped box [3..6]^3 (64 voxels) nested in it.
  Dice = 2*64/(216+64) = 16/35, Jaccard = 64/216, RVD = (64-216)/216, centroids coincide.
  Surface distances: a fixed-surface voxel lies 0 or 1 voxel outside the warped box along each axis,
  and its nearest warped-surface voxel is its clamp onto that box, so the largest distance is at a
  corner: sqrt(2^2 + 0.5^2 + 1^2) = sqrt(5.25) mm. Every warped-surface voxel has a coordinate at 3
  or 6, one voxel from the fixed faces along some axis, so it is at most 2 mm from the fixed surface.
  HD = sqrt(5.25).
- label 2: fixed box i 10..13, j 2..5, k 2..5 (64 voxels), warped = shifted by +1 along j.
  Dice = 2*48/128 = 0.75, centroid distance = 1 voxel * 0.5 mm.
The percentile/mean distances are checked against a brute-force reference (all pairwise distances of
the surface voxels, found by explicit face-neighbour tests), independent of the distance transform.
"""

import csv
import math
import os

import numpy as np
import pytest
from scipy.spatial.distance import cdist

from tfreg.data.errors import DataError, DataNotFoundError
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import save_image
from tfreg.evaluation.evaluate import (
    ALL_COLUMNS,
    LabelFiles,
    PairSpec,
    ddf_metrics,
    default_summary_path,
    evaluate,
    natural_key,
    pairs_from_csv,
    pairs_from_prediction_dir,
    read_landmarks,
    summarise,
)
from tfreg.metrics import EmptyMaskWarning

SHAPE = (16, 10, 10)
SPACING = (2.0, 0.5, 1.0)
GEO = ImageGeometry(spacing=SPACING, origin=(-3.0, 7.0, 1.5), direction=np.eye(3))


def box(lo, hi, shape=SHAPE):
    """Boolean box with inclusive corners ``lo``, ``hi``."""
    m = np.zeros(shape, dtype=bool)
    m[tuple(slice(a, b + 1) for a, b in zip(lo, hi))] = True
    return m


def brute_surface(mask):
    """Voxel indices of foreground voxels with a background face-neighbour (array edge = background)."""
    padded = np.pad(mask, 1)
    border = np.zeros_like(mask)
    core = tuple(slice(1, -1) for _ in mask.shape)
    for axis in range(mask.ndim):
        for step in (-1, 1):
            border |= mask & ~np.roll(padded, step, axis=axis)[core]
    return np.argwhere(border)


def brute_distances(a, b, spacing):
    """Pooled directed surface distances (mm) by brute force."""
    sa = brute_surface(a) * np.asarray(spacing)
    sb = brute_surface(b) * np.asarray(spacing)
    d = cdist(sa, sb)
    return np.concatenate([d.min(axis=1), d.min(axis=0)])


def label_maps():
    """(fixed, warped, moving) integer label maps of the two cases in the module docstring.

    The moving map equals the fixed one for label 1 and is shifted by +2 along j for label 2.
    """
    fixed = np.zeros(SHAPE, dtype=np.float32)
    warped = np.zeros(SHAPE, dtype=np.float32)
    moving = np.zeros(SHAPE, dtype=np.float32)
    fixed[box((2, 2, 2), (7, 7, 7))] = 1
    warped[box((3, 3, 3), (6, 6, 6))] = 1
    moving[box((2, 2, 2), (7, 7, 7))] = 1
    fixed[box((10, 2, 2), (13, 5, 5))] = 2
    warped[box((10, 3, 2), (13, 6, 5))] = 2
    moving[box((10, 4, 2), (13, 7, 5))] = 2
    return fixed, warped, moving


def write_label_case(folder, moving=True):
    """Write the label maps as NIfTI files; returns their paths."""
    fixed, warped, mov = label_maps()
    paths = {name: os.path.join(folder, f"{name}.nii.gz") for name in ("fixed", "warped", "moving")}
    save_image(fixed, paths["fixed"], GEO)
    save_image(warped, paths["warped"], GEO)
    if moving:
        save_image(mov, paths["moving"], GEO)
    else:
        del paths["moving"]
    return paths


def write_landmarks(folder):
    """Fixed, warped and moving landmark files with errors after (5, 1, 3, 0) and before (4, 1, 6, 1) mm."""
    fixed = np.array([[10.0, 20.0, 30.0], [0.0, 0.0, 0.0], [-5.0, 2.5, 7.0], [1.0, 1.0, 1.0]])
    warped = fixed + np.array([[3.0, 4.0, 0.0], [0.0, 0.0, 1.0], [1.0, 2.0, 2.0], [0.0, 0.0, 0.0]])
    moving = fixed + np.array([[0.0, 4.0, 0.0], [1.0, 0.0, 0.0], [0.0, 6.0, 0.0], [0.0, 0.0, -1.0]])
    paths = {name: os.path.join(folder, f"{name}_landmarks.csv") for name in ("fixed", "warped", "moving")}
    with open(paths["fixed"], "w") as f:  # plain rows, no header
        f.writelines(",".join(repr(float(v)) for v in p) + "\n" for p in fixed)
    with open(paths["warped"], "w") as f:  # BraTS-Reg style header with an id column
        f.write("Landmark,X,Y,Z\n")
        f.writelines(f"{i + 1}," + ",".join(repr(float(v)) for v in p) + "\n" for i, p in enumerate(warped))
    with open(paths["moving"], "w") as f:  # whitespace-separated, with a comment
        f.write("# moving landmarks\n")
        f.writelines(" ".join(repr(float(v)) for v in p) + "\n" for p in moving)
    return paths


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ---------------------------------------------------------------------------------------------- labels
def test_label_maps_closed_form_and_brute_force(tmp_path):
    paths = write_label_case(tmp_path)
    out = tmp_path / "res.csv"
    result = evaluate(
        [PairSpec("p1", fixed_label=paths["fixed"], warped_label=paths["warped"], moving_label=paths["moving"])],
        output=str(out),
    )
    rows = {r["label"]: r for r in read_rows(out)}
    assert list(rows) == ["1", "2"]
    r1, r2 = rows["1"], rows["2"]
    assert float(r1["dice"]) == pytest.approx(16 / 35)
    assert float(r1["jaccard"]) == pytest.approx(64 / 216)
    assert float(r1["voe"]) == pytest.approx(1 - 64 / 216)
    assert float(r1["rvd"]) == pytest.approx((64 - 216) / 216)
    assert float(r1["hd"]) == pytest.approx(math.sqrt(5.25))
    assert float(r1["centroid_dist"]) == pytest.approx(0.0, abs=1e-12)
    assert float(r2["dice"]) == pytest.approx(0.75)
    assert float(r2["jaccard"]) == pytest.approx(48 / 80)
    assert float(r2["rvd"]) == pytest.approx(0.0)
    assert float(r2["centroid_dist"]) == pytest.approx(0.5)

    fixed, warped, moving = label_maps()
    for label, row in rows.items():
        d = brute_distances(fixed == int(label), warped == int(label), SPACING)
        assert float(row["hd"]) == pytest.approx(d.max())
        assert float(row["hd95"]) == pytest.approx(np.percentile(d, 95))
        assert float(row["hd99"]) == pytest.approx(np.percentile(d, 99))
        assert float(row["assd"]) == pytest.approx(d.mean())
        assert float(row["msd"]) == pytest.approx(d.mean())

    # before: label 1 unmoved (identical), label 2 shifted by 2 voxels along j: overlap 2/4
    assert float(r1["dice_before"]) == pytest.approx(1.0)
    assert float(r1["hd_before"]) == pytest.approx(0.0)
    assert float(r2["dice_before"]) == pytest.approx(0.5)
    assert float(r2["centroid_dist_before"]) == pytest.approx(2 * 0.5)
    # no DDF, landmarks or images: those columns are absent
    assert "folding_fraction" not in result.columns and "tre_mean" not in result.columns
    assert result.columns == [c for c in ALL_COLUMNS if c in result.columns]
    assert os.path.isfile(default_summary_path(str(out)))


def test_binary_float_masks_and_labels_option(tmp_path):
    """Fractional values in [0, 1] are a binary mask thresholded at 0.5 (label 1)."""
    fixed = box((2, 2, 2), (5, 5, 5)).astype(np.float32) * 0.9
    warped = box((3, 2, 2), (6, 5, 5)).astype(np.float32) * 0.7
    warped[0, 0, 0] = 0.3  # below threshold: background
    save_image(fixed, tmp_path / "f.nii.gz", GEO)
    save_image(warped, tmp_path / "w.nii.gz", GEO)
    res = evaluate([PairSpec("p", fixed_label=str(tmp_path / "f.nii.gz"), warped_label=str(tmp_path / "w.nii.gz"))])
    assert [r["label"] for r in res.rows] == ["1"]
    assert res.rows[0]["dice"] == pytest.approx(2 * 48 / 128)
    assert res.rows[0]["centroid_dist"] == pytest.approx(2.0)  # one voxel along i, 2 mm


def test_empty_label_dice_defined_hd_nan_with_warning(tmp_path):
    paths = write_label_case(tmp_path, moving=False)
    spec = PairSpec("p9", fixed_label=paths["fixed"], warped_label=paths["warped"])
    with pytest.warns(EmptyMaskWarning, match=r"pair 'p9', label 7: the fixed and warped label have no foreground"):
        res = evaluate([spec], labels=[1, 7])
    rows = {r["label"]: r for r in res.rows}
    assert rows["7"]["dice"] == 1.0  # both empty: perfect agreement by definition
    assert all(math.isnan(rows["7"][m]) for m in ("hd", "hd95", "hd99", "assd", "msd", "rvd", "centroid_dist"))
    assert rows["1"]["dice"] == pytest.approx(16 / 35)

    # label present in the fixed map only: Dice 0, distances NaN, warning names the warped label
    fixed, warped, _ = label_maps()
    warped[warped == 2] = 0
    save_image(warped, tmp_path / "w2.nii.gz", GEO)
    spec = PairSpec("p9", fixed_label=paths["fixed"], warped_label=str(tmp_path / "w2.nii.gz"))
    with pytest.warns(EmptyMaskWarning, match=r"label 2: the warped label has no foreground"):
        res = evaluate([spec])
    row2 = [r for r in res.rows if r["label"] == "2"][0]
    assert row2["dice"] == 0.0 and math.isnan(row2["hd"]) and row2["rvd"] == pytest.approx(-1.0)


def test_moving_label_on_another_grid_is_resampled(tmp_path):
    """A moving label on a coarser grid covering the same physical box gives the same 'before' overlap."""
    fixed = box((2, 2, 2), (5, 5, 5), shape=(8, 8, 8)).astype(np.float32)
    geo = ImageGeometry(spacing=(1.0, 1.0, 1.0), origin=(0.0, 0.0, 0.0), direction=np.eye(3))
    # moving voxel (a,b,c) at 2 mm spacing has its centre at 2*(a,b,c) mm: voxels 1..2 cover 2..4 mm
    moving = box((1, 1, 1), (2, 2, 2), shape=(4, 4, 4)).astype(np.float32)
    save_image(fixed, tmp_path / "f.nii.gz", geo)
    save_image(fixed, tmp_path / "w.nii.gz", geo)
    save_image(moving, tmp_path / "m.nii.gz", ImageGeometry((2.0, 2.0, 2.0), (0.0, 0.0, 0.0), np.eye(3)))
    spec = PairSpec(
        "p",
        fixed_label=str(tmp_path / "f.nii.gz"),
        warped_label=str(tmp_path / "w.nii.gz"),
        moving_label=str(tmp_path / "m.nii.gz"),
    )
    with pytest.warns(UserWarning, match="resampled onto it"):
        res = evaluate([spec])
    # nearest neighbour (ITK rounds half up): fixed voxel x samples moving index floor(x/2 + 0.5), so
    # fixed voxels 1..4 (moving indices 0.5..2.0) fall inside the moving box 1..2
    resampled = np.zeros((8, 8, 8), dtype=bool)
    idx = np.floor(np.arange(8) / 2.0 + 0.5).astype(int)  # nearest moving index of each fixed voxel
    inside = (idx >= 1) & (idx <= 2)
    resampled[np.ix_(inside, inside, inside)] = True
    f = fixed > 0.5
    expected = 2 * np.count_nonzero(f & resampled) / (f.sum() + resampled.sum())
    assert res.rows[0]["dice"] == 1.0
    assert res.rows[0]["dice_before"] == pytest.approx(expected)


# ---------------------------------------------------------------------------------------------- ddf
def linear_ddf(matrix, shape=(7, 6, 5)):
    """u(x) = M x (voxels): its Jacobian is I + M at every voxel, also at the edges (exact differences)."""
    x = np.stack(np.meshgrid(*[np.arange(n, dtype=np.float64) for n in shape], indexing="ij"), axis=-1)
    return x @ np.asarray(matrix).T


def test_ddf_linear_field_has_known_det(tmp_path):
    m = [[0.1, 0.05, 0.0], [0.0, -0.2, 0.0], [0.02, 0.0, 0.3]]
    # det(I + M) by cofactor expansion along the first row: 1.1*(0.8*1.3) - 0.05*(0*1.3 - 0*0.02) = 1.144
    save_image(linear_ddf(m).astype(np.float32), tmp_path / "ddf.nii.gz", GEO)
    res = evaluate([PairSpec("p", ddf=str(tmp_path / "ddf.nii.gz"))], output=str(tmp_path / "o.csv"))
    row = read_rows(tmp_path / "o.csv")[0]
    assert row["label"] == ""
    assert float(row["jac_det_mean"]) == pytest.approx(1.144, rel=1e-5)
    assert float(row["jac_det_std"]) == pytest.approx(0.0, abs=1e-5)
    assert float(row["folding_fraction"]) == 0.0
    assert float(row["sdlogj"]) == pytest.approx(0.0, abs=1e-5)
    assert "dice" not in res.columns


def test_ddf_folding_field():
    # u_i = -1.5 i: det J = 1 - 1.5 = -0.5 everywhere, every voxel folds
    vals = ddf_metrics(linear_ddf([[-1.5, 0, 0], [0, 0, 0], [0, 0, 0]]), GEO)
    assert vals["folding_fraction"] == 1.0
    assert vals["jac_det_mean"] == pytest.approx(-0.5)


def test_ddf_physical_units_rotated_by_direction():
    """A world-axis field in mm: components are rotated onto the array axes before differentiating.

    Array-axis field u_0 = 0.1 * (physical position along axis 0) gives det J = 1.1. The direction
    swaps the first two axes, so the world field holds that component in its second entry; without the
    rotation the derivative would land off the diagonal and det J would be 1.
    """
    spacing = (2.0, 0.5, 1.0)
    swap = np.array([[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    geo = ImageGeometry(spacing, (0.0, 0.0, 0.0), swap)
    u_arr = linear_ddf([[0.1 * spacing[0], 0, 0], [0, 0, 0], [0, 0, 0]])
    world = u_arr @ swap.T  # w = R u per voxel
    vals = ddf_metrics(world, geo, units="physical")
    assert vals["jac_det_mean"] == pytest.approx(1.1)
    # the same field in voxel units is u_arr / spacing: identical det J, no rotation involved
    vals_vox = ddf_metrics(u_arr / np.asarray(spacing), geo, units="voxel")
    assert vals_vox["jac_det_mean"] == pytest.approx(1.1)


def test_ddf_must_match_fixed_grid(tmp_path):
    paths = write_label_case(tmp_path, moving=False)
    save_image(np.zeros((4, 4, 4, 3), np.float32), tmp_path / "ddf.nii.gz", GEO)
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=str(tmp_path / "ddf.nii.gz"))
    with pytest.raises(DataError, match=r"ddf .*ddf.nii.gz has spatial shape \(4, 4, 4\).*fixed.nii.gz"):
        evaluate([spec])


# ---------------------------------------------------------------------------------------------- landmarks
def test_landmarks_tre_and_robustness(tmp_path):
    lm = write_landmarks(tmp_path)
    spec = PairSpec("p", fixed_landmarks=lm["fixed"], warped_landmarks=lm["warped"], moving_landmarks=lm["moving"])
    row = evaluate([spec]).rows[0]
    errors = np.array([5.0, 1.0, 3.0, 0.0])
    assert row["n_landmarks"] == 4
    assert row["tre_mean"] == pytest.approx(2.25)
    assert row["tre_median"] == pytest.approx(2.0)
    assert row["tre_max"] == pytest.approx(5.0)
    assert row["tre_std"] == pytest.approx(math.sqrt(((errors - 2.25) ** 2).mean()))
    assert row["tre_mean_before"] == pytest.approx(3.0)  # (4 + 1 + 6 + 1) / 4
    assert row["tre_median_before"] == pytest.approx(2.5)
    # improved: 3 < 6 and 0 < 1; 5 > 4 and 1 == 1 do not count -> 2 of 4
    assert row["robustness"] == pytest.approx(0.5)


def test_read_landmarks_forms(tmp_path):
    lm = write_landmarks(tmp_path)
    warped = read_landmarks(lm["warped"])
    assert warped.shape == (4, 3)
    np.testing.assert_allclose(warped[0], [13.0, 24.0, 30.0])
    path = tmp_path / "bad.csv"
    path.write_text("1,2,3\n4,five,6\n")
    with pytest.raises(DataError, match=r"bad.csv, line 2: non-numeric"):
        read_landmarks(str(path))
    path.write_text("1,2,3\n4,5\n")
    with pytest.raises(DataError, match=r"line 2: 2 values, expected 3"):
        read_landmarks(str(path))


def test_landmark_count_mismatch_names_both_files(tmp_path):
    lm = write_landmarks(tmp_path)
    short = tmp_path / "short.csv"
    short.write_text("1,2,3\n4,5,6\n")
    spec = PairSpec("p", fixed_landmarks=lm["fixed"], warped_landmarks=str(short))
    with pytest.raises(DataError, match=r"fixed_landmarks .*fixed_landmarks.csv has 4 points.*short.csv has 2 points"):
        evaluate([spec])


# ---------------------------------------------------------------------------------------------- images
def test_image_metrics_identical_images(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.random((12, 11, 10)).astype(np.float32)
    save_image(img, tmp_path / "f.nii.gz", GEO)
    save_image(img, tmp_path / "w.nii.gz", GEO)
    save_image(img[::-1].copy(), tmp_path / "m.nii.gz", GEO)
    spec = PairSpec(
        "p",
        fixed_image=str(tmp_path / "f.nii.gz"),
        warped_image=str(tmp_path / "w.nii.gz"),
        moving_image=str(tmp_path / "m.nii.gz"),
    )
    row = evaluate([spec]).rows[0]
    # MI of an image with itself is the entropy of its 32-bin histogram (nats)
    counts, _ = np.histogram(img.astype(np.float64), bins=32)
    p = counts[counts > 0] / counts.sum()
    assert row["mi"] == pytest.approx(-(p * np.log(p)).sum())
    assert row["ssim"] == pytest.approx(1.0)
    assert row["ssim_before"] < 0.5 and row["mi_before"] < row["mi"]


# ---------------------------------------------------------------------------------------------- folder
def write_prediction_dir(root):
    """A tfreg_predict-style folder: pair_2 (labels 0 and 1, images, DDF) and pair_10 (label 0 only)."""
    fixed, warped, moving = label_maps()
    rng = np.random.default_rng(1)
    img = rng.random(SHAPE).astype(np.float32)
    for name, labels in (("pair_2", (1, 2)), ("pair_10", (2,))):
        d = os.path.join(root, name)
        save_image(img, os.path.join(d, "fixed_image.nii.gz"), GEO)
        save_image(img, os.path.join(d, "pred_fixed_image.nii.gz"), GEO)
        save_image(img, os.path.join(d, "moving_image.nii.gz"), GEO)
        save_image(np.zeros(SHAPE + (3,), np.float32), os.path.join(d, "ddf.nii.gz"), GEO)
        with open(os.path.join(d, "affine.txt"), "w") as f:
            f.write("1,0,0\n0,1,0\n0,0,1\n0,0,0\n")
        for k, value in enumerate(labels):
            ld = os.path.join(d, f"label_{k}")
            save_image((fixed == value).astype(np.float32), os.path.join(ld, "fixed_label.nii.gz"), GEO)
            save_image((warped == value).astype(np.float32), os.path.join(ld, "pred_fixed_label.nii.gz"), GEO)
            save_image((moving == value).astype(np.float32), os.path.join(ld, "moving_label.nii.gz"), GEO)
    with open(os.path.join(root, "metrics.csv"), "w") as f:
        f.write("image_ssd,label_binary_dice,label_tre,pair_index,label_index\n")


def test_prediction_folder(tmp_path):
    root = tmp_path / "test"
    write_prediction_dir(str(root))
    pairs = pairs_from_prediction_dir(str(tmp_path))  # the parent of test/ works too
    assert [p.pair for p in pairs] == ["pair_2", "pair_10"]  # natural order
    assert [lf.label for lf in pairs[0].label_files] == ["0", "1"]
    res = evaluate(pairs, output=str(tmp_path / "out.csv"))
    keys = [(r["pair"], r["label"]) for r in read_rows(tmp_path / "out.csv")]
    assert keys == [("pair_2", "0"), ("pair_2", "1"), ("pair_10", "0")]
    rows = {(r["pair"], r["label"]): r for r in res.rows}
    assert rows["pair_2", "0"]["dice"] == pytest.approx(16 / 35)
    assert rows["pair_2", "1"]["dice"] == pytest.approx(0.75)
    assert rows["pair_10", "0"]["dice"] == pytest.approx(0.75)
    assert rows["pair_2", "1"]["dice_before"] == pytest.approx(0.5)
    for r in res.rows:
        assert r["jac_det_mean"] == pytest.approx(1.0) and r["folding_fraction"] == 0.0
        assert r["ssim"] == pytest.approx(1.0)

    only = pairs_from_prediction_dir(str(root), labels=["1"])
    assert [[lf.label for lf in p.label_files] for p in only] == [["1"], []]


def test_prediction_folder_errors(tmp_path):
    with pytest.raises(DataNotFoundError, match="does not exist"):
        pairs_from_prediction_dir(str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match="holds no pair_<id> folders"):
        pairs_from_prediction_dir(str(tmp_path))
    label_dir = tmp_path / "pair_0" / "label_0"
    save_image(np.zeros((4, 4, 4), np.float32), label_dir / "fixed_label.nii.gz")
    with pytest.raises(DataError, match=r"label_0 has no pred_fixed_label"):
        pairs_from_prediction_dir(str(tmp_path))


# ---------------------------------------------------------------------------------------------- pairs CSV
def test_pairs_csv_relative_paths_and_empty_cells(tmp_path):
    write_label_case(tmp_path)
    lm = write_landmarks(tmp_path)
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(
            ["pair", "fixed_label", "warped_label", "moving_label", "ddf", "fixed_landmarks", "warped_landmarks"]
        )
        w.writerow(["a", "fixed.nii.gz", "warped.nii.gz", "", "", "", ""])
        w.writerow(
            [
                "b",
                "fixed.nii.gz",
                "fixed.nii.gz",
                "moving.nii.gz",
                "",
                os.path.basename(lm["fixed"]),
                os.path.basename(lm["warped"]),
            ]
        )
    pairs = pairs_from_csv(str(tmp_path / "pairs.csv"))
    assert pairs[0].moving_label is None and os.path.isabs(pairs[0].fixed_label)
    res = evaluate(pairs)
    rows = {(r["pair"], r["label"]): r for r in res.rows}
    assert rows["a", "1"]["dice"] == pytest.approx(16 / 35)
    assert rows["b", "1"]["dice"] == 1.0 and rows["b", "2"]["dice_before"] == pytest.approx(0.5)
    assert rows["a", "1"].get("dice_before") is None  # not computed: written as an empty cell
    assert rows["b", "2"]["tre_mean"] == pytest.approx(2.25)
    assert "tre_mean" not in rows["a", "1"]


@pytest.mark.parametrize(
    "header,row,match",
    [
        (["pair", "fixed_lable"], ["a", "x"], r"unknown column\(s\) \['fixed_lable'\]"),
        (["fixed_label", "warped_label"], ["x", "y"], "no 'pair' column"),
        (["pair", "fixed_label"], ["a", "f.nii.gz"], r"line 2: .*fixed_label is given but warped_label is not"),
        (["pair", "ddf"], ["", "d.nii.gz"], r"line 2: empty 'pair' cell"),
    ],
)
def test_pairs_csv_errors(tmp_path, header, row, match):
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        csv.writer(f).writerows([header, row])
    with pytest.raises(DataError, match=match):
        pairs_from_csv(str(tmp_path / "pairs.csv"))


# ---------------------------------------------------------------------------------------------- bad input
def test_shape_mismatch_names_both_files(tmp_path):
    paths = write_label_case(tmp_path, moving=False)
    save_image(np.zeros((16, 10, 9), np.float32), tmp_path / "small.nii.gz", GEO)
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=str(tmp_path / "small.nii.gz"))
    with pytest.raises(
        DataError,
        match=r"fixed_label .*fixed.nii.gz has shape \(16, 10, 10\) but warped_label "
        r".*small.nii.gz has shape \(16, 10, 9\)",
    ):
        evaluate([spec])


def test_spacing_mismatch_names_both_spacings(tmp_path):
    paths = write_label_case(tmp_path, moving=False)
    fixed, _, _ = label_maps()
    save_image(fixed, tmp_path / "iso.nii.gz", ImageGeometry((1.0, 1.0, 1.0), (0, 0, 0), np.eye(3)))
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=str(tmp_path / "iso.nii.gz"))
    with pytest.raises(
        DataError,
        match=r"fixed.nii.gz has spacing \(2.0, 0.5, 1.0\) mm but warped_label "
        r".*iso.nii.gz has spacing \(1.0, 1.0, 1.0\) mm",
    ):
        evaluate([spec])


def test_missing_file_is_named(tmp_path):
    paths = write_label_case(tmp_path, moving=False)
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=str(tmp_path / "gone.nii.gz"))
    with pytest.raises(DataNotFoundError, match=r"pair 'p': ddf file .*gone.nii.gz does not exist"):
        evaluate([spec], output=str(tmp_path / "o.csv"))
    assert not (tmp_path / "o.csv").exists()


def test_existing_output_refused_unless_overwrite(tmp_path):
    paths = write_label_case(tmp_path, moving=False)
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"])
    out = tmp_path / "o.csv"
    out.write_text("keep me")
    with pytest.raises(FileExistsError, match=r"o.csv already exists; pass --overwrite"):
        evaluate([spec], output=str(out))
    assert out.read_text() == "keep me"
    evaluate([spec], output=str(out), overwrite=True)
    assert read_rows(out)[0]["pair"] == "p"


def test_incomplete_pair_and_fractional_label_map(tmp_path):
    with pytest.raises(ValueError, match="fixed_label is given but warped_label is not"):
        evaluate([PairSpec("p", fixed_label="x.nii.gz")])
    with pytest.raises(ValueError, match="moving_landmarks is given without"):
        evaluate([PairSpec("p", moving_landmarks="x.csv")])
    lab = np.zeros((6, 6, 6), np.float32)
    lab[1:3, 1:3, 1:3] = 2.5
    save_image(lab, tmp_path / "f.nii.gz")
    with pytest.raises(DataError, match=r"fixed_label .*f.nii.gz: values must be whole numbers"):
        evaluate([PairSpec("p", fixed_label=str(tmp_path / "f.nii.gz"), warped_label=str(tmp_path / "f.nii.gz"))])


# ---------------------------------------------------------------------------------------------- summary
def test_summary_statistics():
    rows = [
        {"pair": "a", "label": "1", "dice": 0.5, "tre_mean": 2.0},
        {"pair": "a", "label": "2", "dice": 0.7, "tre_mean": 2.0},
        {"pair": "b", "label": "1", "dice": 0.9, "tre_mean": 4.0},
        {"pair": "b", "label": "2", "dice": math.nan, "tre_mean": 4.0},
        {"pair": "c", "label": "1", "dice": 0.6, "tre_mean": 9.0},
    ]
    summary = {(s["metric"], s["label"]): s for s in summarise(rows, ["pair", "label", "dice", "tre_mean"])}
    s1 = summary["dice", "1"]
    assert (s1["n"], s1["n_nan"]) == (3, 0)
    assert s1["mean"] == pytest.approx(2.0 / 3)
    assert s1["std"] == pytest.approx(math.sqrt(((0.5 - 2 / 3) ** 2 + (0.9 - 2 / 3) ** 2 + (0.6 - 2 / 3) ** 2) / 2))
    assert s1["median"] == pytest.approx(0.6)
    assert s1["q1"] == pytest.approx(0.55) and s1["q3"] == pytest.approx(0.75) and s1["iqr"] == pytest.approx(0.2)
    s2 = summary["dice", "2"]
    assert (s2["n"], s2["n_nan"]) == (1, 1) and math.isnan(s2["std"]) and s2["mean"] == 0.7
    sall = summary["dice", "all"]
    assert sall["n"] == 4 and sall["mean"] == pytest.approx((0.5 + 0.7 + 0.9 + 0.6) / 4)
    # per-pair metric: one value per pair (2, 4, 9), only an "all" row
    assert ("tre_mean", "1") not in summary
    t = summary["tre_mean", "all"]
    assert t["n"] == 3 and t["mean"] == pytest.approx(5.0) and t["median"] == 4.0


def test_output_csv_readable_by_pandas(tmp_path):
    pd = pytest.importorskip("pandas")
    paths = write_label_case(tmp_path)
    lm = write_landmarks(tmp_path)
    out = tmp_path / "o.csv"
    evaluate(
        [
            PairSpec(
                "p",
                fixed_label=paths["fixed"],
                warped_label=paths["warped"],
                fixed_landmarks=lm["fixed"],
                warped_landmarks=lm["warped"],
            )
        ],
        output=str(out),
    )
    df = pd.read_csv(out, dtype={"label": str})
    assert list(df["label"]) == ["1", "2"]
    assert df["dice"].tolist() == pytest.approx([16 / 35, 0.75])
    assert df["tre_mean"].tolist() == pytest.approx([2.25, 2.25])
    summary = pd.read_csv(default_summary_path(str(out)), dtype={"label": str})
    assert set(summary.columns) >= {"metric", "label", "mean", "std", "median", "q1", "q3", "iqr"}


def test_natural_key():
    assert sorted(["pair_10", "pair_2", "pair_1_3", "pair_1_10"], key=natural_key) == [
        "pair_1_3",
        "pair_1_10",
        "pair_2",
        "pair_10",
    ]


def test_det_j_inside_each_label(tmp_path):
    """u_i = 0.05 i^2 (voxels): central differences are exact for a quadratic, d u_i / d i = 0.1 i, so
    det J = 1 + 0.1 i at interior i. The warped label 2 spans i = 10..13 in equal slices: det J takes
    2.0, 2.1, 2.2, 2.3 equally often, mean 2.15, population std sqrt((0.15^2 + 0.05^2) / 2)."""
    paths = write_label_case(tmp_path, moving=False)
    ddf = np.zeros(SHAPE + (3,), np.float32)
    ddf[..., 0] = 0.05 * np.arange(SHAPE[0], dtype=np.float32)[:, None, None] ** 2
    save_image(ddf, tmp_path / "ddf.nii.gz", GEO)
    res = evaluate(
        [PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=str(tmp_path / "ddf.nii.gz"))]
    )
    rows = {r["label"]: r for r in res.rows}
    assert rows["2"]["jac_det_mean_in_label"] == pytest.approx(2.15, rel=1e-5)
    assert rows["2"]["jac_det_std_in_label"] == pytest.approx(math.sqrt((0.15**2 + 0.05**2) / 2), rel=1e-4)
    # label 1's warped box spans i = 3..6: mean 1 + 0.1 * 4.5
    assert rows["1"]["jac_det_mean_in_label"] == pytest.approx(1.45, rel=1e-5)
    summary = {(s["metric"], s["label"]): s for s in res.summary}
    assert summary["jac_det_mean_in_label", "2"]["mean"] == pytest.approx(2.15, rel=1e-5)


def test_label_files_and_labels_filter(tmp_path):
    """Labels given as separate binary masks (LabelFiles); ``labels`` keeps only the named ones."""
    fixed, warped, _ = label_maps()
    files = []
    for name, value in (("a", 1), ("b", 2)):
        save_image((fixed == value).astype(np.float32), tmp_path / f"f{name}.nii.gz", GEO)
        save_image((warped == value).astype(np.float32), tmp_path / f"w{name}.nii.gz", GEO)
        files.append(LabelFiles(name, str(tmp_path / f"f{name}.nii.gz"), str(tmp_path / f"w{name}.nii.gz")))
    res = evaluate([PairSpec("p", label_files=files)], labels=["b"])
    assert [r["label"] for r in res.rows] == ["b"]
    assert res.rows[0]["dice"] == pytest.approx(0.75)
