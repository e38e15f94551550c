"""Building blocks of the backbones, 2-D and 3-D, channels-last (``keras`` only).

Every convolutional block is DeepReg's: convolution without bias -> BatchNormalization -> ReLU, with the
normalization a choice (``norm``: ``batch``, DeepReg's and the default, ``instance``, ``group`` or
``none``; :func:`tfreg.layers.normalization.normalization_layer`) and the convolution biased only without one
(:func:`tfreg.layers.normalization.conv_bias`). The blocks keep their sub-layers under the attribute names
``conv``/``deconv`` and ``norm`` whatever the choice, so with the default a block has the checkpoint keys of
earlier tfreg versions. The number of spatial dimensions ``ndim`` (2 or 3) is given explicitly by the
backbone, which reads it from its ``image_size``.
"""

from typing import Sequence, Tuple

import keras
from keras import ops

from tfreg.checks import check_choice, check_number, check_positive_int
from tfreg.layers.conv import conv_layer
from tfreg.layers.normalization import check_norm, conv_bias, normalization_layer
from tfreg.ops.resize import resize
from tfreg.serialization import AttributeConfigMixin

_POOL = {2: keras.layers.MaxPooling2D, 3: keras.layers.MaxPooling3D}


def check_ndim(ndim) -> int:
    """``ndim`` validated: 2 or 3."""
    return int(check_choice(ndim, "ndim", (2, 3)))


