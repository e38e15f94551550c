"""tfreg.evaluation.evaluate: the union row (``union_label``), det J inside the labels and the union, the
collected det J values of the figure, folding over the whole field, and the checks of these options.

Case (shape (14, 9, 8), spacing (1.5, 1.0, 2.0) mm): three "vertebrae" as label values 3, 4, 5 of integer
label maps. Labels 3 and 4 touch along i, so their union is one blob whose surface is not the union of
their surfaces: the union's distances are not a combination of the per-label ones. References are plain
NumPy on the union masks and brute-force surface distances (tests.evaluation.test_evaluate).

Fields (voxel units, stored as float32 NIfTI):

- quadratic: u_0 = 0.05 i^2, u_1 = 0.03 j^2. Central differences are exact for quadratics, so at interior
  voxels the Jacobian is diag(1 + 0.1 i, 1 + 0.06 j, 1) and det J = (1 + 0.1 i)(1 + 0.06 j). The labels keep
  off the array edges, where numpy.gradient is one-sided.
- rigid translation: u constant, det J = 1 exactly at every voxel (the differences are exactly 0).
- scaling: u = (S - I) x with S = diag(1.1, 0.9, 1.25): det J = 1.1 * 0.9 * 1.25 = 1.2375 everywhere.
"""

import math
import os

import numpy as np
import pytest

from tests.evaluation.test_evaluate import brute_distances, read_rows
from tests.vis._png import png_size
from tfreg.data.geometry import ImageGeometry
from tfreg.data.image_io import save_image
from tfreg.evaluation.evaluate import LabelFiles, PairSpec, evaluate, pairs_from_prediction_dir

SHAPE = (14, 9, 8)
SPACING = (1.5, 1.0, 2.0)
GEO = ImageGeometry(spacing=SPACING, origin=(0.0, 0.0, 0.0), direction=np.eye(3))


def box(lo, hi):
    m = np.zeros(SHAPE, dtype=bool)
    m[tuple(slice(a, b + 1) for a, b in zip(lo, hi))] = True
    return m


def vertebrae():
    """``{role: {value: mask}}`` for roles fixed, warped, moving and label values 3, 4, 5."""
    return {
        "fixed": {3: box((2, 2, 2), (4, 6, 5)), 4: box((5, 2, 2), (7, 6, 5)), 5: box((9, 3, 2), (11, 6, 5))},
        "warped": {3: box((2, 3, 2), (4, 7, 5)), 4: box((5, 2, 3), (7, 6, 5)), 5: box((8, 3, 2), (10, 6, 5))},
        "moving": {3: box((2, 4, 2), (4, 7, 5)), 4: box((6, 2, 3), (8, 6, 5)), 5: box((8, 2, 2), (10, 5, 4))},
    }


def label_map(masks):
    out = np.zeros(SHAPE, np.float32)
    for value, mask in masks.items():
        out[mask] = value
    return out


def write_maps(folder, masks=None):
    masks = masks or vertebrae()
    paths = {}
    for role in ("fixed", "warped", "moving"):
        paths[role] = os.path.join(folder, f"{role}_map.nii.gz")
        save_image(label_map(masks[role]), paths[role], GEO)
    return paths


def grid():
    return np.meshgrid(*[np.arange(n, dtype=np.float64) for n in SHAPE], indexing="ij")


def quadratic_ddf():
    i, j, _ = grid()
    ddf = np.zeros(SHAPE + (3,), np.float64)
    ddf[..., 0] = 0.05 * i**2
    ddf[..., 1] = 0.03 * j**2
    return ddf, (1 + 0.1 * i) * (1 + 0.06 * j)


def write_ddf(folder, ddf, name="ddf.nii.gz"):
    path = os.path.join(folder, name)
    save_image(ddf.astype(np.float32), path, GEO)
    return path


def union_reference(fixed, warped):
    """Dice, Jaccard, the pooled surface distances and the centroid distance of two masks, in NumPy."""
    inter = np.count_nonzero(fixed & warped)
    pooled = brute_distances(fixed, warped, SPACING)
    centroid = lambda m: np.argwhere(m).mean(axis=0) * np.asarray(SPACING)  # noqa: E731
    return {
        "dice": 2 * inter / (fixed.sum() + warped.sum()),
        "jaccard": inter / np.count_nonzero(fixed | warped),
        "hd": pooled.max(),
        "hd95": np.percentile(pooled, 95),
        "hd99": np.percentile(pooled, 99),
        "msd": pooled.mean(),
        "assd": pooled.mean(),
        "rvd": (warped.sum() - fixed.sum()) / fixed.sum(),
        "centroid_dist": np.linalg.norm(centroid(fixed) - centroid(warped)),
    }


