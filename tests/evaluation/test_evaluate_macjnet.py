"""tfreg.evaluation.evaluate: the columns macJNet (Zhou et al. 2023) reports, against NumPy references.

recall / precision per label (the label cases of test_evaluate.py: label 1 a 4^3 box nested in a 6^3 box,
label 2 a 4^3 box shifted by one voxel), folding per mille of the DDF (det J < 0), the normalised MI in %
(64 bins) and the global SSIM (whole-image statistics) of the images.
"""

import math
import re

import numpy as np
import pytest

from tests.evaluation.test_evaluate import GEO, label_maps, linear_ddf, read_rows, write_label_case
from tfreg.data.image_io import save_image
from tfreg.evaluation.evaluate import IMAGE_METRICS, PairSpec, ddf_metrics, evaluate, image_metrics
from tfreg.metrics import EmptyMaskWarning


def numpy_global_ssim(a, b):
    """Wang's formula with whole-image statistics, R the pair's joint range, c1 = (0.01 R)^2, c2 = (0.03 R)^2."""
    a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
    r = max(a.max(), b.max()) - min(a.min(), b.min())
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    cov = np.mean((a - a.mean()) * (b - b.mean()))
    return (
        (2 * a.mean() * b.mean() + c1)
        * (2 * cov + c2)
        / ((a.mean() ** 2 + b.mean() ** 2 + c1) * (a.var() + b.var() + c2))
    )


def numpy_nmi_pct(a, b, bins=64):
    """100 * 2 MI / (H_a + H_b) from NumPy's joint histogram, MI = H_a + H_b - H_ab (nats)."""
    joint = np.histogram2d(a.astype(np.float64).ravel(), b.astype(np.float64).ravel(), bins=bins)[0]
    joint /= joint.sum()

    def entropy(p):
        p = p[p > 0]
        return -(p * np.log(p)).sum()

    ha, hb = entropy(joint.sum(axis=1)), entropy(joint.sum(axis=0))
    return 100.0 * 2.0 * (ha + hb - entropy(joint.ravel())) / (ha + hb)


# ---------------------------------------------------------------------------------------------- labels
def test_recall_and_precision_per_label_and_before(tmp_path):
    paths = write_label_case(tmp_path)
    out = tmp_path / "res.csv"
    evaluate(
        [PairSpec("p", fixed_label=paths["fixed"], warped_label=paths["warped"], moving_label=paths["moving"])],
        output=str(out),
    )
    rows = {r["label"]: r for r in read_rows(out)}
    # label 1: the warped 64-voxel box lies inside the fixed 216-voxel box
    assert float(rows["1"]["recall"]) == pytest.approx(64 / 216)
    assert float(rows["1"]["precision"]) == 1.0
    # label 2: 48 of the 64 voxels overlap either way
    assert float(rows["2"]["recall"]) == pytest.approx(0.75) and float(rows["2"]["precision"]) == pytest.approx(0.75)
    # before: label 1 unmoved, label 2 shifted by two voxels (32 of 64 overlap)
    assert float(rows["1"]["recall_before"]) == 1.0 and float(rows["1"]["precision_before"]) == 1.0
    assert float(rows["2"]["recall_before"]) == pytest.approx(0.5)
    # independent counts on the maps, and every existing column kept in front of the new ones
    fixed, warped, _ = label_maps()
    for label, row in rows.items():
        f, w = fixed == int(label), warped == int(label)
        assert float(row["recall"]) == pytest.approx(np.sum(f & w) / np.sum(f))
        assert float(row["precision"]) == pytest.approx(np.sum(f & w) / np.sum(w))
    header = list(rows["1"])
    assert header.index("centroid_dist") + 1 == header.index("recall")
    assert header.index("precision") + 1 == header.index("dice_before")
    summary = {(s["metric"], s["label"]): s for s in read_rows(tmp_path / "res_summary.csv")}
    assert float(summary["recall", "all"]["mean"]) == pytest.approx((64 / 216 + 0.75) / 2)


def test_recall_and_precision_of_empty_labels(tmp_path):
    paths = write_label_case(tmp_path, moving=False)
    fixed, warped, _ = label_maps()
    warped[warped == 2] = 0  # label 2 lost by the warp
    save_image(warped, tmp_path / "w2.nii.gz", GEO)
    spec = PairSpec("p", fixed_label=paths["fixed"], warped_label=str(tmp_path / "w2.nii.gz"))
    with pytest.warns(EmptyMaskWarning) as caught:
        res = evaluate([spec], labels=[2, 7])
    messages = [str(w.message) for w in caught]
    assert any(re.search(r"label 2: the warped label has no foreground.*\(and precision", m) for m in messages)
    assert any(re.search(r"label 7: the fixed and warped label have no foreground.*\(and rvd,", m) for m in messages)
    rows = {r["label"]: r for r in res.rows}
    assert rows["2"]["recall"] == 0.0 and math.isnan(rows["2"]["precision"])
    assert rows["7"]["recall"] == 1.0 and rows["7"]["precision"] == 1.0  # both empty: they agree, as Dice


# ---------------------------------------------------------------------------------------------- DDF
def test_folding_permille_counts_strictly_negative_det():
    # u_i = -1.5 i: det J = -0.5 everywhere; u_i = -i: det J = 0 everywhere (folded for van Ulsen, not here)
    folded = ddf_metrics(linear_ddf([[-1.5, 0, 0], [0, 0, 0], [0, 0, 0]]), GEO)
    assert folded["folding_permille"] == 1000.0 and folded["folding_fraction"] == 1.0
    flat = ddf_metrics(linear_ddf([[-1.0, 0, 0], [0, 0, 0], [0, 0, 0]]), GEO)
    assert flat["folding_permille"] == 0.0 and flat["folding_fraction"] == 1.0


