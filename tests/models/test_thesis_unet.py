"""tfreg.models.backbones.thesis_unet: parameter count against a hand formula, additive skips, shapes, errors."""

import keras
import numpy as np
import pytest

from tfreg.models.backbones import ThesisUNet, UNetSegmenter
from tfreg.registry import REGISTRY


def thesis_parameters(ndim, in_channels=2, channels=(4, 8, 16, 32), out_channels=None):
    """Trainable parameters of van Ulsen's network as the thesis describes it, counted by hand.

    Conv unit ``cin -> cout``: ``3^n cin cout`` weights (no bias: batch norm follows) and the norm's ``2 cout``
    scale and offset. Transposed conv ``2^n cin cout + cout``. Additive skips: a decoder block reads
    ``channels[d]`` channels (a concatenation would read twice as many). Output conv ``3^n c0 n + n``.
    """
    out_channels = ndim if out_channels is None else out_channels

    def unit(cin, cout):
        return 3**ndim * cin * cout + 2 * cout

    total, cin = 0, in_channels
    for c in channels:
        total += unit(cin, c) + unit(c, c)
        cin = c
    for d in range(len(channels) - 2, -1, -1):
        total += 2**ndim * channels[d + 1] * channels[d] + channels[d]
        total += unit(channels[d], channels[d]) + unit(channels[d], channels[d])
    return total + 3**ndim * channels[0] * out_channels + out_channels


def count(weights):
    return sum(int(np.prod(w.shape)) for w in weights)


@pytest.mark.parametrize("size, documented", [((16, 16, 16), 79_307), ((16, 16), 27_550)])
def test_parameter_count_matches_the_description(size, documented):
    net = ThesisUNet(image_size=size, out_channels=len(size), out_kernel_initializer="zeros")
    net.build((1,) + size + (2,))
    expected = thesis_parameters(len(size))
    assert count(net.trainable_weights) == expected == documented
    # the literal description with a bias on every convolution (79,131 + 352 BN in 3-D, the spec's figure)
    if len(size) == 3:
        biases = 2 * (4 + 8 + 16 + 32) + 2 * (16 + 8 + 4)
        assert expected - 352 + biases == 79_131
    # moving mean and variance of every batch norm: 2 per channel of the 14 conv units
    assert count(net.non_trainable_weights) == 352


def test_zero_initialised_output_and_shapes_with_odd_sizes():
    net = ThesisUNet(image_size=(17, 12, 9), out_channels=3, out_kernel_initializer="zeros")
    x = np.random.default_rng(0).random((2, 17, 12, 9, 2)).astype("float32")
    out = keras.ops.convert_to_numpy(net(x))
    assert out.shape == (2, 17, 12, 9, 3)
    np.testing.assert_array_equal(out, 0.0)


def test_additive_skips_read_the_skip_channels():
    trunk = UNetSegmenter(image_size=(8, 8), channels=[4, 8], skip="add")
    trunk(np.zeros((1, 8, 8, 2), "float32"))
    first_decoder_conv = trunk.decoders[0][0]
    kernel = [w for w in first_decoder_conv.weights if len(w.shape) == 4][0]
    assert tuple(kernel.shape) == (3, 3, 4, 4)  # concat would give (3, 3, 8, 4)
    concat = UNetSegmenter(image_size=(8, 8), channels=[4, 8])
    concat(np.zeros((1, 8, 8, 2), "float32"))
    assert tuple([w for w in concat.decoders[0][0].weights if len(w.shape) == 4][0].shape) == (3, 3, 8, 4)


def test_additive_skip_is_the_sum():
    """With the up-sampling's weights zeroed, the decoder reads exactly the encoder's skip features."""
    trunk = UNetSegmenter(image_size=(8, 8), channels=[3, 6], skip="add", norm="none")
    x = np.random.default_rng(1).random((1, 8, 8, 2)).astype("float32")
    trunk(x)
    for w in trunk.ups[0].weights:
        w.assign(np.zeros(w.shape, "float32"))
    skip = x
    for unit in trunk.encoders[0]:
        skip = unit(skip)
    expected = skip
    for unit in trunk.decoders[0]:
        expected = unit(expected)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(trunk(x)), keras.ops.convert_to_numpy(expected), atol=1e-6)


def test_registered_and_config_round_trip():
    cls = REGISTRY.get("backbone_class", "thesis_unet")
    assert cls is ThesisUNet
    net = ThesisUNet(image_size=(16, 16, 16), channels=[4, 8, 16], out_channels=3)
    clone = ThesisUNet.from_config(net.get_config())
    assert clone.channels == [4, 8, 16] and clone.depth == 2


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"depth": -1}, "depth"),
        ({"channels": []}, "channels"),
        ({"image_size": (4, 16, 16)}, "depth 3"),
    ],
)
def test_bad_arguments(kwargs, fragment):
    args = {"image_size": (16, 16, 16), "out_channels": 3, **kwargs}
    with pytest.raises(ValueError, match=fragment):
        ThesisUNet(**args)


def test_add_skip_needs_transposed_convolutions():
    with pytest.raises(ValueError, match="skip: add needs upsampling: transposed_conv"):
        UNetSegmenter(image_size=(8, 8), channels=[4, 8], skip="add", upsampling="linear")