def downsampled_size(size: int, strides: int) -> int:
    """Spatial size after a ``"same"``-padded pooling/convolution of stride ``strides``: ``ceil(size / strides)``."""
    return -(-size // strides)


def deconv_output_padding(in_size: int, out_size: int, kernel_size: int, strides: int) -> int:
    """Output padding making a ``"same"``-padded transposed convolution map ``in_size`` to ``out_size``.

    Keras' length is ``(in - 1) * strides + kernel - 2 * (kernel // 2) + output_padding``. Raises
    ValueError when no output padding in ``[0, strides)`` reaches ``out_size``.
    """
    base = (in_size - 1) * strides + kernel_size - 2 * (kernel_size // 2)
    pad = out_size - base
    if not 0 <= pad < strides:
        raise ValueError(
            f"cannot up-sample size {in_size} to {out_size} with kernel_size {kernel_size} and strides {strides}"
        )
    return pad


class NormChoice(AttributeConfigMixin):
    """Mixin of the blocks with a normalization choice: ``get_config`` saves ``norm`` and ``norm_groups``.

    The block holds the normalization layer as ``self.norm`` (its checkpoint key), so the choice itself is
    kept as ``self.norm_kind``; ``self.norm_groups`` is the given group count (None: the default).
    """

    def _check_norm(self, norm, norm_groups, channels: int) -> bool:
        """Validate the choice for ``channels`` channels (``self.norm_kind``, ``self.norm_groups``); returns
        whether the convolution before it has a bias."""
        self.norm_kind, self.norm_groups = check_norm(norm, norm_groups, (channels,))
        return conv_bias(self.norm_kind)

    def _make_norm(self, channels: int) -> None:
        """``self.norm``: the chosen layer (None for ``"none"``), made after the convolution so that the
        weights keep their order (conv, then norm), which positional checkpoints of tfreg 0.1 rely on."""
        self.norm = normalization_layer(self.norm_kind, channels=channels, groups=self.norm_groups)

    def _normalize(self, x, training):
        return x if self.norm is None else self.norm(x, training=training)

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(norm=self.norm_kind, norm_groups=self.norm_groups)
        return config


class ConvBlock(NormChoice, keras.layers.Layer):
    """Convolution -> normalization -> ReLU (optional); DeepReg's with the default ``norm="batch"``.

    Args:
        ndim: 2 or 3 spatial dimensions.
        filters: output channels.
        kernel_size: int, voxels.
        strides: int; ``"same"`` padding gives ``ceil(size / strides)`` voxels per axis.
        activation: apply the ReLU.
        norm: ``"batch"`` (DeepReg's), ``"instance"``, ``"group"`` or ``"none"``; the convolution has a bias
            only with ``"none"`` (:func:`~tfreg.layers.normalization.conv_bias`).
        norm_groups: groups of ``"group"``, dividing ``filters``; None: the largest divisor <= 8.

    Call: ``(B, *S, C)`` -> ``(B, *ceil(S / strides), filters)``.
    """

    def __init__(
        self, ndim, filters, kernel_size=3, strides=1, activation=True, norm="batch", norm_groups=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.ndim = check_ndim(ndim)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.strides = check_positive_int(strides, "strides")
        self.activation = bool(activation)
        bias = self._check_norm(norm, norm_groups, self.filters)
        self.conv = conv_layer(
            self.ndim, self.filters, self.kernel_size, strides=self.strides, padding="same", use_bias=bias
        )
        self._make_norm(self.filters)

    def call(self, inputs, training=None):
        x = self._normalize(self.conv(inputs), training)
        return ops.relu(x) if self.activation else x

    config_keys = ("ndim", "filters", "kernel_size", "strides", "activation")


#: The activations :class:`ConvNormAct` accepts.
ACTIVATIONS = ("relu", "leaky_relu")


class ConvNormAct(NormChoice, keras.layers.Layer):
    """Convolution -> normalization (batch / instance / group / none) -> ReLU or leaky ReLU: the segmenters' unit.

    The convolution has a bias only without normalization (:func:`~tfreg.layers.normalization.conv_bias`).

    Args:
        ndim: 2 or 3 spatial dimensions.
        filters: output channels.
        kernel_size: int, voxels (``"same"`` padding).
        strides: int; ``ceil(size / strides)`` voxels per axis come out.
        norm: ``"batch"``, ``"instance"``, ``"group"`` or ``"none"``.
        norm_groups: groups of ``"group"``, dividing ``filters``; None: the largest divisor <= 8.
        activation: ``"relu"`` or ``"leaky_relu"``.
        negative_slope: slope of the leaky ReLU for negative inputs, >= 0 (0.01: nnU-Net's).

    Call: ``(B, *S, C)`` -> ``(B, *ceil(S / strides), filters)``.
    """

    def __init__(
        self,
        ndim,
        filters,
        kernel_size=3,
        strides=1,
        norm="batch",
        activation="relu",
        negative_slope=0.01,
        norm_groups=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.ndim = check_ndim(ndim)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.strides = check_positive_int(strides, "strides")
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.negative_slope = check_number(negative_slope, "negative_slope")
        bias = self._check_norm(norm, norm_groups, self.filters)
        self.conv = conv_layer(
            self.ndim, self.filters, self.kernel_size, strides=self.strides, padding="same", use_bias=bias
        )
        self._make_norm(self.filters)

    def build(self, input_shape):
        # explicit, so that a parent can build (and load weights into) its units before any call
        self.conv.build(tuple(input_shape))
        if self.norm is not None:
            self.norm.build(tuple(self.conv.compute_output_shape(tuple(input_shape))))

    def call(self, inputs, training=None):
        x = self._normalize(self.conv(inputs), training)
        if self.activation == "relu":
            return ops.relu(x)
        return ops.leaky_relu(x, negative_slope=self.negative_slope)

    config_keys = ("ndim", "filters", "kernel_size", "strides", "activation", "negative_slope")


class ResidualBlock(AttributeConfigMixin, keras.layers.Layer):
    """Two convolution blocks with a skip: ``relu(x + norm(conv(relu(norm(conv(x))))))`` (DeepReg's residual
    block, with ``norm`` and ``norm_groups`` as in :class:`ConvBlock`).

    Call: ``(B, *S, filters)`` -> ``(B, *S, filters)``; the input must already have ``filters`` channels.
    """

    def __init__(self, ndim, filters, kernel_size=3, norm="batch", norm_groups=None, **kwargs):
        super().__init__(**kwargs)
        self.ndim = check_ndim(ndim)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.norm, self.norm_groups = check_norm(norm, norm_groups, (self.filters,))
        choice = dict(norm=self.norm, norm_groups=self.norm_groups)
        self.block1 = ConvBlock(self.ndim, self.filters, self.kernel_size, **choice)
        self.block2 = ConvBlock(self.ndim, self.filters, self.kernel_size, activation=False, **choice)

    def call(self, inputs, training=None):
        x = self.block2(self.block1(inputs, training=training), training=training)
        return ops.relu(x + inputs)

    config_keys = ("ndim", "filters", "kernel_size", "norm", "norm_groups")


class DeconvBlock(NormChoice, keras.layers.Layer):
    """Transposed convolution -> normalization -> ReLU, up-sampling to a given size; DeepReg's (no bias,
    BatchNormalization) with the default ``norm="batch"``.

    Args:
        ndim: 2 or 3.
        filters: output channels.
        in_size: spatial size of the input, ``ndim`` ints.
        out_size: spatial size of the output, ``ndim`` ints (``ceil(out / strides) == in`` per axis).
        kernel_size, strides: ints.
        norm, norm_groups: as in :class:`ConvBlock`.

    Call: ``(B, *in_size, C)`` -> ``(B, *out_size, filters)``.
    """

    def __init__(
        self, ndim, filters, in_size, out_size, kernel_size=3, strides=2, norm="batch", norm_groups=None, **kwargs
    ):
        super().__init__(**kwargs)
        self.ndim = check_ndim(ndim)
        self.filters = check_positive_int(filters, "filters")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.strides = check_positive_int(strides, "strides")
        self.in_size = tuple(int(s) for s in in_size)
        self.out_size = tuple(int(s) for s in out_size)
        padding = tuple(
            deconv_output_padding(i, o, self.kernel_size, self.strides) for i, o in zip(self.in_size, self.out_size)
        )
        bias = self._check_norm(norm, norm_groups, self.filters)
        self.deconv = conv_layer(
            self.ndim,
            self.filters,
            self.kernel_size,
            strides=self.strides,
            padding="same",
            output_padding=padding,
            use_bias=bias,
            transpose=True,
        )
        self._make_norm(self.filters)

    def call(self, inputs, training=None):
        return ops.relu(self._normalize(self.deconv(inputs), training))

    config_keys = ("ndim", "filters", "in_size", "out_size", "kernel_size", "strides")


def additive_upsampling(x, out_size: Sequence[int], num_chunks: int = 2):
    """DeepReg's additive up-sampling: linear resize to ``out_size``, then sum of ``num_chunks`` channel chunks.

    Args:
        x: ``(B, *S, C)`` with ``C`` divisible by ``num_chunks``.
        out_size: target spatial size.

    Returns:
        ``(B, *out_size, C // num_chunks)``.
    """
    channels = x.shape[-1]
    if channels % num_chunks:
        raise ValueError(f"additive up-sampling needs channels divisible by {num_chunks}, got {channels}")
    x = resize(x, tuple(out_size))
    return ops.sum(ops.stack(ops.split(x, num_chunks, axis=-1), axis=-1), axis=-1)


def pooling_layer(ndim: int, strides: int):
    """``MaxPooling{2,3}D(strides, strides, "same")``."""
    return _POOL[check_ndim(ndim)](pool_size=strides, strides=strides, padding="same")


def level_sizes(image_size: Tuple[int, ...], depth: int, strides: int):
    """Spatial sizes of the encoder levels 0..depth (level 0 = ``image_size``)."""
    sizes = [tuple(image_size)]
    for _ in range(depth):
        sizes.append(tuple(downsampled_size(s, strides) for s in sizes[-1]))
    return sizes
