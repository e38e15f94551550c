"""tfreg.models.backbones.unet_segmenter: parameter counts against hand formulas, shapes, options, errors."""

import keras
import numpy as np
import pytest

from tfreg.models.backbones import UNetSegmenter
from tfreg.models.backbones.blocks import ConvNormAct
from tfreg.registry import REGISTRY


def expected_parameters(ndim, in_channels, channels, convs=2, kernel=3, norm="batch", up="transposed_conv", scse=0):
    """Every weight of the U-Net segmenter (trainable and BatchNormalization statistics), counted by hand.

    A conv unit ``cin -> cout``: ``k^n cin cout`` weights, a bias only without a norm, 4 per channel for batch
    norm (gamma, beta, moving mean and variance), 2 for instance norm (gamma, beta). A transposed conv
    ``2^n cin cout + cout``. scSE with ratio ``r`` on ``C`` channels: two dense layers ``C -> C//r -> C`` with
    biases, and a ``1^n`` conv ``C -> 1`` with a bias.
    """

    def unit(cin, cout):
        norm_params = {"batch": 4 * cout, "instance": 2 * cout, "none": cout}[norm]
        return kernel**ndim * cin * cout + norm_params

    def block(cin, cout):
        return unit(cin, cout) + sum(unit(cout, cout) for _ in range(convs - 1))

    total, cin = 0, in_channels
    for c in channels:
        total += block(cin, c)
        cin = c
    for d in range(len(channels) - 2, -1, -1):
        below = channels[d + 1]
        if up == "transposed_conv":
            total += 2**ndim * below * channels[d] + channels[d]
            decoder_in = 2 * channels[d]
        else:
            decoder_in = channels[d] + below
        total += block(decoder_in, channels[d])
        if scse:
            c, h = channels[d], max(channels[d] // scse, 1)
            total += (c * h + h) + (h * c + c) + (c + 1)
    return total


def count(model):
    return sum(int(np.prod(w.shape)) for w in model.weights)


@pytest.mark.parametrize(
    "ndim, in_channels, channels, kwargs",
    [
        (3, 1, [4, 8, 16], {}),
        (2, 3, [4, 8, 16, 32], dict(convs_per_block=3, kernel_size=5)),
        (3, 2, [6, 12], dict(norm="instance", activation="leaky_relu", downsampling="strided_conv", scse=True)),
        (2, 1, [4, 8, 16], dict(norm="none", upsampling="linear", scse=True, scse_ratio=4)),
    ],
)
def test_parameter_count_matches_the_hand_formula(ndim, in_channels, channels, kwargs):
    size = (8,) * ndim
    model = UNetSegmenter(image_size=size, channels=channels, **kwargs)
    model(np.zeros((1, *size, in_channels), np.float32))
    expected = expected_parameters(
        ndim,
        in_channels,
        channels,
        convs=kwargs.get("convs_per_block", 2),
        kernel=kwargs.get("kernel_size", 3),
        norm=kwargs.get("norm", "batch"),
        up=kwargs.get("upsampling", "transposed_conv"),
        scse=kwargs.get("scse_ratio", 2) if kwargs.get("scse") else 0,
    )
    assert count(model) == expected


def test_he_et_al_attention_segmenter_has_the_papers_1_9_million_parameters():
    # He, He and Cao 2022 reduce a U-Net "from about 7.7 million to 1.9 million" parameters: a 2-D U-Net with 4
    # poolings, 2 x (conv 3x3 -> BN -> ReLU), 2x2 transposed convs and a 1-channel 1x1 head has 1,942,289
    # trainable parameters with base 16 and 7,762,465 with base 32 (the spec's own count).
    for base, expected in ((16, 1_942_289), (32, 7_762_465)):
        model = UNetSegmenter(image_size=(16, 16), channels=[base * 2**i for i in range(5)])
        features = model(np.zeros((1, 16, 16, 1), np.float32))
        head = keras.layers.Conv2D(1, 1)
        head(features)
        trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights + head.trainable_weights)
        assert trainable == expected