# ---------------------------------------------------------------------------------------------- union row
def test_union_row_of_label_maps_against_numpy(tmp_path):
    paths = write_maps(str(tmp_path))
    ddf, det = quadratic_ddf()
    spec = PairSpec(
        "p",
        fixed_label=paths["fixed"],
        warped_label=paths["warped"],
        moving_label=paths["moving"],
        ddf=write_ddf(str(tmp_path), ddf),
    )
    out = tmp_path / "o.csv"
    res = evaluate([spec], output=str(out), union_label="L543")
    assert [r["label"] for r in res.rows] == ["3", "4", "5", "L543"]
    union = res.rows[-1]
    assert union["union_of"] == "3;4;5" and all("union_of" not in r for r in res.rows[:-1])
    m = vertebrae()
    fixed, warped, moving = (m[role][3] | m[role][4] | m[role][5] for role in ("fixed", "warped", "moving"))
    for name, value in union_reference(fixed, warped).items():
        assert union[name] == pytest.approx(value, rel=1e-9), name
    for name, value in union_reference(fixed, moving).items():
        assert union[f"{name}_before"] == pytest.approx(value, rel=1e-9), name
    # the union is not the per-label average: labels 3 and 4 touch, their shared faces are no surface
    assert union["msd"] != pytest.approx(np.mean([r["msd"] for r in res.rows[:-1]]))
    # det J inside the warped union (the default mask)
    assert union["jac_det_mean_in_label"] == pytest.approx(det[warped].mean(), rel=1e-6)
    assert union["jac_det_std_in_label"] == pytest.approx(det[warped].std(), rel=1e-5)
    for r, value in zip(res.rows[:-1], (3, 4, 5)):
        assert r["jac_det_mean_in_label"] == pytest.approx(det[m["warped"][value]].mean(), rel=1e-6)
    # the CSV holds the union row with its members, and the summary treats it as a label
    written = read_rows(out)
    assert [(r["label"], r["union_of"]) for r in written] == [("3", ""), ("4", ""), ("5", ""), ("L543", "3;4;5")]
    summary = {(s["metric"], s["label"]): s for s in res.summary}
    assert summary["dice", "L543"]["n"] == 1 and summary["dice", "L543"]["median"] == pytest.approx(union["dice"])
    # ... but leaves it out of the pooled "all" row, which would count every vertebra twice
    assert summary["dice", "all"]["n"] == 3
    assert summary["dice", "all"]["mean"] == pytest.approx(np.mean([r["dice"] for r in res.rows[:-1]]))
    assert ("union_of", "all") not in summary


def test_union_fixed_mask_and_labels_filter(tmp_path):
    """``labels`` chooses the members; ``jacobian_mask="fixed"`` averages det J over the fixed masks."""
    paths = write_maps(str(tmp_path))
    ddf, det = quadratic_ddf()
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=write_ddf(str(tmp_path), ddf))
    res = evaluate([spec], labels=[3, 5], union_label="L35", jacobian_mask="fixed")
    assert [r["label"] for r in res.rows] == ["3", "5", "L35"]
    m = vertebrae()
    fixed, warped = m["fixed"][3] | m["fixed"][5], m["warped"][3] | m["warped"][5]
    union = res.rows[-1]
    assert union["union_of"] == "3;5"
    assert union["dice"] == pytest.approx(union_reference(fixed, warped)["dice"])
    assert "dice_before" not in union  # no moving map given
    assert union["jac_det_mean_in_label"] == pytest.approx(det[fixed].mean(), rel=1e-6)
    assert union["jac_det_std_in_label"] == pytest.approx(det[fixed].std(), rel=1e-5)
    assert res.rows[0]["jac_det_mean_in_label"] == pytest.approx(det[m["fixed"][3]].mean(), rel=1e-6)


