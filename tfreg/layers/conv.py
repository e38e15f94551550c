"""The one convolution factory of tfreg: ``Conv2D``/``Conv3D`` (or their transposes) chosen by ``ndim``.

Layers (:mod:`tfreg.layers.fusion`, :mod:`tfreg.layers.blocks`) and backbones
(:mod:`tfreg.models.backbones.blocks`) are written once for 2-D and 3-D and build their convolutions here.

Large 3-D kernels (7x7x7, as LocalNet's first level) are convolved by overlap-save FFT on the TensorFlow
backend (:mod:`tfreg.ops.fft_conv`): TensorFlow's CPU kernels for them, above all the filter gradient
(about 5x the forward pass), were most of a LocalNet training step. Values and gradients equal the direct
convolution's to float32 rounding; ``fft_conv="off"`` (or ``TFREG_FFT_CONV=off``) keeps Keras' own.
"""

import math
import os

import keras
from keras import ops

from tfreg.checks import check_choice
from tfreg.ops.fft_conv import conv_fft, conv_with_fft_filter_gradient

FFT_CONV_MODES = ("auto", "off", "filter_gradient", "full")
#: Environment variable giving ``fft_conv`` to every convolution built without one: ``auto`` (the default)
#: or ``off``, to reproduce Keras' own numbers bit for bit or to time both in benchmarks.
FFT_CONV_ENV = "TFREG_FFT_CONV"
# "auto" uses the FFT from this many kernel taps on (7x7x7): measured faster on the CPU for every size
# tried, while 5x5x5 is slower at 32 channels on 32x32x30 (benchmarks/README.md).
AUTO_FFT_MIN_TAPS = 343
# ... and for the forward pass and input gradient too from this many input channels: with 2 (an image
# pair) TensorFlow's direct forward convolution is faster.
AUTO_FULL_MIN_CHANNELS = 8


class _FFTConv:
    """Mixin for ``keras.layers.ConvND``: the convolution through :mod:`tfreg.ops.fft_conv`.

    ``fft_mode``: ``"filter_gradient"`` (Keras' forward and input gradient), ``"full"``, or ``"auto"``
    (``"full"`` from ``AUTO_FULL_MIN_CHANNELS`` input channels on).
    """

    def __init__(self, *args, fft_mode="auto", **kwargs):
        super().__init__(*args, **kwargs)
        self.fft_mode = check_choice(fft_mode, "fft_mode", ("auto", "filter_gradient", "full"))
        blocker = _fft_blocker(self)
        if blocker:
            # The FFT computes a stride-1 "same" convolution only: any other setting would be ignored.
            raise ValueError(
                f"fft_conv={fft_mode!r} needs stride 1, no dilation, 'same' padding, one group, channels_last "
                f"and an odd kernel; this layer has {blocker}"
            )

    def get_config(self):
        return dict(super().get_config(), fft_mode=self.fft_mode)

    def convolution_op(self, inputs, kernel):
        if any(s is None for s in inputs.shape[1:]):
            # The blocks need static sizes; an unknown spatial size keeps the direct convolution.
            return super().convolution_op(inputs, kernel)
        mode = self.fft_mode
        if mode == "auto":
            mode = "full" if inputs.shape[-1] >= AUTO_FULL_MIN_CHANNELS else "filter_gradient"
        # A tensor, not the variable: TensorFlow's custom gradient would otherwise want a variables
        # argument; the gradient reaches the variable through this read.
        kernel = ops.copy(kernel)
        return (conv_fft if mode == "full" else conv_with_fft_filter_gradient)(inputs, kernel)


@keras.saving.register_keras_serializable(package="tfreg")
class FFTConv2D(_FFTConv, keras.layers.Conv2D):
    """``keras.layers.Conv2D`` (stride 1, ``"same"``, odd kernel) computed by overlap-save FFT."""


