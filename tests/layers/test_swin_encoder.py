"""The Swin encoder: shapes, patch embedding and merging against NumPy, checkpointing, stochastic depth."""

import keras
import numpy as np
import pytest
from keras import ops

from tests.autodiff import value_and_grads
from tests.swin_reference import layer_norm, randomize
from tfreg.layers.stochastic_depth import drop_path_rates, stochastic_depth_scales
from tfreg.layers.swin_encoder import PatchEmbedding, PatchMerging, SwinEncoder


@pytest.mark.backend_agnostic
def test_patch_embedding_projects_each_padded_patch():
    layer = PatchEmbedding(2, 3, norm=True)
    layer.build((None, 5, 4, 6, 2))
    randomize(layer, seed=0)
    x = np.random.default_rng(1).normal(size=(1, 5, 4, 6, 2)).astype(np.float32)
    y = ops.convert_to_numpy(layer(ops.convert_to_tensor(x)))
    assert y.shape == (1, 3, 2, 3, 3)
    padded = np.zeros((1, 6, 4, 6, 2))
    padded[:, :5] = x
    kernel, bias = np.asarray(layer.proj.kernel, np.float64), np.asarray(layer.proj.bias, np.float64)
    gamma, beta = np.asarray(layer.norm_layer.gamma), np.asarray(layer.norm_layer.beta)
    for i, j, k in np.ndindex(3, 2, 3):
        patch = padded[0, 2 * i : 2 * i + 2, 2 * j : 2 * j + 2, 2 * k : 2 * k + 2]  # (2, 2, 2, C_in)
        token = np.einsum("abcd,abcde->e", patch, kernel) + bias
        np.testing.assert_allclose(y[0, i, j, k], layer_norm(token, gamma, beta), rtol=1e-4, atol=1e-4)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("size", [(4, 6), (3, 5), (4, 2, 6)])
def test_patch_merging_concatenates_each_2n_block_then_norms_and_projects(size):
    layer = PatchMerging()
    layer.build((None, *size, 3))
    randomize(layer, seed=2)
    x = np.random.default_rng(3).normal(size=(2, *size, 3)).astype(np.float32)
    y = ops.convert_to_numpy(layer(ops.convert_to_tensor(x)))
    half = tuple(-(-s // 2) for s in size)
    assert y.shape == (2, *half, 6)
    padded = np.zeros((2, *(2 * h for h in half), 3))
    padded[(slice(None),) + tuple(slice(0, s) for s in size)] = x
    gamma, beta = np.asarray(layer.norm.gamma), np.asarray(layer.norm.beta)
    w = np.asarray(layer.reduction.kernel, np.float64)
    offsets = list(np.ndindex(*(2,) * len(size)))  # the same neighbour order as the layer (row-major)
    for b in range(2):
        for g in np.ndindex(*half):
            merged = np.concatenate([padded[(b,) + tuple(2 * gi + oi for gi, oi in zip(g, o))] for o in offsets])
            np.testing.assert_allclose(y[(b,) + g], layer_norm(merged, gamma, beta) @ w, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize(
    "outputs, expected",
    [
        ("stages", [((10, 9, 8), 6), ((5, 5, 4), 12), ((3, 3, 2), 24)]),
        ("merged", [((10, 9, 8), 6), ((5, 5, 4), 12), ((3, 3, 2), 24), ((2, 2, 1), 48)]),
    ],
)
def test_encoder_outputs_per_layout(outputs, expected):
    enc = SwinEncoder(
        patch_size=4, embed_dim=6, depths=[2, 1, 2], num_heads=[2, 2, 4], window_size=(5, 6, 7), outputs=outputs
    )
    x = np.zeros((1, 40, 36, 30, 2), np.float32)
    features = enc(x)
    assert [(tuple(f.shape[1:-1]), f.shape[-1]) for f in features] == expected
    assert [tuple(s) for s in enc.compute_output_shape(x.shape)] == [(1, *g, c) for g, c in expected]


def test_encoder_refuses_heads_that_do_not_divide_a_stage_and_bad_lists():
    with pytest.raises(ValueError, match="stage 1 has 12 channels"):
        SwinEncoder(embed_dim=6, depths=[1, 1], num_heads=[2, 5])
    with pytest.raises(ValueError, match="one entry per stage"):
        SwinEncoder(embed_dim=6, depths=[1, 1], num_heads=[2, 2, 2])
    with pytest.raises(ValueError, match="depths must be"):
        SwinEncoder(depths=[])
    with pytest.raises(ValueError, match="outputs"):
        SwinEncoder(outputs="all")


@pytest.mark.backend_agnostic
def test_gradient_checkpointing_gives_the_same_values_and_gradients():
    kwargs = dict(patch_size=2, embed_dim=6, depths=[2, 2], num_heads=[2, 2], window_size=3)
    plain = SwinEncoder(**kwargs)
    checkpointed = SwinEncoder(gradient_checkpointing=[True, True], **kwargs)
    x = np.random.default_rng(4).normal(size=(1, 12, 10, 1)).astype(np.float32)
    plain(x)
    checkpointed(x)
    checkpointed.set_weights(plain.get_weights())

    def loss(layer):
        return lambda t: sum(ops.sum(ops.square(f)) for f in layer(t, training=True))

    v0, (g0,) = value_and_grads(loss(plain), x)
    v1, (g1,) = value_and_grads(loss(checkpointed), x)
    np.testing.assert_allclose(v1, v0, rtol=1e-5)
    np.testing.assert_allclose(g1, g0, rtol=1e-4, atol=1e-5)
    assert np.abs(g0).max() > 0


def test_checkpointed_stage_trains_its_weights_with_stochastic_depth():
    import tensorflow as tf

    enc = SwinEncoder(
        patch_size=2,
        embed_dim=6,
        depths=[2],
        num_heads=2,
        window_size=3,
        drop_path_rate=0.5,
        gradient_checkpointing=True,
        seed=0,
    )
    x = tf.constant(np.random.default_rng(5).normal(size=(4, 8, 8, 1)).astype(np.float32))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(enc(x, training=True)[0] ** 2)
    grads = tape.gradient(loss, enc.trainable_variables)
    assert all(g is not None for g in grads)
    assert np.isfinite(float(loss))


def test_drop_path_rates_grow_linearly_over_all_blocks():
    assert drop_path_rates([2, 3], 0.4) == [[0.0, 0.1], [0.2, 0.30000000000000004, 0.4]]
    assert drop_path_rates([1], 0.3) == [[0.0]]
    with pytest.raises(ValueError, match="drop_path_rate"):
        drop_path_rates([2], 1.0)


def test_stochastic_depth_scales_keep_the_expectation():
    gen = keras.random.SeedGenerator(0)
    scales = ops.convert_to_numpy(stochastic_depth_scales(20000, [0.0, 0.25], gen))
    assert scales.shape == (2, 20000)
    np.testing.assert_array_equal(scales[0], 1.0)
    np.testing.assert_allclose(np.unique(scales[1]), [0.0, 1.0 / 0.75], rtol=1e-6)
    assert abs(scales[1].mean() - 1.0) < 0.03  # E = (1 - rate) / (1 - rate)
