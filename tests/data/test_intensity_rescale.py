"""Percentile rescaling (tfreg.data.intensity_rescale) against numpy.percentile."""

import numpy as np
import pytest

from tfreg.data.intensity_rescale import check_percentiles, percentile_rescale


def test_matches_numpy_percentiles_and_clips():
    image = np.random.default_rng(0).gamma(2.0, 50.0, size=(20, 18, 16)).astype(np.float32)
    out, low, high = percentile_rescale(image, (1, 99))
    p1, p99 = np.percentile(image.astype(np.float64), [1, 99])
    assert low == pytest.approx(p1) and high == pytest.approx(p99)
    np.testing.assert_allclose(out, np.clip((image - p1) / (p99 - p1), 0, 1), atol=1e-6)
    assert out.dtype == np.float32 and out.min() == 0.0 and out.max() == 1.0
    assert np.mean(out == 0.0) == pytest.approx(0.01, abs=0.002)  # 1 % of voxels below the 1st percentile


def test_nan_voxels_are_left_out_and_become_zero():
    image = np.linspace(0.0, 100.0, 2 * 50).reshape(2, 50)
    image[1, 40:] = np.nan
    out, low, high = percentile_rescale(image, (5, 95))
    valid = image[np.isfinite(image)]
    np.testing.assert_allclose([low, high], np.percentile(valid, [5, 95]))
    assert np.all(out[1, 40:] == 0.0)
    np.testing.assert_allclose(out[0], np.clip((image[0] - low) / (high - low), 0, 1), atol=1e-6)


def test_constant_and_empty_images():
    out, low, high = percentile_rescale(np.full((4, 4), 7.0))
    assert low == high == 7.0 and np.all(out == 0)
    out, low, high = percentile_rescale(np.full((3, 3), np.nan))
    assert np.isnan(low) and np.all(out == 0)


def test_check_percentiles():
    assert check_percentiles(None) is None
    assert check_percentiles([0, 100]) == (0.0, 100.0)
    for bad in ([99, 1], [1], [1, 101], [-1, 50], [1, float("nan")], [5, 5]):
        with pytest.raises(ValueError, match=r"percentiles must be two numbers low < high in \[0, 100\]"):
            check_percentiles(bad)
