"""Tests for tfreg/ops/padding.py: replicate padding against numpy.pad(mode="edge")."""

import numpy as np
import pytest
import tensorflow as tf
from keras import ops

from tfreg.ops.padding import gather_spatial, pad_replicate, pad_replicate_transpose, replicate_index


def test_replicate_index():
    np.testing.assert_array_equal(replicate_index(3, 2, 1), [0, 0, 0, 1, 2, 2])


@pytest.mark.parametrize("method", ["gather", "concat"])
@pytest.mark.parametrize(
    "shape, pads",
    [((2, 5, 4, 3), [(2, 1), (0, 3)]), ((1, 4, 3, 5, 2), [(1, 1), (2, 0), (0, 0)]), ((2, 6, 1), [(0, 2)])],
)
def test_pad_replicate_is_numpy_edge_pad(shape, pads, method):
    x = np.random.default_rng(0).normal(size=shape).astype("float32")
    expected = np.pad(x, [(0, 0)] + pads + [(0, 0)], mode="edge")
    out = ops.convert_to_numpy(pad_replicate(ops.convert_to_tensor(x), pads, method=method))
    np.testing.assert_array_equal(out, expected)


def test_pad_replicate_with_a_run_time_size_concatenates():
    x = np.random.default_rng(1).normal(size=(2, 5, 4, 1)).astype("float32")
    fn = tf.function(lambda t: pad_replicate(t, [(1, 2), (2, 0)]), input_signature=[tf.TensorSpec((None, None, 4, 1))])
    np.testing.assert_array_equal(fn(x).numpy(), np.pad(x, [(0, 0), (1, 2), (2, 0), (0, 0)], mode="edge"))


def test_pad_replicate_gradient_counts_the_copies():
    x = tf.constant(np.zeros((1, 3, 1), np.float32))
    with tf.GradientTape() as tape:
        tape.watch(x)
        total = tf.reduce_sum(pad_replicate(x, [(2, 1)]))
    # The first voxel appears 3 times, the middle one once, the last twice.
    np.testing.assert_array_equal(tape.gradient(total, x).numpy().reshape(-1), [3.0, 1.0, 2.0])


@pytest.mark.parametrize("shape, pads", [((1, 5, 4, 2), [(2, 1), (0, 3)]), ((2, 4, 1, 3, 1), [(1, 2), (2, 2), (3, 0)])])
def test_pad_replicate_gradient_is_the_summed_edge_copies(shape, pads):
    # Reference: every padded voxel's weight added to the input voxel it copies (numpy index clamping).
    rng = np.random.default_rng(2)
    x = rng.normal(size=shape).astype("float32")
    w = rng.normal(size=(shape[0],) + tuple(n + b + a for n, (b, a) in zip(shape[1:-1], pads)) + shape[-1:])
    ref = np.zeros(shape)
    for index in np.ndindex(*w.shape[1:-1]):
        source = tuple(int(np.clip(i - b, 0, n - 1)) for i, (b, _), n in zip(index, pads, shape[1:-1]))
        ref[(slice(None),) + source] += w[(slice(None),) + index]
    np.testing.assert_allclose(
        ops.convert_to_numpy(pad_replicate_transpose(ops.convert_to_tensor(w), pads)), ref, atol=1e-5
    )
    xv = tf.Variable(x)
    with tf.GradientTape() as tape:
        total = tf.reduce_sum(pad_replicate(xv, pads) * w.astype("float32"))
    np.testing.assert_allclose(tape.gradient(total, xv).numpy(), ref, atol=1e-5)


def test_gather_spatial_outer_product_of_indices():
    x = np.arange(2 * 3 * 4 * 1, dtype="float32").reshape(2, 3, 4, 1)
    out = ops.convert_to_numpy(gather_spatial(ops.convert_to_tensor(x), [np.array([2, 0]), np.array([1, 1, 3])]))
    np.testing.assert_array_equal(out, x[:, [2, 0]][:, :, [1, 1, 3]])


def test_pad_replicate_bad_arguments():
    x = ops.zeros((1, 4, 4, 1))
    with pytest.raises(ValueError, match="pads"):
        pad_replicate(x, [(1, 1)])
    with pytest.raises(ValueError, match="method"):
        pad_replicate(x, [(1, 1), (0, 0)], method="edge")
