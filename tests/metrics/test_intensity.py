"""tfreg.metrics.intensity: MI of hand-built histograms, SSIM of constants and a brute-force window."""

import numpy as np
import pytest

from tfreg.metrics import EmptyMaskWarning, mutual_information, ssim


def _parity_images(shape=(16, 16)):
    i, j = np.indices(shape)
    return (i % 2).astype(float), (j % 2).astype(float)


def test_mi_of_independent_images_is_zero():
    a, b = _parity_images()  # joint histogram uniform over the 4 combinations
    assert mutual_information(a, b, bins=2) == pytest.approx(0.0, abs=1e-12)


def test_mi_of_image_with_itself_is_its_entropy():
    a, _ = _parity_images()
    assert mutual_information(a, a, bins=2) == pytest.approx(np.log(2))
    assert mutual_information(a, 5.0 - 3.0 * a, bins=2) == pytest.approx(np.log(2))  # any bijection
    assert mutual_information(a, a, bins=2, normalized=True) == pytest.approx(1.0)
    # four equally frequent levels: H = log 4
    levels = np.arange(64).reshape(8, 8) % 4
    assert mutual_information(levels, levels, bins=4) == pytest.approx(np.log(4))


def test_mi_hand_computed_joint_histogram():
    # a = [0, 0, 0, 1], b = [0, 0, 1, 1]: p(0,0) = 1/2, p(0,1) = 1/4, p(1,1) = 1/4
    a = np.array([[0.0, 0.0], [0.0, 1.0]])
    b = np.array([[0.0, 0.0], [1.0, 1.0]])
    expected = (
        0.5 * np.log(0.5 / (0.75 * 0.5)) + 0.25 * np.log(0.25 / (0.75 * 0.5)) + 0.25 * np.log(0.25 / (0.25 * 0.5))
    )
    assert mutual_information(a, b, bins=2) == pytest.approx(expected)
    assert mutual_information(b, a, bins=2) == pytest.approx(expected)


def test_mi_mask_and_3d():
    rng = np.random.default_rng(0)
    a = rng.random((8, 8, 8))
    b = a.copy()
    b[:4] = rng.random((4, 8, 8))  # unrelated in the first half
    mask = np.zeros(a.shape, dtype=bool)
    mask[4:] = True
    assert mutual_information(a, b, bins=8, mask=mask) == pytest.approx(mutual_information(a[4:], b[4:], bins=8))
    assert mutual_information(a, b, bins=8, mask=mask) > mutual_information(a, b, bins=8)


def test_mi_bad_and_degenerate_inputs():
    a = np.ones((4, 4))
    with pytest.raises(ValueError, match=r"\(4, 4\).*\(4, 5\)"):
        mutual_information(a, np.ones((4, 5)))
    with pytest.raises(ValueError, match="non-finite"):
        mutual_information(a, np.full((4, 4), np.nan))
    with pytest.warns(EmptyMaskWarning):
        assert np.isnan(mutual_information(a, a, mask=np.zeros((4, 4))))
    assert mutual_information(a, a) == 0.0
    with pytest.warns(RuntimeWarning, match="constant"):
        assert np.isnan(mutual_information(a, a, normalized=True))


def test_ssim_of_constant_images_is_analytic():
    # zero variances: SSIM = (2 c_a c_b + C1) / (c_a^2 + c_b^2 + C1) everywhere
    ca, cb, data_range = 0.3, 0.7, 1.0
    c1 = (0.01 * data_range) ** 2
    expected = (2 * ca * cb + c1) / (ca**2 + cb**2 + c1)
    assert ssim(np.full((10, 12), ca), np.full((10, 12), cb), data_range=1.0) == pytest.approx(expected)
    assert ssim(np.full((6, 7, 8), ca), np.full((6, 7, 8), cb), data_range=1.0) == pytest.approx(expected)


def test_ssim_identical_symmetric_and_decreasing_with_noise():
    rng = np.random.default_rng(1)
    a = rng.random((12, 12, 12))
    assert ssim(a, a) == pytest.approx(1.0)
    b = a + 0.1 * rng.normal(size=a.shape)
    c = a + 0.3 * rng.normal(size=a.shape)
    assert ssim(a, b, data_range=1.0) == pytest.approx(ssim(b, a, data_range=1.0))
    assert 1.0 > ssim(a, b, data_range=1.0) > ssim(a, c, data_range=1.0)


def test_ssim_matches_brute_force_window_at_one_pixel():
    rng = np.random.default_rng(2)
    a = rng.random((21, 21))
    b = 0.5 * a + 0.5 * rng.random((21, 21))
    mask = np.zeros(a.shape, dtype=bool)
    mask[10, 10] = True  # the centre: the 11x11 window fits, no boundary handling involved
    offsets = np.arange(-5, 6)
    weights = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / (2 * 1.5**2))
    weights /= weights.sum()
    pa, pb = a[5:16, 5:16], b[5:16, 5:16]
    mu_a, mu_b = (weights * pa).sum(), (weights * pb).sum()
    var_a = (weights * (pa - mu_a) ** 2).sum()
    var_b = (weights * (pb - mu_b) ** 2).sum()
    cov = (weights * (pa - mu_a) * (pb - mu_b)).sum()
    c1, c2 = 0.01**2, 0.03**2
    expected = (2 * mu_a * mu_b + c1) * (2 * cov + c2) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    assert ssim(a, b, data_range=1.0, mask=mask) == pytest.approx(expected, rel=1e-10)


