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