def write_prediction_pair(folder, labels, with_moving=True):
    """A ``pair_<id>`` folder with ``label_<k>`` binary masks of the given vertebrae."""
    m = vertebrae()
    for k, value in enumerate(labels):
        d = os.path.join(folder, f"label_{k}")
        save_image(m["fixed"][value].astype(np.float32), os.path.join(d, "fixed_label.nii.gz"), GEO)
        save_image(m["warped"][value].astype(np.float32), os.path.join(d, "pred_fixed_label.nii.gz"), GEO)
        if with_moving is True or (with_moving and k in with_moving):
            save_image(m["moving"][value].astype(np.float32), os.path.join(d, "moving_label.nii.gz"), GEO)


def test_union_of_prediction_folder_label_files(tmp_path):
    """``pair_<id>/label_<k>`` masks: the union joins the pair's label files; without a moving mask for
    every member, the union has no ``_before`` metrics."""
    write_prediction_pair(str(tmp_path / "pair_1"), (3, 4, 5))
    write_prediction_pair(str(tmp_path / "pair_2"), (3, 5), with_moving=[0])
    res = evaluate(pairs_from_prediction_dir(str(tmp_path)), union_label="L543")
    rows = {(r["pair"], r["label"]): r for r in res.rows}
    assert list(rows) == [("pair_1", k) for k in ("0", "1", "2", "L543")] + [("pair_2", k) for k in ("0", "1", "L543")]
    m = vertebrae()
    u1 = rows["pair_1", "L543"]
    assert u1["union_of"] == "0;1;2"
    fixed = m["fixed"][3] | m["fixed"][4] | m["fixed"][5]
    warped = m["warped"][3] | m["warped"][4] | m["warped"][5]
    moving = m["moving"][3] | m["moving"][4] | m["moving"][5]
    assert u1["hd99"] == pytest.approx(union_reference(fixed, warped)["hd99"])
    assert u1["msd_before"] == pytest.approx(union_reference(fixed, moving)["msd"])
    u2 = rows["pair_2", "L543"]
    assert u2["union_of"] == "0;1"
    assert u2["dice"] == pytest.approx(
        union_reference(m["fixed"][3] | m["fixed"][5], m["warped"][3] | m["warped"][5])["dice"]
    )
    assert "dice_before" not in u2 and "dice_before" in rows["pair_2", "0"]
    summary = {(s["metric"], s["label"]): s for s in res.summary}
    assert summary["dice", "L543"]["n"] == 2 and summary["dice", "all"]["n"] == 5
    assert summary["dice", "L543"]["median"] == pytest.approx((u1["dice"] + u2["dice"]) / 2)


# ---------------------------------------------------------------------------------------------- det J
@pytest.mark.parametrize(
    "ddf, expected",
    [
        (np.broadcast_to(np.array([0.7, -1.2, 0.3]), SHAPE + (3,)), 1.0),  # rigid translation
        (np.stack(grid(), axis=-1) * np.array([0.1, -0.1, 0.25]), 1.1 * 0.9 * 1.25),  # scaling
    ],
    ids=["translation", "scaling"],
)
def test_det_j_in_labels_and_union_analytic(tmp_path, ddf, expected):
    paths = write_maps(str(tmp_path))
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=write_ddf(str(tmp_path), ddf))
    res = evaluate([spec], union_label="L543", collect_jacobian=True)
    for row in res.rows:
        if expected == 1.0:  # the differences of a constant field are exactly 0: det J is exactly 1
            assert row["jac_det_mean_in_label"] == 1.0 and row["jac_det_std_in_label"] == 0.0
        else:
            assert row["jac_det_mean_in_label"] == pytest.approx(expected, rel=1e-6)
            assert row["jac_det_std_in_label"] == pytest.approx(0.0, abs=1e-5)
        assert row["folding_fraction"] == 0.0
    warped_union = label_map(vertebrae()["warped"]) > 0
    values = res.jacobian_values["L543"]["p"]
    assert values.shape == (np.count_nonzero(warped_union),)
    np.testing.assert_allclose(values, expected, rtol=1e-6)