def test_folding_permille_of_a_random_field_against_numpy(tmp_path):
    rng = np.random.default_rng(3)
    ddf = rng.normal(scale=0.6, size=(9, 8, 7, 3))
    save_image(ddf.astype(np.float32), tmp_path / "ddf.nii.gz", GEO)
    out = tmp_path / "o.csv"
    evaluate([PairSpec("p", ddf=str(tmp_path / "ddf.nii.gz"))], output=str(out))
    row = read_rows(out)[0]
    # reference: J = I + du/dx by NumPy's central differences (one-sided at the edges), det by LAPACK
    u = ddf.astype(np.float32).astype(np.float64)
    jac = np.stack([np.stack(np.gradient(u[..., c]), axis=-1) for c in range(3)], axis=-2) + np.eye(3)
    det = np.linalg.det(jac)
    assert 0 < np.mean(det < 0) < 1  # the field folds somewhere, not everywhere
    assert float(row["folding_permille"]) == pytest.approx(1000 * np.mean(det < 0))
    assert float(row["folding_fraction"]) == pytest.approx(np.mean(det <= 0))


# ---------------------------------------------------------------------------------------------- images
def write_images(folder):
    """fixed (random), warped = 0.5 fixed + 0.2 (an affine intensity change) and moving (fixed flipped)."""
    rng = np.random.default_rng(0)
    fixed = rng.random((12, 11, 10)).astype(np.float32)
    images = {"fixed": fixed, "warped": (0.5 * fixed + 0.2).astype(np.float32), "moving": fixed[::-1].copy()}
    paths = {}
    for name, array in images.items():
        paths[name] = str(folder / f"{name}.nii.gz")
        save_image(array, paths[name], GEO)
    return images, paths


def test_nmi_and_global_ssim_columns(tmp_path):
    images, paths = write_images(tmp_path)
    spec = PairSpec("p", fixed_image=paths["fixed"], warped_image=paths["warped"], moving_image=paths["moving"])
    default = evaluate([spec]).rows[0]
    assert "ssim" in default and "ssim_global" not in default  # the default keeps the Gaussian SSIM only
    assert "nmi_pct" in default and "nmi_pct_before" in default
    fixed, warped, moving = (images[k].astype(np.float64) for k in ("fixed", "warped", "moving"))
    assert default["nmi_pct"] == pytest.approx(numpy_nmi_pct(fixed, warped), rel=1e-10)
    assert default["nmi_pct_before"] == pytest.approx(numpy_nmi_pct(fixed, moving), rel=1e-10)
    assert default["nmi_pct"] > 95  # an affine intensity change keeps (nearly) all information

    out = tmp_path / "g.csv"
    result = evaluate([spec], output=str(out), ssim_window="global")
    row = read_rows(out)[0]
    assert "ssim" not in row and "ssim_before" not in row
    assert float(row["ssim_global"]) == pytest.approx(numpy_global_ssim(fixed, warped), rel=1e-10)
    assert float(row["ssim_global_before"]) == pytest.approx(numpy_global_ssim(fixed, moving), rel=1e-10)
    # closed form of the affine change b = 0.5 a + 0.2: mu_b = 0.5 mu + 0.2, var_b = 0.25 s2, cov = 0.5 s2
    mu, s2 = fixed.mean(), fixed.var()
    r = max(fixed.max(), warped.max()) - min(fixed.min(), warped.min())
    c1, c2 = (0.01 * r) ** 2, (0.03 * r) ** 2
    mu_b = 0.5 * mu + 0.2
    closed = (2 * mu * mu_b + c1) * (2 * 0.5 * s2 + c2) / ((mu**2 + mu_b**2 + c1) * (s2 + 0.25 * s2 + c2))
    assert float(row["ssim_global"]) == pytest.approx(closed, rel=1e-5)  # the files are float32
    assert "ssim" not in result.columns and "ssim_global_before" in result.columns

    both = evaluate([spec], ssim_window="both").rows[0]
    assert both["ssim"] == pytest.approx(default["ssim"]) and both["ssim_global"] == pytest.approx(
        float(row["ssim_global"])
    )
    order = [c for c in IMAGE_METRICS if c in both]
    assert order == ["mi", "ssim", "nmi_pct", "ssim_global"]


def test_identical_images_give_nmi_100_and_global_ssim_1(tmp_path):
    rng = np.random.default_rng(2)
    img = rng.random((8, 9, 10)).astype(np.float32)
    values = image_metrics(img, img, ssim_window="both")
    assert values["nmi_pct"] == pytest.approx(100.0)
    assert values["ssim_global"] == pytest.approx(1.0) and values["ssim"] == pytest.approx(1.0)


def test_bad_ssim_window_is_named():
    with pytest.raises(ValueError, match=r"ssim_window \(--ssim\) must be one of .*'gaussian'.*got 'box'"):
        evaluate([PairSpec("p", fixed_image="f", warped_image="w")], ssim_window="box")
    with pytest.raises(ValueError, match=r"ssim_window \(--ssim\)"):
        image_metrics(np.ones((3, 3)), np.ones((3, 3)), ssim_window="local")
