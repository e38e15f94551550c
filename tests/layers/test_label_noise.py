"""Label-swap noise (tfreg/layers/label_noise.py) against a NumPy loop over the voxel pairs."""

import keras
import numpy as np
import pytest

from tfreg.layers.label_noise import LabelSwapNoise, pair_shape, swap_pairs

pytestmark = pytest.mark.backend_agnostic  # also run under JAX (tests/backends)


def numpy_swap(labels, swap, axis):
    """Reference: for each pair j along ``axis`` (spatial, 0-based) where ``swap[..., j, ..., 0]``, exchange the
    label vectors of voxels 2j and 2j + 1."""
    out = labels.copy()
    a = axis + 1
    for j in range(labels.shape[a] // 2):
        first = [slice(None)] * labels.ndim
        second = [slice(None)] * labels.ndim
        decision = [slice(None)] * swap.ndim
        first[a], second[a], decision[a] = 2 * j, 2 * j + 1, j
        where = swap[tuple(decision)]  # (B, *other, 1): broadcasts over the channels
        out[tuple(first)] = np.where(where, labels[tuple(second)], labels[tuple(first)])
        out[tuple(second)] = np.where(where, labels[tuple(first)], labels[tuple(second)])
    return out


@pytest.mark.parametrize(
    "shape, axis", [((2, 6, 4, 3), 0), ((2, 6, 4, 3), 1), ((1, 4, 2, 6, 2), 2), ((1, 4, 2, 6, 2), 0)]
)
def test_swap_pairs_matches_the_numpy_loop(shape, axis):
    rng = np.random.default_rng(axis)
    labels = rng.random(shape).astype("float32")
    swap = rng.random(pair_shape(shape, axis)) < 0.5
    got = np.asarray(swap_pairs(labels, swap, axis))
    np.testing.assert_array_equal(got, numpy_swap(labels, swap, axis))
    # all pairs swapped twice is the identity; none swapped leaves the labels
    everything = np.ones(pair_shape(shape, axis), bool)
    np.testing.assert_array_equal(
        np.asarray(swap_pairs(swap_pairs(labels, everything, axis), everything, axis)), labels
    )
    np.testing.assert_array_equal(np.asarray(swap_pairs(labels, ~everything, axis)), labels)


def test_pair_shape_and_errors():
    assert pair_shape((3, 8, 6, 2), 1) == (3, 8, 3, 1)
    assert pair_shape((3, 8, 6, 4, 2), 0) == (3, 4, 6, 4, 1)
    with pytest.raises(ValueError, match="size 5 must be even"):
        pair_shape((1, 5, 4, 1), 0)
    with pytest.raises(ValueError, match=r"axis must be a spatial axis in 0..1"):
        pair_shape((1, 4, 4, 1), 2)
    with pytest.raises(ValueError, match="swap must have shape"):
        swap_pairs(np.zeros((1, 4, 4, 1), "float32"), np.zeros((1, 4, 2, 1), bool), 0)


def test_the_layer_swaps_the_pairs_of_its_random_draw():
    """The decisions are ``uniform(pair_shape) < p`` from a SeedGenerator of the layer's seed."""
    rng = np.random.default_rng(0)
    labels = (rng.random((2, 8, 6, 1)) > 0.5).astype("float32")
    layer = LabelSwapNoise(probability=0.3, axis=1, seed=7)
    got = np.asarray(layer(labels, training=True))
    draw = np.asarray(keras.random.uniform(pair_shape(labels.shape, 1), seed=keras.random.SeedGenerator(7)))
    np.testing.assert_array_equal(got, numpy_swap(labels, draw < 0.3, 1))
    # the same seed reproduces the run; the next call draws anew
    again = LabelSwapNoise(probability=0.3, axis=1, seed=7)
    np.testing.assert_array_equal(np.asarray(again(labels, training=True)), got)
    assert not np.array_equal(np.asarray(again(labels, training=True)), got)


@pytest.mark.parametrize("probability", [0.1, 0.3])
def test_the_swap_rate_is_the_probability(probability):
    # columns alternate 1, 0 along the axis: every pair differs, so a swapped pair reads 0, 1
    labels = np.zeros((16, 64, 64, 1), "float32")
    labels[:, 0::2] = 1.0
    out = np.asarray(LabelSwapNoise(probability=probability, axis=0, seed=1)(labels, training=True))
    swapped = out[:, 0::2] == 0.0
    np.testing.assert_array_equal(out[:, 1::2] == 1.0, swapped)  # swaps move both voxels of a pair
    # 32768 pairs: the standard error of the rate is below 0.003
    assert abs(swapped.mean() - probability) < 0.01


def test_no_noise_at_inference_or_with_probability_zero():
    labels = np.random.default_rng(1).random((2, 8, 8, 8, 2)).astype("float32")
    layer = LabelSwapNoise(probability=0.5, axis=2, seed=3)
    for training in (None, False):
        np.testing.assert_array_equal(np.asarray(layer(labels, training=training)), labels)
    np.testing.assert_array_equal(np.asarray(LabelSwapNoise(probability=0.0)(labels, training=True)), labels)


def test_layer_arguments_are_checked_and_saved():
    with pytest.raises(ValueError, match="probability"):
        LabelSwapNoise(probability=1.5)
    with pytest.raises(ValueError, match="axis"):
        LabelSwapNoise(axis=-1)
    config = LabelSwapNoise(probability=0.2, axis=1, seed=4).get_config()
    assert (config["probability"], config["axis"], config["seed"]) == (0.2, 1, 4)