def test_collected_det_j_values_equal_numpy_det(tmp_path):
    """``jacobian_values`` (what the figure draws): per label and pair, det J at the mask's voxels in
    C order, equal to the analytic det of the quadratic field; labels in order, the union last."""
    m = vertebrae()
    ddf, det = quadratic_ddf()
    specs = []
    for p, shift in (("a", 0), ("b", 1)):
        masks = {role: {v: np.roll(mask, shift, axis=2) for v, mask in m[role].items()} for role in m}
        folder = tmp_path / p
        folder.mkdir()
        paths = write_maps(str(folder), masks)
        specs.append(
            PairSpec(p, fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=write_ddf(str(folder), ddf))
        )
    res = evaluate(specs, union_label="L543", jacobian_mask="fixed", collect_jacobian=True)
    assert list(res.jacobian_values) == ["3", "4", "5", "L543"]
    for p, shift in (("a", 0), ("b", 1)):
        fixed = {v: np.roll(mask, shift, axis=2) for v, mask in m["fixed"].items()}
        for label in ("3", "4", "5"):
            np.testing.assert_allclose(res.jacobian_values[label][p], det[fixed[int(label)]], rtol=1e-6)
        union = fixed[3] | fixed[4] | fixed[5]
        np.testing.assert_allclose(res.jacobian_values["L543"][p], det[union], rtol=1e-6)
    # without the request nothing is kept
    assert evaluate(specs).jacobian_values == {}


def test_folding_fraction_counts_every_voxel_of_the_field(tmp_path):
    """u_0 = -0.11 i^2: det J = 1 - 0.22 i inside (<= 0 from i = 5), 0.89 at i = 0 and 1 - 2.75 at i = 13
    (one-sided differences), so 9 of the 14 slabs fold; the labels (i <= 4 only) hold no folding voxel,
    yet folding_fraction is 9/14: it is a fraction of ALL voxels of the field, as in van Ulsen's thesis."""
    i, _, _ = grid()
    ddf = np.zeros(SHAPE + (3,))
    ddf[..., 0] = -0.11 * i**2
    masks = {role: {3: box((1, 2, 2), (4, 6, 5))} for role in ("fixed", "warped", "moving")}
    paths = write_maps(str(tmp_path), masks)
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=write_ddf(str(tmp_path), ddf))
    row = evaluate([spec], collect_jacobian=True).rows[0]
    assert row["folding_fraction"] == pytest.approx(9 / 14)
    assert row["jac_det_mean_in_label"] == pytest.approx(np.mean(1 - 0.22 * np.arange(1, 5)), rel=1e-5)
    # det J = 0 counts as folding: u_0 = -i has det J exactly 0 everywhere
    write_ddf(str(tmp_path), np.stack([-i, 0 * i, 0 * i], axis=-1), "zero.nii.gz")
    zero = evaluate([PairSpec("z", ddf=str(tmp_path / "zero.nii.gz"))]).rows[0]
    assert zero["folding_fraction"] == 1.0 and zero["jac_det_mean"] == 0.0


# ---------------------------------------------------------------------------------------------- figure
@pytest.mark.filterwarnings("ignore::tfreg.metrics.EmptyMaskWarning")  # label 9 below is empty on purpose
def test_jacobian_figure_written(tmp_path):
    paths = write_maps(str(tmp_path))
    ddf, _ = quadratic_ddf()
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=write_ddf(str(tmp_path), ddf))
    figure = tmp_path / "jac.png"
    res = evaluate([spec], output=str(tmp_path / "o.csv"), union_label="L543", jacobian_figure=str(figure))
    assert res.jacobian_figure == str(figure)
    width, height = png_size(figure)
    assert width > 0 and height > 0 and os.path.getsize(figure) > 0
    assert list(res.jacobian_values) == ["3", "4", "5", "L543"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith(".tfreg-partial")]  # written atomically
    # a label value no map has: empty masks, a figure saying so, and a warning
    with pytest.warns(UserWarning, match="every label mask is empty where there is a DDF; the figure is empty"):
        res = evaluate([spec], labels=["9"], jacobian_figure=str(tmp_path / "empty.png"))
    assert png_size(res.jacobian_figure)[0] > 0 and res.jacobian_values["9"]["p"].size == 0
    # label folders none of which is chosen: the pair has no label row, so no figure (with a warning)
    write_prediction_pair(str(tmp_path / "pred" / "pair_1"), (3,))
    write_ddf(str(tmp_path / "pred" / "pair_1"), ddf)
    pairs = pairs_from_prediction_dir(str(tmp_path / "pred"))
    with pytest.warns(UserWarning, match="no label was evaluated on a pair with a DDF; no figure written"):
        res = evaluate(pairs, labels=["7"], jacobian_figure=str(tmp_path / "none.png"))
    assert res.jacobian_figure is None and not (tmp_path / "none.png").exists()


