"""Tests for tfreg/ops/fft_conv.py: a "same" convolution by FFT and its gradients against NumPy sums."""

import math

import numpy as np
import pytest
from keras import ops

from tests.autodiff import value_and_grads
from tests.conv_reference import np_conv_same, np_filter_gradient
from tfreg.ops.fft_conv import (
    block_length,
    conv_fft,
    conv_filter_gradient,
    conv_input_gradient,
    conv_with_fft_filter_gradient,
)

RNG = np.random.default_rng(7)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "shape, c_in, c_out, kernel_size, max_block",
    [
        ((2, 13, 11), 3, 5, (3, 5), 8),  # 2-D, several ragged blocks per axis
        ((2, 13, 11), 3, 5, (3, 5), 48),  # 2-D, one block per axis
        ((1, 12, 10, 9), 2, 3, (3, 5, 7), 8),  # 3-D, anisotropic kernel, several blocks
        ((2, 9, 7, 8), 4, 2, (7, 7, 7), 64),  # 3-D, one block longer than the image
        ((1, 5, 6, 4), 1, 1, (5, 3, 1), 8),  # kernel of 1 along an axis
    ],
)
def test_filter_gradient_is_the_shifted_sum(shape, c_in, c_out, kernel_size, max_block):
    x = RNG.standard_normal(shape + (c_in,)).astype(np.float32)
    dy = RNG.standard_normal(shape + (c_out,)).astype(np.float32)
    got = ops.convert_to_numpy(conv_filter_gradient(x, dy, kernel_size, max_block=max_block))
    expected = np_filter_gradient(x, dy, kernel_size)
    assert got.shape == expected.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.abs(expected).max())


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("convolve", [conv_fft, conv_with_fft_filter_gradient])
@pytest.mark.parametrize(
    "shape, kernel_size, max_block",
    [
        ((2, 13, 11), (3, 5), 8),  # 2-D, ragged blocks
        ((1, 12, 10, 9), (3, 5, 7), 8),  # 3-D, anisotropic kernel, ragged blocks
        ((2, 9, 7, 8), (7, 7, 7), 48),  # one block per axis
    ],
)
def test_convolution_and_its_gradients_are_the_numpy_sums(convolve, shape, kernel_size, max_block):
    c_in, c_out = 3, 2
    x = RNG.standard_normal(shape + (c_in,)).astype(np.float32)
    w = RNG.standard_normal(tuple(kernel_size) + (c_in, c_out)).astype(np.float32)
    upstream = RNG.standard_normal(shape + (c_out,)).astype(np.float32)
    got = ops.convert_to_numpy(convolve(x, w, max_block=max_block))
    expected = np_conv_same(x, w)
    np.testing.assert_allclose(got, expected, atol=2e-5 * np.abs(expected).max())
    _, (dx, dw) = value_and_grads(lambda x, w: convolve(x, w, max_block=max_block) * upstream, x, w)
    expected_dw = np_filter_gradient(x, upstream, kernel_size)
    np.testing.assert_allclose(dw, expected_dw, atol=2e-5 * np.abs(expected_dw).max())
    flipped = np.swapaxes(np.flip(w, axis=tuple(range(len(kernel_size)))), -1, -2)
    expected_dx = np_conv_same(upstream, flipped)
    np.testing.assert_allclose(dx, expected_dx, atol=2e-5 * np.abs(expected_dx).max())


@pytest.mark.parametrize(
    "x_shape, w_shape, match",
    [
        ((1, 6, 6, 2), (3, 3, 3, 4), "3 channels"),
        ((1, 6, 6, 6, 3), (3, 3, 3, 4), "2 static spatial axes"),
        ((1, 6, 6, 3), (2, 3, 3, 4), "odd"),
    ],
)
def test_conv_fft_refuses_shapes_that_do_not_fit(x_shape, w_shape, match):
    with pytest.raises(ValueError, match=match):
        conv_fft(np.zeros(x_shape, np.float32), np.zeros(w_shape, np.float32))


