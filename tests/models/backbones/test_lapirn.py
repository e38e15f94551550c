"""tfreg.models.backbones.lapirn: shapes, units, the residual sum, parameter counts, stages and errors (CPU, seconds).

References are independent of the code: a hand-counted parameter formula, constant fields (analytic
up-sampling), and level heads whose kernels are set by hand so that each level's field is a known constant.
"""

import keras
import numpy as np
import pytest

from tfreg.models.backbones.lapirn import LapIRN, halve, upsample_field
from tfreg.registry import REGISTRY

C = 4


def small(size, **kwargs):
    options = dict(image_size=size, num_channels=C, num_residual_blocks=1, out_kernel_initializer="zeros")
    options.update(kwargs)
    return LapIRN(**options)


def images(size, seed=0):
    return np.random.default_rng(seed).random((2,) + tuple(size) + (2,)).astype("float32")


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


def level_parameters(ndim, in_channels, channels, blocks, gate):
    """One level's weights, by hand (every LapIRN convolution is bias-free).

    Feature extractor ``3^n in C + 3^n C C``; down conv ``3^n C C``; each residual block ``2 * 3^n C C``;
    transposed conv ``2^n C C``; head ``3^n 2C C + 3^n C ndim``. The attention gate (Oktay et al., biases on
    its 1^n convolutions) with ``i = C // 2``: ``W_x`` ``2^n C i`` (stride 2, no bias), ``W_g`` ``C i + i``,
    ``psi`` ``i + 1``.
    """
    k = 3**ndim
    total = k * in_channels * channels + k * channels * channels
    total += k * channels * channels + blocks * 2 * k * channels * channels
    total += 2**ndim * channels * channels
    total += k * 2 * channels * channels + k * channels * ndim
    if gate:
        i = channels // 2
        total += 2**ndim * channels * i + channels * i + i + i + 1
    return total


@pytest.mark.parametrize("ndim", [2, 3])
@pytest.mark.parametrize("gate", [False, True])
def test_parameter_count_matches_the_hand_formula(ndim, gate):
    net = small((16,) * ndim, attention_gates=gate, num_residual_blocks=2)
    net.build((None,) + (16,) * ndim + (2,))
    expected = level_parameters(ndim, 2, C, 2, gate) + 2 * level_parameters(ndim, 2 + ndim, C, 2, gate)
    assert count(net.trainable_weights) == expected
    assert not net.non_trainable_weights
    # LapIRN's width in 3-D, 5 blocks: 3 levels of 28 channels (the figures of the module docstring)
    if ndim == 3:
        full = LapIRN(image_size=(16, 16, 16), attention_gates=gate)
        full.build((None, 16, 16, 16, 2))
        k = 27
        per_level = lambda c_in: k * c_in * 28 + k * 28 * 28 * 12 + 8 * 28 * 28 + k * 56 * 28 + k * 28 * 3  # noqa: E731
        gates = 3 * (8 * 28 * 14 + 28 * 14 + 14 + 14 + 1) if gate else 0
        assert (
            count(full.trainable_weights) == per_level(2) + 2 * per_level(5) + gates == (934_419 if gate else 923_748)
        )