def test_ssim_bad_inputs():
    a = np.ones((5, 5))
    with pytest.raises(ValueError, match=r"\(5, 5\).*\(5, 6\)"):
        ssim(a, np.ones((5, 6)))
    with pytest.raises(ValueError, match="data_range"):
        ssim(a, a, data_range=0.0)
    with pytest.raises(ValueError, match="2-D or 3-D"):
        ssim(np.ones(5), np.ones(5))
    with pytest.raises(ValueError, match="non-finite"):
        ssim(a, np.full((5, 5), np.inf))
    with pytest.warns(EmptyMaskWarning):
        assert np.isnan(ssim(a, a, mask=np.zeros((5, 5))))


def _global_ssim_reference(a, b, data_range, k1=0.01, k2=0.03):
    """Wang's SSIM formula with whole-image statistics, from NumPy's mean, var and cov (population)."""
    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    c1, c2 = (k1 * data_range) ** 2, (k2 * data_range) ** 2
    cov = np.cov(a, b, bias=True)[0, 1]
    numerator = (2 * a.mean() * b.mean() + c1) * (2 * cov + c2)
    return numerator / ((a.mean() ** 2 + b.mean() ** 2 + c1) * (a.var() + b.var() + c2))


def test_global_ssim_matches_numpy_statistics_2d_and_3d():
    rng = np.random.default_rng(4)
    for shape in ((13, 17), (6, 7, 8)):
        a = rng.random(shape)
        b = 0.6 * a + 0.4 * rng.random(shape) + 0.2
        data_range = max(a.max(), b.max()) - min(a.min(), b.min())  # the default: the pair's joint range
        assert ssim(a, b, window="global") == pytest.approx(_global_ssim_reference(a, b, data_range), rel=1e-12)
        assert ssim(a, b, data_range=2.0, window="global") == pytest.approx(
            _global_ssim_reference(a, b, 2.0), rel=1e-12
        )
        assert ssim(a, b, window="global") == pytest.approx(ssim(b, a, window="global"))  # symmetric


def test_global_ssim_identical_images_and_mask():
    rng = np.random.default_rng(5)
    a = rng.random((9, 10, 11)) * 300 - 1000  # CT-like values far from zero: no cancellation
    assert ssim(a, a, window="global") == pytest.approx(1.0, abs=1e-12)
    b = rng.random(a.shape)
    mask = np.zeros(a.shape, dtype=bool)
    mask[2:7, 3:8, 1:9] = True
    assert ssim(a, b, data_range=1.5, mask=mask, window="global") == pytest.approx(
        _global_ssim_reference(a[mask], b[mask], 1.5), rel=1e-12
    )
    with pytest.warns(EmptyMaskWarning):
        assert np.isnan(ssim(a, b, mask=np.zeros(a.shape), window="global"))


@pytest.mark.parametrize("alpha, beta", [(1.0, 0.0), (1.0, 0.3), (0.5, 0.0), (2.0, -0.4), (-1.0, 1.0)])
def test_global_ssim_of_an_affine_intensity_change_is_closed_form(alpha, beta):
    """b = alpha a + beta: mu_b = alpha mu + beta, sigma_b^2 = alpha^2 s2, sigma_ab = alpha s2 (s2 = var a)."""
    rng = np.random.default_rng(6)
    a = rng.random((10, 12, 8))
    b = alpha * a + beta
    mu, s2, data_range = a.mean(), a.var(), 1.0
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    mu_b = alpha * mu + beta
    expected = (2 * mu * mu_b + c1) * (2 * alpha * s2 + c2) / ((mu**2 + mu_b**2 + c1) * (s2 + alpha**2 * s2 + c2))
    assert ssim(a, b, data_range=data_range, window="global") == pytest.approx(expected, rel=1e-12)
    if (alpha, beta) == (1.0, 0.0):
        assert expected == pytest.approx(1.0)
    if alpha < 0:  # an inverted contrast has negative structure term
        assert expected < 0


def test_global_ssim_ignores_spatial_arrangement_unlike_gaussian():
    """Whole-image statistics do not see where the voxels are: a permutation applied to both images keeps
    the global SSIM and changes the windowed one."""
    rng = np.random.default_rng(7)
    i, j = np.indices((24, 24))
    a = np.sin(i / 4.0) + np.cos(j / 5.0)
    b = a + 0.3 * rng.normal(size=a.shape)
    order = rng.permutation(a.size)
    pa, pb = a.ravel()[order].reshape(a.shape), b.ravel()[order].reshape(a.shape)
    assert ssim(pa, pb, window="global") == pytest.approx(ssim(a, b, window="global"), rel=1e-12)
    assert ssim(pa, pb) != pytest.approx(ssim(a, b), rel=1e-3)


def test_ssim_window_is_checked():
    with pytest.raises(ValueError, match=r"ssim: window must be one of \('gaussian', 'global'\), got 'box'"):
        ssim(np.ones((4, 4)), np.ones((4, 4)), window="box")


def test_normalized_mi_is_symmetric_uncertainty_of_the_64_bin_histogram():
    """nmi (tfreg_evaluate's nmi_pct / 100) against NumPy: 2 MI / (H_a + H_b) from the 64 x 64 histogram."""
    rng = np.random.default_rng(8)
    a = rng.random((10, 11, 12))
    b = np.sqrt(a) + 0.05 * rng.normal(size=a.shape)
    joint = np.histogram2d(a.ravel(), b.ravel(), bins=64)[0] / a.size
    pa, pb = joint.sum(axis=1), joint.sum(axis=0)

    def entropy(p):
        p = p[p > 0]
        return -(p * np.log(p)).sum()

    mi = entropy(pa) + entropy(pb) - entropy(joint.ravel())  # MI = H_a + H_b - H_ab
    expected = 2 * mi / (entropy(pa) + entropy(pb))
    assert mutual_information(a, b, bins=64, normalized=True) == pytest.approx(expected, rel=1e-10)
    assert 0 < expected < 1