@pytest.mark.backend_agnostic
def test_filter_gradient_is_float32_for_float16_inputs():
    x = RNG.standard_normal((1, 6, 5, 2)).astype(np.float16)
    dy = RNG.standard_normal((1, 6, 5, 3)).astype(np.float16)
    got = conv_filter_gradient(x, dy, (3, 3))
    assert ops.convert_to_numpy(got).dtype == np.float32
    expected = np_filter_gradient(x.astype(np.float32), dy.astype(np.float32), (3, 3))
    np.testing.assert_allclose(ops.convert_to_numpy(got), expected, atol=1e-4 * np.abs(expected).max())


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("shape, kernel_size", [((2, 9, 8), (3, 5)), ((1, 6, 7, 5), (3, 5, 3))])
def test_input_gradient_is_the_adjoint_of_the_convolution(shape, kernel_size):
    """<conv(x, w), dy> = <x, dx> for every x: dx is the convolution's adjoint applied to dy."""
    c_in, c_out = 3, 2
    w = RNG.standard_normal(tuple(kernel_size) + (c_in, c_out)).astype(np.float32)
    dy = RNG.standard_normal(shape + (c_out,)).astype(np.float32)
    got = ops.convert_to_numpy(conv_input_gradient(dy, w))
    # The adjoint column by column: dx[e] = <conv(e), dy> for each unit input e.
    size = math.prod(shape) * c_in
    expected = np.empty(size)
    for index in range(size):
        unit = np.zeros(size)
        unit[index] = 1.0
        expected[index] = np.sum(np_conv_same(unit.reshape(shape + (c_in,)), w) * dy)
    np.testing.assert_allclose(got, expected.reshape(shape + (c_in,)), atol=1e-4)


def _is_235(n):
    for prime in (2, 3, 5):
        while n % prime == 0:
            n //= prime
    return n == 1


@pytest.mark.parametrize(
    "size, kernel, max_block, expected",
    [
        (64, 7, 48, 40),  # 2 blocks of 34: 80 padded voxels
        (60, 7, 48, 36),  # 2 blocks of 30: 72
        (112, 7, 48, 45),  # 3 blocks of 39: 135
        (8, 7, 48, 15),  # one block: 8 + 7 - 1 = 14 -> 15
        (80, 3, 32, 18),  # 5 blocks of 16 = 90, tied with 30 (3 blocks of 28), the shorter wins
        (5, 13, 4, 15),  # max_block below the kernel: raised to the first smooth length above it
    ],
)
def test_block_length_pads_least_among_smooth_lengths(size, kernel, max_block, expected):
    """The chosen length against a brute-force search over products of 2, 3 and 5 (and hand values)."""
    got = block_length(size, kernel, max_block)
    longest = max(max_block, min(n for n in range(kernel + 1, 10 * kernel) if _is_235(n)))
    lengths = [n for n in range(kernel, longest + 1) if _is_235(n)]
    padded = {n: math.ceil(size / (n - kernel + 1)) * n for n in lengths}
    best = min(padded.values())
    assert got == expected == min(n for n in lengths if padded[n] == best)


@pytest.mark.parametrize(
    "x_shape, dy_shape, kernel_size, match",
    [
        ((1, 6, 6, 2), (1, 6, 6, 3), (4, 3), "odd"),
        ((1, 6, 6, 2), (1, 6, 6, 3), (3, 3, 3), "spatial axes"),
        ((1, 6, 6, 2), (1, 6, 5, 3), (3, 3), "same static spatial size"),
        ((1, 6, 6, 2), (1, 6, 6, 3), (3,), "2 or 3"),
    ],
)
def test_refuses_bad_arguments(x_shape, dy_shape, kernel_size, match):
    with pytest.raises(ValueError, match=match):
        conv_filter_gradient(np.zeros(x_shape, np.float32), np.zeros(dy_shape, np.float32), kernel_size)
