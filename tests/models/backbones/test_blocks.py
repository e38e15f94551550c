"""tfreg.models.backbones.blocks: the DeepReg blocks with each normalization choice (``norm``), checked against
a NumPy re-computation of the whole block (convolution, normalization, ReLU) on tiny 2-D and 3-D inputs."""

import itertools

import keras
import numpy as np
import pytest

from tfreg.layers.normalization import NORM_EPSILON, InstanceNormalization
from tfreg.models.backbones.blocks import ConvBlock, ConvNormAct, DeconvBlock, ResidualBlock

BN_EPSILON = 1e-3  # Keras' BatchNormalization default, DeepReg's


def conv_same(x, kernel, bias=None):
    """NumPy "same" convolution with stride 1 and an odd kernel, channels-last: x (B, *S, C), kernel (*K, C, F)."""
    k = kernel.shape[:-2]
    pads = [(0, 0)] + [(n // 2, n // 2) for n in k] + [(0, 0)]
    padded = np.pad(np.asarray(x, np.float64), pads)
    spatial = x.shape[1:-1]
    out = np.zeros(x.shape[:-1] + (kernel.shape[-1],))
    for offset in itertools.product(*(range(n) for n in k)):
        window = padded[(slice(None),) + tuple(slice(o, o + s) for o, s in zip(offset, spatial))]
        out += window @ np.asarray(kernel[offset], np.float64)
    return out if bias is None else out + bias


def normalize(z, norm, gamma=None, beta=None, groups=None, moving=None):
    """NumPy normalization of ``z`` (B, *S, C) in float64 with the biased variance.

    batch: over the batch and space per channel (``moving=(mean, var)`` for inference); instance: per sample
    and channel over space; group: per sample and group of consecutive channels over space and the group.
    """
    if norm == "none":
        return z
    channels = z.shape[-1]
    out = np.empty_like(z)
    if norm == "batch":
        for c in range(channels):
            mean, var = (z[..., c].mean(), z[..., c].var()) if moving is None else (moving[0][c], moving[1][c])
            out[..., c] = (z[..., c] - mean) / np.sqrt(var + BN_EPSILON)
    else:
        size = 1 if norm == "instance" else channels // groups
        for b in range(z.shape[0]):
            for start in range(0, channels, size):
                values = z[b, ..., start : start + size]
                out[b, ..., start : start + size] = (values - values.mean()) / np.sqrt(values.var() + NORM_EPSILON)
    return out * gamma + beta


def random_input(rng, spatial, channels):
    # per-sample and per-channel offsets and scales, so that each kind of statistics gives other values
    shape = (2, *spatial, channels)
    scale = rng.uniform(0.5, 4.0, size=(2,) + (1,) * len(spatial) + (channels,))
    offset = rng.normal(size=(2,) + (1,) * len(spatial) + (channels,)) * 3
    return (rng.normal(size=shape) * scale + offset).astype(np.float32)


def set_affine(block, rng):
    """Non-trivial gamma and beta (and conv bias where there is one); returns (gamma, beta, bias)."""
    bias = None
    conv = block.deconv if isinstance(block, DeconvBlock) else block.conv
    if conv.use_bias:
        bias = rng.normal(size=block.filters).astype(np.float32)
        conv.bias.assign(bias)
    if block.norm is None:
        return 1.0, 0.0, bias
    gamma = rng.uniform(0.5, 2.0, size=block.filters).astype(np.float32)
    beta = rng.normal(size=block.filters).astype(np.float32)
    block.norm.gamma.assign(gamma)
    block.norm.beta.assign(beta)
    return gamma, beta, bias


CASES = [
    # ndim, norm, filters, norm_groups, the group count in effect
    (2, "batch", 4, None, None),
    (3, "batch", 4, None, None),
    (2, "instance", 4, None, None),
    (3, "instance", 3, None, None),
    (2, "group", 6, 3, 3),  # 2 channels per group
    (3, "group", 8, 2, 2),  # 4 channels per group
    (3, "group", 12, None, 6),  # the default: the largest divisor of 12 that is <= 8
    (2, "none", 4, None, None),
    (3, "none", 3, None, None),
]


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("ndim, norm, filters, norm_groups, groups", CASES)
def test_conv_block_matches_numpy(ndim, norm, filters, norm_groups, groups):
    rng = np.random.default_rng(10 * ndim + filters)
    spatial = (5, 6) if ndim == 2 else (3, 4, 5)
    x = random_input(rng, spatial, 2)
    block = ConvBlock(ndim, filters, kernel_size=3, norm=norm, norm_groups=norm_groups)
    block(x)
    gamma, beta, bias = set_affine(block, rng)
    kernel = keras.ops.convert_to_numpy(block.conv.kernel)
    z = conv_same(x, kernel, bias)
    # inference first: batch norm then uses the initial moving statistics (mean 0, variance 1)
    moving = (np.zeros(filters), np.ones(filters)) if norm == "batch" else None
    expected = {
        False: np.maximum(normalize(z, norm, gamma, beta, groups, moving), 0),
        True: np.maximum(normalize(z, norm, gamma, beta, groups), 0),
    }
    for training in (False, True):
        got = keras.ops.convert_to_numpy(block(x, training=training))
        np.testing.assert_allclose(got, expected[training], rtol=2e-4, atol=2e-4, err_msg=f"training={training}")
    if norm == "batch":
        # the training call moved the statistics by (1 - momentum) = 1 % towards the batch's
        np.testing.assert_allclose(
            block.norm.moving_mean.numpy(), 0.01 * z.mean(axis=tuple(range(ndim + 1))), atol=1e-4
        )
    else:
        # no moving statistics: training and inference agree (the point of the choice)
        np.testing.assert_allclose(expected[False], expected[True])


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("norm", ["batch", "instance", "group", "none"])
def test_sub_layers_and_bias_per_choice(norm):
    types = {
        "batch": keras.layers.BatchNormalization,
        "instance": InstanceNormalization,
        "group": keras.layers.GroupNormalization,
    }
    blocks = [
        ConvBlock(3, 8, norm=norm),
        DeconvBlock(3, 8, (2, 2, 2), (4, 4, 4), norm=norm),
        ConvNormAct(3, 8, norm=norm),
    ]
    for block in blocks:
        conv = getattr(block, "conv", None) or block.deconv
        # a bias only without normalization (see tfreg.layers.normalization.conv_bias)
        assert conv.use_bias is (norm == "none"), type(block).__name__
        if norm == "none":
            assert block.norm is None
        else:
            assert type(block.norm) is types[norm]
        if norm == "group":
            assert block.norm.groups == 8 and block.norm.epsilon == NORM_EPSILON


@pytest.mark.backend_agnostic
def test_residual_block_with_group_norm_matches_numpy():
    rng = np.random.default_rng(5)
    x = random_input(rng, (3, 4, 3), 4)
    block = ResidualBlock(3, 4, kernel_size=3, norm="group", norm_groups=2)
    block(x)
    params = [set_affine(inner, rng) for inner in (block.block1, block.block2)]
    kernels = [keras.ops.convert_to_numpy(inner.conv.kernel) for inner in (block.block1, block.block2)]
    h = np.maximum(normalize(conv_same(x, kernels[0]), "group", *params[0][:2], groups=2), 0)
    expected = np.maximum(x + normalize(conv_same(h, kernels[1]), "group", *params[1][:2], groups=2), 0)
    got = keras.ops.convert_to_numpy(block(x, training=True))
    np.testing.assert_allclose(got, expected, rtol=2e-4, atol=2e-4)
    assert [b.norm.groups for b in (block.block1, block.block2)] == [2, 2]


@pytest.mark.backend_agnostic
def test_deconv_block_with_instance_norm_normalizes_its_output():
    # the transposed convolution itself is Keras'; what the block adds is the normalization and the ReLU
    rng = np.random.default_rng(2)
    x = random_input(rng, (2, 3), 3)
    block = DeconvBlock(2, 4, (2, 3), (4, 6), norm="instance")
    block(x)
    gamma, beta, _ = set_affine(block, rng)
    z = keras.ops.convert_to_numpy(block.deconv(x)).astype(np.float64)
    got = keras.ops.convert_to_numpy(block(x, training=False))
    np.testing.assert_allclose(got, np.maximum(normalize(z, "instance", gamma, beta), 0), rtol=2e-4, atol=2e-4)


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "cls, kwargs",
    [
        (ConvBlock, dict(ndim=3, filters=6, strides=2, activation=False)),
        (ResidualBlock, dict(ndim=2, filters=6)),
        (DeconvBlock, dict(ndim=3, filters=6, in_size=[2, 2, 2], out_size=[4, 4, 3])),
        (ConvNormAct, dict(ndim=2, filters=6, activation="leaky_relu")),
    ],
)
@pytest.mark.parametrize("choice", [dict(), dict(norm="group", norm_groups=3), dict(norm="none")])
def test_config_round_trip(cls, kwargs, choice):
    block = cls(**kwargs, **choice)
    config = block.get_config()
    assert config["norm"] == choice.get("norm", "batch") and config["norm_groups"] == choice.get("norm_groups")
    again = cls.from_config(config)
    assert again.get_config() == config


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(norm="layer"), r"norm='layer' is not supported: norm must be one of \['batch', 'instance', 'group'"),
        (dict(norm="group", norm_groups=3), r"norm_groups=3 must divide .* \[8\] is not divisible by 3"),
        (dict(norm="group", norm_groups=0), "norm_groups must be an integer >= 1, got 0"),
        (dict(norm="batch", norm_groups=2), "norm_groups=2 applies only to norm 'group', got norm 'batch'"),
    ],
)
def test_bad_norm_arguments(kwargs, match):
    for make in (
        lambda: ConvBlock(3, 8, **kwargs),
        lambda: ResidualBlock(3, 8, **kwargs),
        lambda: DeconvBlock(3, 8, (2, 2, 2), (4, 4, 4), **kwargs),
        lambda: ConvNormAct(3, 8, **kwargs),
    ):
        with pytest.raises(ValueError, match=match):
            make()
