"""tfreg.ops.kernels: DeepReg's LNCC windows and multi-scale smoothing kernels against written-out formulas."""

import numpy as np
import pytest

from tfreg.ops import kernels as K


def test_rectangular():
    for size in (1, 4, 9):
        k = K.rectangular_kernel(size)
        assert k.dtype == np.float32 and k.shape == (size,)
        np.testing.assert_array_equal(k, np.ones(size))


def test_triangular_deepreg_values():
    np.testing.assert_array_equal(K.triangular_kernel(3), [1, 2, 1])
    np.testing.assert_array_equal(K.triangular_kernel(5), [1, 2, 3, 2, 1])
    # self-convolution of a box of length m = (size + 1) // 2
    np.testing.assert_array_equal(K.triangular_kernel(9), np.convolve(np.ones(5), np.ones(5)))
    assert K.triangular_kernel(7).dtype == np.float32


@pytest.mark.parametrize("size", [2, 4, 1, 0])
def test_triangular_rejects_even_or_small(size):
    with pytest.raises(ValueError, match="size"):
        K.triangular_kernel(size)


def test_gaussian_window():
    for size in (3, 8, 9):
        x = np.arange(size)
        expected = np.exp(-((x - (size - 1) / 2) ** 2) / (2 * (size / 3) ** 2))
        np.testing.assert_allclose(K.gaussian_kernel(size), expected, rtol=1e-6)
    assert K.gaussian_kernel(9)[4] == 1.0  # unnormalised


def test_gaussian_sigma():
    for sigma in (0.5, 1.0, 2.3):
        t = int(3 * sigma)
        x = np.arange(-t, t + 1)
        e = np.exp(-(x**2) / (2 * sigma**2))
        k = K.gaussian_kernel_sigma(sigma)
        assert k.shape == (2 * t + 1,) and k.dtype == np.float32
        np.testing.assert_allclose(k, e / e.sum(), rtol=1e-6)
        assert abs(k.sum() - 1) < 1e-6
    np.testing.assert_array_equal(K.gaussian_kernel_sigma(0.2), [1.0])


def test_cauchy():
    for sigma in (0.5, 1.0, 2.0):
        t = int(5 * sigma)
        x = np.arange(-t, t + 1)
        e = 1 / (1 + (x / sigma) ** 2)
        k = K.cauchy_kernel(sigma)
        assert k.shape == (2 * t + 1,)
        np.testing.assert_allclose(k, e / e.sum(), rtol=1e-6)


@pytest.mark.parametrize("fn", [K.gaussian_kernel_sigma, K.cauchy_kernel])
@pytest.mark.parametrize("sigma", [0, -1.0, float("nan"), "1", True])
def test_bad_sigma(fn, sigma):
    with pytest.raises(ValueError, match="sigma"):
        fn(sigma)


@pytest.mark.parametrize("size", [0, -3, 2.5, "9", True, None])
def test_bad_size(size):
    for fn in (K.rectangular_kernel, K.gaussian_kernel):
        with pytest.raises(ValueError, match="size"):
            fn(size)
