"""The one convolution factory of tfreg: ``Conv2D``/``Conv3D`` (or their transposes) chosen by ``ndim``.

Layers (:mod:`tfreg.layers.fusion`, :mod:`tfreg.layers.blocks`) and backbones
(:mod:`tfreg.models.backbones.blocks`) are written once for 2-D and 3-D and build their convolutions here.

Large 3-D kernels (7x7x7, as LocalNet's first level) get their filter gradient by FFT on the TensorFlow
backend (:mod:`tfreg.ops.conv_gradient`): TensorFlow's CPU kernel for it takes about 5x the forward pass
there, and it was most of a LocalNet training step. Forward values and the input gradient are the
ordinary convolution's; the filter gradient equals the direct one to float32 rounding.
"""

import math
import os

import keras
from keras import ops

from tfreg.checks import check_choice
from tfreg.ops.conv_gradient import conv_filter_gradient, conv_input_gradient

FILTER_GRADIENTS = ("auto", "direct", "fft")
#: Environment variable giving ``filter_gradient`` to every convolution built without one (for instance
#: ``direct`` to reproduce Keras' own gradient bit for bit, or to time both in benchmarks).
FILTER_GRADIENT_ENV = "TFREG_FILTER_GRADIENT"
# "auto" takes the FFT filter gradient from this many kernel taps on (7x7x7): measured faster on the CPU
# for every size tried, while 5x5x5 is slower at 32 channels on 32x32x30 (benchmarks/README.md).
AUTO_FFT_MIN_TAPS = 343


@ops.custom_gradient
def _conv_with_fft_filter_gradient(x, kernel):
    """``ops.conv(x, kernel, padding="same")``, stride 1; its filter gradient by FFT."""
    y = ops.conv(x, kernel, strides=1, padding="same")

    def grad(*args, upstream=None):
        if upstream is None:
            (upstream,) = args
        dx = conv_input_gradient(upstream, kernel)
        dw = conv_filter_gradient(x, upstream, tuple(kernel.shape[:-2]))
        return dx, ops.cast(dw, kernel.dtype)

    return y, grad


class _FFTFilterGradient:
    """Mixin for ``keras.layers.ConvND``: the convolution through :func:`_conv_with_fft_filter_gradient`."""

    def convolution_op(self, inputs, kernel):
        if any(s is None for s in inputs.shape[1:]):
            # The blocks need static sizes; an unknown spatial size keeps the direct gradient.
            return super().convolution_op(inputs, kernel)
        # A tensor, not the variable: TensorFlow's custom gradient would otherwise want a variables
        # argument; the gradient reaches the variable through this read.
        return _conv_with_fft_filter_gradient(inputs, ops.copy(kernel))


@keras.saving.register_keras_serializable(package="tfreg")
class FFTGradConv2D(_FFTFilterGradient, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, ``"same"``, odd kernel) whose filter gradient is an FFT."""


@keras.saving.register_keras_serializable(package="tfreg")
class FFTGradConv3D(_FFTFilterGradient, keras.layers.Conv3D):
    """``keras.layers.Conv3D`` (stride 1, ``"same"``, odd kernel) whose filter gradient is an FFT."""


_CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_FFT_CONV = {2: FFTGradConv2D, 3: FFTGradConv3D}
_CONV_TRANSPOSE = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}


def _fft_gradient_blocker(layer) -> str:
    """Why ``layer``'s settings rule out the FFT filter gradient, or ``""`` when they allow it."""
    if any(s != 1 for s in layer.strides):
        return f"strides {layer.strides}"
    if any(d != 1 for d in layer.dilation_rate):
        return f"dilation_rate {layer.dilation_rate}"
    if layer.padding != "same":
        return f"padding {layer.padding!r}"
    if layer.groups != 1:
        return f"groups {layer.groups}"
    if layer.data_format != "channels_last":
        return f"data_format {layer.data_format!r}"
    if any(k % 2 == 0 for k in layer.kernel_size):
        return f"kernel_size {layer.kernel_size} (even)"
    return ""


def default_filter_gradient() -> str:
    """``filter_gradient`` for convolutions built without one: ``$TFREG_FILTER_GRADIENT``, else ``"auto"``.

    Raises:
        ValueError: the variable is set to something other than ``auto``, ``direct`` or ``fft``.
    """
    value = os.environ.get(FILTER_GRADIENT_ENV, "auto")
    return check_choice(value, f"environment variable {FILTER_GRADIENT_ENV}", FILTER_GRADIENTS)


def conv_layer(ndim: int, *args, transpose: bool = False, filter_gradient: str = None, **kwargs):
    """A Keras convolution for ``ndim`` spatial axes, channels-last.

    Args:
        ndim: 2 (``Conv2D``) or 3 (``Conv3D``).
        *args, **kwargs: the Keras layer's arguments (``filters``, ``kernel_size``, ``strides``, ...).
        transpose: build ``Conv2DTranspose``/``Conv3DTranspose`` instead.
        filter_gradient: how the kernel's gradient is computed (values equal to float32 rounding):
            ``"direct"``: Keras' own; ``"fft"``: :func:`tfreg.ops.conv_gradient.conv_filter_gradient`
            (stride 1, no dilation, ``"same"``, odd kernel, channels-last, not transposed); ``"auto"``:
            ``"fft"`` on the TensorFlow backend for 3-D kernels of at least ``AUTO_FFT_MIN_TAPS`` taps
            that allow it, else ``"direct"``; ``None``: :func:`default_filter_gradient`.

    Raises:
        ValueError: ``ndim`` not 2 or 3; ``filter_gradient`` unknown, or ``"fft"`` with settings it does
            not support.
    """
    check_choice(ndim, "ndim", (2, 3))
    if filter_gradient is None:
        filter_gradient = default_filter_gradient()
    check_choice(filter_gradient, "filter_gradient", FILTER_GRADIENTS)
    ndim = int(ndim)
    if transpose:
        if filter_gradient == "fft":
            raise ValueError("filter_gradient='fft' is for convolutions, not transposed ones; use 'auto' or 'direct'")
        return _CONV_TRANSPOSE[ndim](*args, **kwargs)
    layer = _CONV[ndim](*args, **kwargs)
    if filter_gradient == "direct":
        return layer
    blocker = _fft_gradient_blocker(layer)
    if filter_gradient == "fft" and blocker:
        raise ValueError(
            f"filter_gradient='fft' needs stride 1, no dilation, 'same' padding, one group, channels_last and an "
            f"odd kernel; this layer has {blocker}"
        )
    if filter_gradient == "auto" and (
        blocker
        or ndim != 3
        or keras.backend.backend() != "tensorflow"
        or math.prod(layer.kernel_size) < AUTO_FFT_MIN_TAPS
    ):
        return layer
    return _FFT_CONV[ndim].from_config(layer.get_config())


__all__ = [
    "AUTO_FFT_MIN_TAPS",
    "FFTGradConv2D",
    "FFTGradConv3D",
    "FILTER_GRADIENTS",
    "FILTER_GRADIENT_ENV",
    "conv_layer",
    "default_filter_gradient",
]