@pytest.mark.parametrize(
    "size, kwargs",
    [
        ((9, 10, 11), {}),
        ((9, 10, 11), dict(downsampling="strided_conv", upsampling="linear")),
        ((7, 12), dict(norm="instance", scse=True)),
        ((16, 16), dict(upsampling="linear", norm="none")),
    ],
)
def test_output_is_level_zero_features_on_the_input_grid(size, kwargs):
    model = UNetSegmenter(image_size=size, channels=[3, 5, 7], **kwargs)
    out = model(np.random.default_rng(0).normal(size=(2, *size, 4)).astype(np.float32))
    assert tuple(out.shape) == (2, *size, 3)
    assert model.out_channels == 3
    assert tuple(model.compute_output_shape((2, *size, 4))) == (2, *size, 3)
    # levels: ceil(size / 2) per down-sampling, whichever down-sampling is used
    assert model.sizes == [size, tuple(-(-s // 2) for s in size), tuple(-(-s // 4) for s in size)]


def test_strided_downsampling_puts_the_stride_in_the_first_conv_of_each_lower_level():
    model = UNetSegmenter(image_size=(8, 8), channels=[2, 4, 8], downsampling="strided_conv")
    strides = [[unit.strides for unit in block] for block in model.encoders]
    assert strides == [[1, 1], [2, 1], [2, 1]]
    assert model.pools == []
    pooled = UNetSegmenter(image_size=(8, 8), channels=[2, 4, 8])
    assert [[unit.strides for unit in block] for block in pooled.encoders] == [[1, 1]] * 3
    assert len(pooled.pools) == 2


def test_one_level_with_1x1_kernels_matches_numpy():
    # one level: no down-sampling, one block of convs; with 1x1 kernels and no norm the block is two affine
    # maps per voxel, each followed by the leaky ReLU: an independent NumPy reference
    model = UNetSegmenter(
        image_size=(5, 6), channels=[4], kernel_size=1, norm="none", activation="leaky_relu", negative_slope=0.2
    )
    x = np.random.default_rng(1).normal(size=(2, 5, 6, 3)).astype(np.float32)
    model(x)  # builds the layers
    rng = np.random.default_rng(2)
    for unit in model.encoders[0]:  # non-zero biases, so that they are tested too
        unit.conv.bias.assign(rng.normal(size=unit.conv.bias.shape).astype(np.float32))
    out = keras.ops.convert_to_numpy(model(x))
    expected = x.astype(np.float64)
    for unit in model.encoders[0]:
        kernel = keras.ops.convert_to_numpy(unit.conv.kernel)[0, 0]
        bias = keras.ops.convert_to_numpy(unit.conv.bias)
        pre = expected @ kernel + bias
        expected = np.where(pre > 0, pre, 0.2 * pre)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert (out < 0).any()


def test_config_round_trip_and_registry():
    model = REGISTRY.build_backbone(
        {"name": "unet_segmenter", "channels": [2, 4], "norm": "instance", "scse": True},
        default_args={"image_size": (8, 8, 8)},
    )
    assert isinstance(model, UNetSegmenter)
    config = model.get_config()
    assert config["channels"] == [2, 4] and config["norm"] == "instance" and config["image_size"] == [8, 8, 8]
    assert UNetSegmenter.from_config(config).get_config() == config


def test_conv_norm_act_config_round_trip():
    unit = ConvNormAct(3, 4, norm="instance", activation="leaky_relu", negative_slope=0.1)
    config = unit.get_config()
    assert config["norm"] == "instance" and config["negative_slope"] == 0.1
    assert ConvNormAct.from_config(config).get_config() == config
    # a bias only without normalization
    assert unit.conv.use_bias is False and ConvNormAct(3, 4, norm="none").conv.use_bias is True


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(channels=[]), "channels must be a non-empty list"),
        (dict(channels=8), "channels must be a non-empty list"),
        (dict(channels=[8, 0]), "channels must be an integer >= 1"),
        (dict(norm="layer"), "norm='layer' is not supported"),
        (dict(activation="gelu"), "activation='gelu' is not supported"),
        (dict(downsampling="avg_pool"), "downsampling='avg_pool' is not supported"),
        (dict(upsampling="nearest"), "upsampling='nearest' is not supported"),
        (dict(scse="yes"), "scse must be True or False"),
        (dict(convs_per_block=0), "convs_per_block must be an integer >= 1"),
        (dict(channels=[2, 4, 8, 16, 32]), r"does not fit depth 4: every spatial size must be >= strides\*\*depth"),
        (dict(image_size=(8,)), "image_size must have 2 or 3 spatial sizes"),
    ],
)
def test_bad_arguments(kwargs, match):
    kwargs = {"image_size": (8, 8, 8), **kwargs}
    with pytest.raises(ValueError, match=match):
        UNetSegmenter(**kwargs)


def test_wrong_input_grid_is_refused():
    model = UNetSegmenter(image_size=(8, 8), channels=[2, 4])
    with pytest.raises(ValueError, match=r"expected input \(batch, \*\(8, 8\), channels\), got shape \(1, 8, 9, 1\)"):
        model(np.zeros((1, 8, 9, 1), np.float32))
    with pytest.raises(ValueError, match="unexpected key"):
        REGISTRY.build_backbone({"name": "unet_segmenter", "out_channels": 3}, default_args={"image_size": (8, 8)})