@keras.saving.register_keras_serializable(package="tfreg")
class FFTConv3D(_FFTConv, keras.layers.Conv3D):
    """``keras.layers.Conv3D`` (stride 1, ``"same"``, odd kernel) computed by overlap-save FFT."""


_CONV = {2: keras.layers.Conv2D, 3: keras.layers.Conv3D}
_FFT_CONV = {2: FFTConv2D, 3: FFTConv3D}
_CONV_TRANSPOSE = {2: keras.layers.Conv2DTranspose, 3: keras.layers.Conv3DTranspose}


def _fft_blocker(layer) -> str:
    """Why ``layer``'s settings rule out the FFT, or ``""`` when they allow it."""
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


def default_fft_conv() -> str:
    """``fft_conv`` for convolutions built without one: ``$TFREG_FFT_CONV``, else ``"auto"``.

    Raises:
        ValueError: the variable is set to something other than ``auto`` or ``off`` (the explicit modes
            would refuse every convolution the FFT cannot compute, so they are per layer only).
    """
    value = os.environ.get(FFT_CONV_ENV, "auto")
    return check_choice(value, f"environment variable {FFT_CONV_ENV}", ("auto", "off"))


def conv_layer(ndim: int, *args, transpose: bool = False, fft_conv: str = None, **kwargs):
    """A Keras convolution for ``ndim`` spatial axes, channels-last.

    Args:
        ndim: 2 (``Conv2D``) or 3 (``Conv3D``).
        *args, **kwargs: the Keras layer's arguments (``filters``, ``kernel_size``, ``strides``, ...).
        transpose: build ``Conv2DTranspose``/``Conv3DTranspose`` instead.
        fft_conv: how the convolution is computed (values equal to float32 rounding):
            ``"off"``: Keras' own; ``"filter_gradient"``: the filter gradient by overlap-save FFT
            (:mod:`tfreg.ops.fft_conv`), the rest Keras'; ``"full"``: output and both gradients by FFT;
            ``"auto"``: on the TensorFlow backend, for 3-D kernels of at least ``AUTO_FFT_MIN_TAPS`` taps,
            ``"full"`` from ``AUTO_FULL_MIN_CHANNELS`` input channels and ``"filter_gradient"`` below;
            elsewhere ``"off"``. ``None``: :func:`default_fft_conv`. The FFT needs stride 1, no dilation,
            ``"same"`` padding, one group, channels-last and an odd kernel, and is not for transposed
            convolutions.

    Raises:
        ValueError: ``ndim`` not 2 or 3; ``fft_conv`` unknown, or asking for the FFT with settings it does
            not support.
    """
    check_choice(ndim, "ndim", (2, 3))
    if fft_conv is None:
        fft_conv = default_fft_conv()
    check_choice(fft_conv, "fft_conv", FFT_CONV_MODES)
    ndim = int(ndim)
    explicit = fft_conv in ("filter_gradient", "full")
    if transpose:
        if explicit:
            raise ValueError(f"fft_conv={fft_conv!r} is for convolutions, not transposed ones; use 'auto' or 'off'")
        return _CONV_TRANSPOSE[ndim](*args, **kwargs)
    layer = _CONV[ndim](*args, **kwargs)
    if fft_conv == "off":
        return layer
    if explicit:
        return _FFT_CONV[ndim](*args, fft_mode=fft_conv, **kwargs)  # refuses what it cannot compute
    if (
        _fft_blocker(layer)
        or ndim != 3
        or keras.backend.backend() != "tensorflow"
        or math.prod(layer.kernel_size) < AUTO_FFT_MIN_TAPS
    ):
        return layer
    return _FFT_CONV[ndim].from_config(dict(layer.get_config(), fft_mode=fft_conv))


__all__ = [
    "AUTO_FFT_MIN_TAPS",
    "AUTO_FULL_MIN_CHANNELS",
    "FFTConv2D",
    "FFTConv3D",
    "FFT_CONV_ENV",
    "FFT_CONV_MODES",
    "conv_layer",
    "default_fft_conv",
]
