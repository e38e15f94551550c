"""tfreg.ops.resize against a NumPy transcription of half-pixel linear resizing and tf.image.resize."""

import numpy as np
import pytest
from keras import ops

from tfreg.ops.resize import resize

RNG = np.random.default_rng(7)


def np_resize_axis(x, axis, n_out):
    """Half-pixel linear interpolation along ``axis`` in float64 (TensorFlow's bilinear, no antialias)."""
    n_in = x.shape[axis]
    src = np.clip((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0, n_in - 1)
    lo = np.floor(src).astype(int)
    hi = np.minimum(lo + 1, n_in - 1)
    w = src - lo
    shape = [1] * x.ndim
    shape[axis] = n_out
    w = w.reshape(shape)
    return np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w


def np_resize(x, shape):
    out = x.astype(np.float64)
    for a, n in enumerate(shape):
        out = np_resize_axis(out, a + 1, n)
    return out


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "in_shape, out_shape", [((8, 9, 10), (12, 5, 10)), ((6, 6, 6), (16, 16, 16)), ((16, 11, 9), (8, 13, 3))]
)
@pytest.mark.parametrize("channels", [None, 1, 3])
def test_matches_numpy_3d(in_shape, out_shape, channels):
    x = RNG.random((2, *in_shape) + ((channels,) if channels else ())).astype(np.float32)
    got = ops.convert_to_numpy(resize(x, out_shape))
    expected = np_resize(x, out_shape)
    assert got.shape == expected.shape == (2, *out_shape) + ((channels,) if channels else ())
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize(
    "in_shape, out_shape", [((7, 9), (14, 4)), ((10, 10), (3, 17)), ((5, 8), (5, 12)), ((1, 6), (4, 6))]
)
def test_matches_tf_image_resize_2d(in_shape, out_shape):
    tf = pytest.importorskip("tensorflow")
    x = RNG.random((2, *in_shape, 3)).astype(np.float32)
    expected = tf.image.resize(x, out_shape, method="bilinear", antialias=False).numpy()
    got = ops.convert_to_numpy(resize(x, out_shape))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.backend_agnostic
def test_same_size_returns_input():
    x = RNG.random((1, 4, 5, 6, 2)).astype(np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(resize(x, (4, 5, 6))), x)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("out_shape", [(3, 9, 12), (12, 2, 5)])
def test_constant_stays_constant(out_shape):
    x = np.full((1, 6, 7, 8), 0.3, np.float32)
    np.testing.assert_array_equal(ops.convert_to_numpy(resize(x, out_shape)), np.full((1, *out_shape), 0.3, np.float32))


@pytest.mark.backend_agnostic
def test_integer_input_is_resized_as_float():
    x = RNG.integers(0, 255, (1, 4, 4, 4)).astype(np.uint8)
    got = resize(x, (6, 6, 6))
    assert "float32" in str(got.dtype)
    np.testing.assert_allclose(ops.convert_to_numpy(got), np_resize(x, (6, 6, 6)), atol=1e-4)


@pytest.mark.backend_agnostic
def test_bad_arguments():
    x = np.zeros((1, 4, 4, 4, 1), np.float32)
    with pytest.raises(ValueError, match="shape"):
        resize(x, (4, 0, 4))
    with pytest.raises(ValueError, match="rank"):
        resize(x, (4, 4))
    with pytest.raises(ValueError, match="rank"):
        resize(np.zeros((4, 4), np.float32), (4, 4, 4))


def np_resize_matrix(n_in, n_out):
    """``(n_out, n_in)`` matrix of :func:`np_resize_axis` (its transpose is the gradient's map)."""
    return np_resize_axis(np.eye(n_in)[None], 1, n_out)[0]


@pytest.mark.parametrize("in_shape, out_shape", [((5, 6, 7), (10, 12, 14)), ((9, 8, 6), (4, 8, 11)), ((6, 5), (12, 3))])
def test_gradient_matches_numpy_adjoint(in_shape, out_shape):
    """The gradient (TensorFlow: the resize kernel's own gradient kernel) is the adjoint of the interpolation."""
    tf = pytest.importorskip("tensorflow")
    x = tf.constant(RNG.random((2, *in_shape, 3)).astype(np.float32))
    upstream = RNG.standard_normal((2, *out_shape, 3))
    with tf.GradientTape() as tape:
        tape.watch(x)
        value = tf.reduce_sum(resize(x, out_shape) * tf.constant(upstream, tf.float32))
    got = tape.gradient(value, x).numpy()
    expected = upstream
    for axis, (n_in, n_out) in enumerate(zip(in_shape, out_shape)):
        expected = np.moveaxis(
            np.tensordot(np_resize_matrix(n_in, n_out).T, np.moveaxis(expected, axis + 1, 0), 1), 0, axis + 1
        )
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_unknown_batch_size_in_a_graph():
    """Traced with an unknown batch size (as Keras may trace a training step), the result is the same."""
    tf = pytest.importorskip("tensorflow")
    x = RNG.random((3, 4, 5, 6, 2)).astype(np.float32)
    traced = tf.function(lambda t: resize(t, (8, 3, 12)), input_signature=[tf.TensorSpec((None, 4, 5, 6, 2))])
    np.testing.assert_allclose(traced(tf.constant(x)).numpy(), np_resize(x, (8, 3, 12)), atol=1e-5)


def test_float64_stays_float64():
    """float64 takes the separable path (float64 arithmetic, float32 source positions as TensorFlow's)."""
    x = RNG.random((1, 5, 6, 7, 2))  # float64
    got = ops.convert_to_numpy(resize(x, (9, 4, 13)))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, np_resize(x, (9, 4, 13)), rtol=0, atol=1e-6)
