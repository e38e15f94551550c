"""Tests for tfreg/layers/conv.py: the one convolution factory."""

import keras
import numpy as np
import pytest

from tests.autodiff import value_and_grads
from tests.conv_reference import np_conv_same, np_filter_gradient
from tfreg.layers.conv import FFT_CONV_ENV, FFTConv2D, FFTConv3D, conv_layer


@pytest.mark.parametrize(
    "ndim, transpose, cls",
    [
        (2, False, keras.layers.Conv2D),
        (3, False, keras.layers.Conv3D),
        (2, True, keras.layers.Conv2DTranspose),
        (3, True, keras.layers.Conv3DTranspose),
    ],
)
def test_conv_layer_picks_the_class_and_passes_arguments(ndim, transpose, cls, monkeypatch):
    monkeypatch.delenv(FFT_CONV_ENV, raising=False)
    layer = conv_layer(ndim, 4, 3, strides=2, padding="same", transpose=transpose, name="c")
    assert type(layer) is cls
    assert (layer.filters, layer.kernel_size, layer.strides, layer.name) == (4, (3,) * ndim, (2,) * ndim, "c")


@pytest.mark.parametrize("ndim", [1, 4, True, "3"])
def test_conv_layer_refuses_other_ndim(ndim):
    with pytest.raises(ValueError, match="ndim"):
        conv_layer(ndim, 4, 3)


# --- the FFT convolution ---------------------------------------------------------------------------------


def _tensorflow_backend():
    return keras.backend.backend() == "tensorflow"


@pytest.mark.parametrize(
    "ndim, kwargs, transpose, fft",
    [
        (3, dict(kernel_size=7), False, True),  # LocalNet's first level
        (3, dict(kernel_size=(7, 7, 9)), False, True),
        (3, dict(kernel_size=3), False, False),  # fast in TensorFlow already
        (3, dict(kernel_size=(7, 7, 5)), False, False),  # 245 taps, below AUTO_FFT_MIN_TAPS
        (3, dict(kernel_size=7, strides=2), False, False),
        (3, dict(kernel_size=7, dilation_rate=2), False, False),
        (3, dict(kernel_size=7, padding="valid"), False, False),
        (3, dict(kernel_size=8), False, False),
        (2, dict(kernel_size=7), False, False),
        (3, dict(kernel_size=7), True, False),
    ],
)
def test_auto_takes_the_fft_for_large_3d_kernels_on_tensorflow(ndim, kwargs, transpose, fft, monkeypatch):
    monkeypatch.delenv(FFT_CONV_ENV, raising=False)
    kwargs.setdefault("padding", "same")
    layer = conv_layer(ndim, 4, transpose=transpose, **kwargs)
    assert isinstance(layer, (FFTConv2D, FFTConv3D)) == (fft and _tensorflow_backend())


@pytest.mark.parametrize("mode", ["filter_gradient", "full"])
def test_explicit_modes_are_taken_as_asked(mode, monkeypatch):
    monkeypatch.delenv(FFT_CONV_ENV, raising=False)
    layer = conv_layer(2, 4, 3, padding="same", fft_conv=mode)
    assert type(layer) is FFTConv2D and layer.fft_mode == mode
    assert type(conv_layer(3, 4, 7, padding="same", fft_conv="off")) is keras.layers.Conv3D
    layer = conv_layer(3, 4, 7, padding="same", fft_conv=mode, name="first", use_bias=False)
    assert (layer.name, layer.use_bias, layer.kernel_size, layer.filters) == ("first", False, (7, 7, 7), 4)
    # Saved and rebuilt from its config, the layer keeps its class and mode.
    rebuilt = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert type(rebuilt) is FFTConv3D and rebuilt.fft_mode == mode


def test_auto_mode_goes_full_from_eight_input_channels():
    """auto: output and input gradient by FFT only where the direct forward pass is slower (>= 8 channels)."""
    tf = pytest.importorskip("tensorflow")
    for channels, full in ((2, False), (8, True)):
        layer = FFTConv3D(2, 7, padding="same", fft_mode="auto")
        # Through the layer's __call__, as models call it (Keras runs layers without AutoGraph).
        graph = tf.function(layer).get_concrete_function(tf.TensorSpec((1, 8, 8, 8, channels))).graph
        ops_used = {op.type for op in graph.get_operations()}
        assert ("Conv3D" not in ops_used) == full, ops_used


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(kernel_size=3, strides=2, padding="same"), "strides"),
        (dict(kernel_size=3, dilation_rate=2, padding="same"), "dilation_rate"),
        (dict(kernel_size=3, padding="valid"), "padding"),
        (dict(kernel_size=4, padding="same"), "even"),
        (dict(kernel_size=3, padding="same", transpose=True), "transposed"),
        (dict(kernel_size=3, padding="same", fft_conv="fast"), "fft_conv"),
    ],
)
def test_fft_refuses_settings_it_cannot_compute(kwargs, match):
    kwargs.setdefault("fft_conv", "full")
    with pytest.raises(ValueError, match=match):
        conv_layer(3, 4, **kwargs)


