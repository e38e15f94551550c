"""tfreg.ops.differences against numpy.gradient and numpy.diff, 2-D and 3-D."""

import numpy as np
import pytest
from keras import ops

from tfreg.ops.differences import (
    central_difference,
    central_difference_cropped,
    forward_difference,
    forward_difference_cropped,
    spatial_ndim,
)

pytestmark = pytest.mark.backend_agnostic

RNG = np.random.default_rng(13)
SHAPES = [(6, 7), (5, 6, 7)]


def np_(x):
    return ops.convert_to_numpy(x)


def crop(x, axes, start, stop):
    index = [slice(None)] * x.ndim
    for a in axes:
        index[a + 1] = slice(start, stop)
    return x[tuple(index)]


def field(shape, channels=2):
    return RNG.standard_normal((2, *shape, channels)).astype(np.float32)


@pytest.mark.parametrize("shape", SHAPES)
def test_central_same_is_numpy_gradient(shape):
    x = field(shape)
    for axis in range(len(shape)):
        expected = np.gradient(x.astype(np.float64), axis=axis + 1)  # edge_order=1
        np.testing.assert_allclose(np_(central_difference(x, axis, padding="same")), expected, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_central_valid_is_numpy_gradient_interior(shape):
    x = field(shape)
    for axis in range(len(shape)):
        expected = crop(np.gradient(x.astype(np.float64), axis=axis + 1), [axis], 1, -1)
        got = np_(central_difference(x, axis))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_is_numpy_diff(shape):
    x = field(shape)
    for axis in range(len(shape)):
        expected = np.diff(x.astype(np.float64), axis=axis + 1)
        np.testing.assert_allclose(np_(forward_difference(x, axis)), expected, atol=1e-6)
        same = np.diff(x.astype(np.float64), axis=axis + 1, append=np.take(x, [-1], axis=axis + 1))
        np.testing.assert_allclose(np_(forward_difference(x, axis, padding="same")), same, atol=1e-6)


@pytest.mark.parametrize("shape", SHAPES)
def test_cropped_variants(shape):
    x = field(shape, channels=3)
    n = len(shape)
    for axis in range(n):
        expected = crop(np.gradient(x.astype(np.float64), axis=axis + 1), range(n), 1, -1)
        got = np_(central_difference_cropped(x, axis))
        assert got.shape == (2, *(s - 2 for s in shape), 3)
        np.testing.assert_allclose(got, expected, atol=1e-6)
        expected = crop(np.diff(x.astype(np.float64), axis=axis + 1), [a for a in range(n) if a != axis], 0, -1)
        got = np_(forward_difference_cropped(x, axis))
        assert got.shape == (2, *(s - 1 for s in shape), 3)
        np.testing.assert_allclose(got, expected, atol=1e-6)


def test_linear_ramp_has_unit_slope():
    x = np.broadcast_to(np.arange(6, dtype=np.float32)[None, None, :, None], (1, 4, 6, 1))
    np.testing.assert_array_equal(np_(central_difference(x, 1, padding="same")), np.ones((1, 4, 6, 1)))
    np.testing.assert_array_equal(np_(forward_difference(x, 1)), np.ones((1, 4, 5, 1)))


def test_bad_arguments():
    x = field((5, 6))
    assert spatial_ndim(x) == 2
    with pytest.raises(ValueError, match="padding"):
        central_difference(x, 0, padding="full")
    with pytest.raises(ValueError, match="padding"):
        forward_difference(x, 0, padding="full")
    with pytest.raises(ValueError, match="spatial"):
        central_difference(np.zeros((2, 5, 1), np.float32), 0)
    with pytest.raises(ValueError, match="at least 3"):
        central_difference(np.zeros((1, 2, 5, 1), np.float32), 0)