# ---------------------------------------------------------------------------------------------- bad input
def test_union_label_clashes_are_refused_before_work(tmp_path):
    write_prediction_pair(str(tmp_path / "pair_1"), (3, 4))
    pairs = pairs_from_prediction_dir(str(tmp_path))
    out = tmp_path / "o.csv"
    with pytest.raises(
        ValueError, match=r"union_label \(--union-label\) '1' is already the name of a label of pair 'pair_1'"
    ):
        evaluate(pairs, output=str(out), union_label="1")
    assert not out.exists()
    evaluate(pairs, output=str(out), union_label="1", labels=["0"])  # label 1 is not evaluated: no clash
    with pytest.raises(ValueError, match=r"'all' is the summary's pooled row"):
        evaluate(pairs, union_label="all")
    for bad in ("", " L5 "):
        with pytest.raises(ValueError, match="expected a non-empty name without surrounding spaces"):
            evaluate(pairs, union_label=bad)
    paths = write_maps(str(tmp_path))
    maps = [PairSpec("m", fixed_label=paths["fixed"], warped_label=paths["warped"])]
    with pytest.raises(ValueError, match=r"'7' is a number, and pair 'm' gives its labels as a label map"):
        evaluate(maps, union_label="7")
    with pytest.raises(ValueError, match=r"is one of the labels to evaluate"):
        evaluate(maps, union_label="L", labels=["3", "L"])
    ddf_only = [PairSpec("d", ddf=write_ddf(str(tmp_path), quadratic_ddf()[0]))]
    with pytest.raises(ValueError, match="no pair has labels"):
        evaluate(ddf_only, union_label="L543")


def test_jacobian_figure_path_checks_before_work(tmp_path):
    paths = write_maps(str(tmp_path))
    ddf_path = write_ddf(str(tmp_path), quadratic_ddf()[0])
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], ddf=ddf_path)
    out = tmp_path / "o.csv"
    with pytest.raises(FileNotFoundError, match=r"jacobian_figure \(--jacobian-figure\) .*missing.*does not exist"):
        evaluate([spec], output=str(out), jacobian_figure=str(tmp_path / "missing" / "j.png"))
    with pytest.raises(FileExistsError, match=r"jacobian_figure \(--jacobian-figure\) .*ddf.nii.gz is the input"):
        evaluate([spec], output=str(out), jacobian_figure=ddf_path, overwrite=True)
    with pytest.raises(ValueError, match=r"ending in .png, .pdf, .svg, got '.txt'"):
        evaluate([spec], output=str(out), jacobian_figure=str(tmp_path / "j.txt"))
    with pytest.raises(ValueError, match="the output files must differ"):
        evaluate([spec], output=str(tmp_path / "j.png"), jacobian_figure=str(tmp_path / "j.png"))
    no_ddf = PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"])
    with pytest.raises(ValueError, match="no pair has both a DDF and labels"):
        evaluate([no_ddf], output=str(out), jacobian_figure=str(tmp_path / "j.png"))
    (tmp_path / "old.png").write_bytes(b"x")
    with pytest.raises(FileExistsError, match="old.png already exists"):
        evaluate([spec], output=str(out), jacobian_figure=str(tmp_path / "old.png"))
    assert not out.exists()
    with pytest.raises(ValueError, match=r"jacobian_mask must be one of \('warped', 'fixed'\), got 'moving'"):
        evaluate([spec], jacobian_mask="moving")
    assert not math.isnan(evaluate([spec], jacobian_mask="fixed").rows[0]["jac_det_mean_in_label"])


def test_label_files_spec_union_name_clash_names_the_file(tmp_path):
    write_prediction_pair(str(tmp_path / "pair_1"), (3,))
    lf = LabelFiles(
        "L543",
        str(tmp_path / "pair_1" / "label_0" / "fixed_label.nii.gz"),
        str(tmp_path / "pair_1" / "label_0" / "pred_fixed_label.nii.gz"),
    )
    with pytest.raises(ValueError, match=r"'L543' is already the name of a label of pair 'q' \(.*fixed_label.nii.gz\)"):
        evaluate([PairSpec("q", label_files=[lf])], union_label="L543")
