"""Tests for tfreg/layers/conv.py: the one convolution factory."""

import keras
import pytest

from tfreg.layers.conv import conv_layer


@pytest.mark.parametrize(
    "ndim, transpose, cls",
    [
        (2, False, keras.layers.Conv2D),
        (3, False, keras.layers.Conv3D),
        (2, True, keras.layers.Conv2DTranspose),
        (3, True, keras.layers.Conv3DTranspose),
    ],
)
def test_conv_layer_picks_the_class_and_passes_arguments(ndim, transpose, cls):
    layer = conv_layer(ndim, 4, 3, strides=2, padding="same", transpose=transpose, name="c")
    assert type(layer) is cls
    assert (layer.filters, layer.kernel_size, layer.strides, layer.name) == (4, (3,) * ndim, (2,) * ndim, "c")


@pytest.mark.parametrize("ndim", [1, 4, True, "3"])
def test_conv_layer_refuses_other_ndim(ndim):
    with pytest.raises(ValueError, match="ndim"):
        conv_layer(ndim, 4, 3)