@pytest.mark.parametrize("size", [(16, 16), (8, 16, 8)])
def test_shapes_and_zero_field_at_init(size):
    net = small(size)
    x = images(size)
    out = keras.ops.convert_to_numpy(net(x))
    assert out.shape == (2,) + size + (len(size),)
    np.testing.assert_array_equal(out, 0.0)
    levels = net.pyramid(x)
    assert [tuple(e["ddf"].shape[1:-1]) for e in levels] == [
        tuple(s // 4 for s in size),
        tuple(s // 2 for s in size),
        size,
    ]
    # with a zero field the warped moving image of each level is its moving image: the 2^n box average
    coarse = (
        x[..., :1]
        .reshape((2,) + sum(((s // 4, 4) for s in size), ()) + (1,))
        .mean(axis=tuple(range(2, 2 + 2 * len(size), 2)))
    )
    np.testing.assert_allclose(keras.ops.convert_to_numpy(levels[0]["moving"]), coarse, atol=1e-6)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(levels[-1]["fixed"]), x[..., 1:], atol=0)


def test_halving_is_the_box_mean():
    x = np.random.default_rng(1).random((1, 4, 6, 2)).astype("float32")
    expected = x.reshape(1, 2, 2, 3, 2, 2).mean(axis=(2, 4))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(halve(x)), expected, atol=1e-6)


@pytest.mark.parametrize("ndim", [2, 3])
def test_upsampling_a_constant_field_doubles_it(ndim):
    values = np.array([0.5, -1.25, 2.0][:ndim], "float32")
    field = np.broadcast_to(values, (1,) + (4,) * ndim + (ndim,)).copy()
    out = keras.ops.convert_to_numpy(upsample_field(field, (8,) * ndim))
    np.testing.assert_allclose(out, np.broadcast_to(2 * values, out.shape), atol=1e-6)
    # per axis: the ratio of each axis
    field = np.broadcast_to(values[:2], (1, 4, 4, 2)).copy()
    out = keras.ops.convert_to_numpy(upsample_field(field, (16, 8)))
    np.testing.assert_allclose(out[0, 3, 5], [4 * values[0], 2 * values[1]], atol=1e-6)


def set_constant_heads(net, taps):
    """Set every level's kernels by hand so that, for an input whose fixed image is 1 everywhere, level ``l``'s
    head outputs ``softsign(taps[l])`` on every voxel (before the ``range_flow`` and voxel scaling).

    Everything is zero except centre taps (which read no padding): extractor channel 0 <- the fixed image (1),
    so the skip's channel 0 is ``lrelu(1) = 1``; head_1 channel 0 <- that skip channel; head_2 <- ``taps[l]``
    times head_1's channel 0. Down conv, residual blocks and up conv are zero, so the decoder adds nothing.
    """
    centre = (1,) * net.ndim
    for l, level in enumerate(net.levels, start=1):
        layers = [level.extract_1, level.extract_2, level.down, level.up, level.head_1, level.head_2]
        layers += [conv for block in level.blocks for conv in (block.conv_1, block.conv_2)]
        for layer in layers:
            layer.kernel.assign(np.zeros(layer.kernel.shape, "float32"))
        for layer, index in (
            (level.extract_1, centre + (1, 0)),
            (level.extract_2, centre + (0, 0)),
            (level.head_1, centre + (0, 0)),  # the skip's channel 0, first in concat[skip, up]
        ):
            k = np.zeros(layer.kernel.shape, "float32")
            k[index] = 1.0
            layer.kernel.assign(k)
        k = np.zeros(level.head_2.kernel.shape, "float32")
        k[centre + (0,)] = taps[l]
        level.head_2.kernel.assign(k)


def softsign(v):
    return v / (1 + np.abs(v))


def test_residual_fields_are_summed_across_levels():
    """Heads set by hand (:func:`set_constant_heads`): level ``l``'s residual is the constant
    ``r_l = softsign(t_l) * 0.4 * (S_l - 1) / 2`` voxels of its grid. A 2-level 2-D net on 8x8: level 1 (4x4)
    gives ``r_1``; level 2 gives ``2 r_1 + r_2`` (the coarse field doubled in fine voxels, plus the residual).
    """
    size = (8, 8)
    net = small(size, num_levels=2, num_residual_blocks=1)
    x = np.ones((1,) + size + (2,), "float32")
    net.build(x.shape)
    taps = {1: np.array([0.3, -0.6], "float32"), 2: np.array([-0.2, 0.5], "float32")}
    set_constant_heads(net, taps)
    r1 = softsign(taps[1]) * 0.4 * (4 - 1) / 2
    r2 = softsign(taps[2]) * 0.4 * (8 - 1) / 2
    levels = net.pyramid(x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(levels[0]["ddf"]), np.broadcast_to(r1, (1, 4, 4, 2)), atol=1e-6
    )
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(net(x)), np.broadcast_to(2 * r1 + r2, (1, 8, 8, 2)), atol=1e-5
    )
    # level 1 active: its field up-sampled to the full grid, doubled
    net.set_stage(1)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(net(x)), np.broadcast_to(2 * r1, (1, 8, 8, 2)), atol=1e-6)


def test_diffeomorphic_levels_integrate_the_summed_velocity():
    """Velocities are summed as the displacements are (``v_2 = 2 v_1 + r_2``) and integrated by scaling and
    squaring: a constant velocity (a translation) integrates to itself wherever the samples stay inside the
    grid (the zero boundary reaches in by one voxel per squaring through the linear interpolation: 4 steps,
    5 voxels kept clear)."""
    size = (16, 16)
    net = small(size, num_levels=2, num_residual_blocks=0, diffeomorphic=True, integration_steps=4)
    x = np.ones((1,) + size + (2,), "float32")
    net.build(x.shape)
    taps = {1: np.array([0.1, -0.2], "float32"), 2: np.array([0.05, 0.1], "float32")}
    set_constant_heads(net, taps)
    v1 = softsign(taps[1]) * 0.4 * (8 - 1) / 2
    v2 = 2 * v1 + softsign(taps[2]) * 0.4 * (16 - 1) / 2
    levels = net.pyramid(x)
    np.testing.assert_allclose(
        keras.ops.convert_to_numpy(levels[1]["dvf"]), np.broadcast_to(v2, (1, 16, 16, 2)), atol=1e-5
    )
    ddf = keras.ops.convert_to_numpy(levels[1]["ddf"])
    assert np.abs(v2).max() < 2
    np.testing.assert_allclose(ddf[:, 5:-5, 5:-5], np.broadcast_to(v2, (1, 6, 6, 2)), atol=1e-5)


def test_set_stage_sets_trainable_flags():
    net = small((16, 16))
    net.build((None, 16, 16, 2))
    per_level = [len(level.trainable_weights) for level in net.levels]
    assert net.active_level == 3 and net.frozen_levels == ()
    net.set_stage(2, frozen_levels=[1])
    assert [level.trainable for level in net.levels] == [False, True, False]
    assert len(net.trainable_weights) == per_level[1]
    assert (net.active_level, net.frozen_levels) == (2, (1,))
    assert len(net.pyramid(images((16, 16)))) == 2
    net.set_stage(3)
    assert all(level.trainable for level in net.levels) and len(net.trainable_weights) == sum(per_level)


@pytest.mark.parametrize(
    "stage, match",
    [
        ((0, ()), "active_level must be an integer in \\[1, 3\\]"),
        ((2, (2,)), "coarser than active_level 2"),
        ((3, 1), "frozen_levels must be a list"),
    ],
)
def test_set_stage_errors(stage, match):
    with pytest.raises(ValueError, match=match):
        small((16, 16)).set_stage(*stage)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(image_size=(12, 16)), "image_size \\(12, 16\\) must be divisible by 2\\*\\*num_levels = 8"),
        (dict(image_size=(8, 8), num_levels=4), "divisible by 2\\*\\*num_levels = 16"),
        (dict(image_size=(16, 16), out_channels=3), "out_channels must be ndim = 2"),
        (dict(image_size=(16, 16), out_activation="tanh"), "out_activation must be None"),
        (dict(image_size=(16, 16), num_channels=0), "num_channels must be an integer >= 1"),
        (dict(image_size=(16, 16), attention_gates="yes"), "attention_gates must be True or False"),
        (dict(image_size=(16, 16), range_flow=0.0), "range_flow must be a number > 0"),
        (dict(image_size=(16,)), "image_size must have 2 or 3"),
    ],
)
def test_constructor_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        LapIRN(**kwargs)


def test_input_must_be_moving_and_fixed():
    with pytest.raises(ValueError, match="expected input \\(batch, \\*\\(16, 16\\), 2\\)"):
        small((16, 16))(np.zeros((1, 16, 16, 3), "float32"))


def test_registered_and_config_round_trips():
    net = REGISTRY.build_backbone(
        {"name": "lapirn", "num_channels": 4, "attention_gates": True}, {"image_size": (8, 8)}
    )
    assert isinstance(net, LapIRN) and net.out_channels == 2
    clone = LapIRN.from_config(net.get_config())
    assert clone.get_config() == net.get_config()