def test_environment_variable_sets_the_default(monkeypatch):
    monkeypatch.setenv(FFT_CONV_ENV, "off")
    assert type(conv_layer(3, 4, 7, padding="same")) is keras.layers.Conv3D
    assert type(conv_layer(3, 4, 7, padding="same", fft_conv="full")) is FFTConv3D
    monkeypatch.setenv(FFT_CONV_ENV, "full")  # per layer only: it would refuse every transposed convolution
    with pytest.raises(ValueError, match=f"{FFT_CONV_ENV}='full'.*'auto', 'off'"):
        conv_layer(3, 4, 7, padding="same")


@pytest.mark.backend_agnostic
@pytest.mark.parametrize("mode", ["filter_gradient", "full"])
@pytest.mark.parametrize("ndim, shape, kernel_size", [(2, (2, 9, 11), (5, 3)), (3, (1, 8, 7, 9), (7, 7, 7))])
def test_fft_layer_output_and_gradients_match_numpy(ndim, shape, kernel_size, mode):
    rng = np.random.default_rng(3)
    c_in, c_out = 3, 4
    layer = conv_layer(ndim, c_out, kernel_size, padding="same", fft_conv=mode)
    x = rng.standard_normal(shape + (c_in,)).astype(np.float32)
    w = rng.standard_normal(tuple(kernel_size) + (c_in, c_out)).astype(np.float32)
    upstream = rng.standard_normal(shape + (c_out,)).astype(np.float32)

    def weighted_output(x, w):
        return layer.convolution_op(x, w) * upstream

    value, (dx, dw) = value_and_grads(weighted_output, x, w)
    np.testing.assert_allclose(value, np.sum(np_conv_same(x, w) * upstream), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(dw, np_filter_gradient(x, upstream, kernel_size), atol=2e-5 * np.abs(dw).max())
    # dx is the adjoint: the convolution of upstream with the kernel flipped and its channels swapped.
    flipped = np.swapaxes(np.flip(w, axis=tuple(range(ndim))), -1, -2)
    expected_dx = np_conv_same(upstream, flipped)
    np.testing.assert_allclose(dx, expected_dx, atol=2e-5 * np.abs(expected_dx).max())


def test_local_backbone_gradients_equal_with_and_without_fft(monkeypatch):
    """LocalNet (7x7x7 first level) trained one step either way: same loss, same gradients to float32."""
    tf = pytest.importorskip("tensorflow")
    if not _tensorflow_backend():
        pytest.skip("the FFT filter gradient is taken automatically on the TensorFlow backend only")
    from tfreg.registry import REGISTRY

    inputs = tf.constant(np.random.default_rng(5).random((2, 12, 10, 8, 2)).astype(np.float32))
    results, weights = [], None
    for choice in ("off", "auto"):
        monkeypatch.setenv(FFT_CONV_ENV, choice)
        backbone = REGISTRY.build_backbone(
            config={"name": "local", "num_channel_initial": 8, "extract_levels": [0, 1, 2]},
            default_args=dict(image_size=(12, 10, 8), out_channels=3, out_activation=None),
        )
        backbone(inputs, training=True)
        # The same starting weights (and BatchNorm statistics) for both.
        if weights is None:
            weights = backbone.get_weights()
        else:
            backbone.set_weights(weights)
        kinds = {type(layer).__name__ for layer in backbone._flatten_layers()}
        assert ("FFTConv3D" in kinds) == (choice == "auto")
        with tf.GradientTape() as tape:
            out = backbone(inputs, training=True)
            loss = tf.reduce_sum(out * tf.sin(out))
        results.append([loss.numpy()] + [g.numpy() for g in tape.gradient(loss, backbone.trainable_variables)])
    for direct, fft in zip(*results):
        np.testing.assert_allclose(fft, direct, rtol=1e-4, atol=1e-5 * np.abs(direct).max())


def test_fft_layer_built_directly_refuses_strides_it_would_ignore():
    with pytest.raises(ValueError, match="strides"):
        FFTConv3D(4, 7, strides=2, padding="same", fft_mode="full")
