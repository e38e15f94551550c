"""The UNet segmenter backbone (``unet_segmenter``): one configurable U-Net for every segmentation network.

One class serves the segmenters of three papers by configuration:

- WSSAMNet (Nasser et al. 2022): "three levels; the number of feature maps starts from 8 and gets doubled"
  -> ``channels: [8, 16, 32]``; nothing else is given (see ``config/wssamnet_segmenter.yaml`` for our
  choices);
- He, He and Cao 2022 (attention segmenter): a U-Net of about 1.9 M parameters -> ``channels: [16, 32, 64,
  128, 256]``, batch norm, max pooling, transposed convolutions, with a 1-channel head: 1,942,289 parameters;
- macJNet (Zhou et al. 2023): nnU-Net-like with scSE blocks in the decoder -> ``norm: instance``,
  ``activation: leaky_relu``, ``downsampling: strided_conv``, ``scse: true``.

Architecture, for ``L = len(channels)`` levels (``L - 1`` down-samplings by 2), channels-last, 2-D and 3-D:

- encoder level ``d``: (down-sampling when ``d > 0``) then ``convs_per_block`` units ``conv k^n -> norm ->
  activation`` (:class:`~tfreg.models.backbones.blocks.ConvNormAct`) to ``channels[d]``; level ``L - 1`` is
  the bottleneck. Down-sampling is a ``2^n`` max pooling (``max_pool``) or, nnU-Net's way, a stride 2 in the
  first convolution of the level (``strided_conv``); both give ``ceil(size / 2)`` voxels;
- decoder level ``d`` (``L - 2`` down to 0): up-sampling of level ``d + 1`` to level ``d``'s size, either a
  ``2^n`` transposed convolution with stride 2 to ``channels[d]`` channels and a bias, no norm or activation
  (nnU-Net's and the original U-Net's "up-conv 2x2"; cropped by one voxel where the level's size is odd), or
  a linear resize (``linear``: no weights, the ``channels[d + 1]`` channels pass through); concatenation
  ``[skip, up]`` (``skip: concat``) or the sum ``skip + up`` (``skip: add``, the "additive skip connections" of
  van Ulsen's thesis network, which needs the up-sampled features to have the skip's ``channels[d]``, i.e. a
  transposed convolution); ``convs_per_block`` units to ``channels[d]``; then, with ``scse``, an scSE block
  (:class:`~tfreg.layers.blocks.SCSEBlock`, Roy et al. 2018) as macJNet puts one "into the decoding layers".

Output: the level-0 decoder features ``(B, *image_size, channels[0])``. The class head (a ``1^n``
convolution and sigmoid/softmax) is the segmentation model's, not the backbone's, so that ``multi_unets``
and other models reuse the features.

Choices the papers leave open, and ours: kernel 3 (all three papers' U-Net lineage); two convolutions per
block (U-Net, nnU-Net); convolutions without a bias when a normalization follows
(:func:`tfreg.layers.normalization.conv_bias`);
the skip is concatenated before the up-sampled features (the order only permutes weights); scSE after the
block's convolutions (not before); the scSE reduction ratio 2 (the spec's suggestion).
"""

from typing import Any, Dict, Sequence

import keras
from keras import ops

from tfreg.checks import check_bool, check_choice, check_int, check_number, check_positive_int
from tfreg.layers.blocks import SCSEBlock
from tfreg.layers.conv import conv_layer
from tfreg.layers.normalization import NORMALIZATIONS
from tfreg.models.backbones.blocks import ACTIVATIONS, ConvNormAct, level_sizes, pooling_layer
from tfreg.models.backbones.unet import check_depth_fits
from tfreg.ops.grid import _check_shape
from tfreg.ops.resize import resize
from tfreg.registry import REGISTRY

DOWNSAMPLINGS = ("max_pool", "strided_conv")
UPSAMPLINGS = ("transposed_conv", "linear")
#: how a decoder level joins the encoder's skip: concatenated (U-Net) or added (van Ulsen's thesis network)
SKIPS = ("concat", "add")


def check_channels(channels: Any, name: str = "channels") -> list:
    """``channels`` as a non-empty list of positive ints (one per level), or ValueError naming ``name``."""
    if isinstance(channels, (str, bytes)) or not isinstance(channels, (list, tuple)) or not channels:
        raise ValueError(f"{name} must be a non-empty list of positive ints (channels per level), got {channels!r}")
    return [check_positive_int(c, name) for c in channels]


@REGISTRY.register_backbone(name="unet_segmenter")
class UNetSegmenter(keras.Model):
    """Configurable U-Net segmenter; see the module docstring for the architecture and the papers.

    Args:
        image_size: spatial size of the input ``(d0, d1[, d2])``, voxels; its length (2 or 3) sets 2-D/3-D.
            Every size must be at least ``2**(len(channels) - 1)`` voxels; sizes need not be even.
        channels: channels per level, e.g. ``[8, 16, 32]`` (WSSAMNet: 3 levels).
        convs_per_block: convolution units per encoder and decoder block, int >= 1.
        kernel_size: convolution kernel size, int >= 1 (odd keeps the grid centred).
        norm: ``"batch"``, ``"instance"``, ``"group"`` (per unit the largest divisor <= 8 of its channels as
            the group count) or ``"none"``.
        activation: ``"relu"`` or ``"leaky_relu"``.
        negative_slope: the leaky ReLU's slope, >= 0 (nnU-Net: 0.01).
        downsampling: ``"max_pool"`` or ``"strided_conv"``.
        upsampling: ``"transposed_conv"`` or ``"linear"``.
        scse: an scSE block at the end of each decoder level.
        scse_ratio: the scSE channel reduction, int >= 1.
        skip: ``"concat"`` (default) or ``"add"`` (needs ``upsampling: transposed_conv``).
        name: Keras model name.

    Call: ``(B, *image_size, C)``, any ``C`` -> ``(B, *image_size, channels[0])`` features.

    Attributes: ``image_size``, ``ndim``, ``out_channels`` (= ``channels[0]``), ``sizes`` (level sizes).

    Raises:
        ValueError: naming the argument, for bad values or an ``image_size`` too small for the levels.
    """

    #: the values of ``norm``, which config validation checks before anything is built
    norm_choices = NORMALIZATIONS

    def __init__(
        self,
        image_size: Sequence[int] = (),
        channels: Sequence[int] = (8, 16, 32),
        convs_per_block: int = 2,
        kernel_size: int = 3,
        norm: str = "batch",
        activation: str = "relu",
        negative_slope: float = 0.01,
        downsampling: str = "max_pool",
        upsampling: str = "transposed_conv",
        scse: bool = False,
        scse_ratio: int = 2,
        skip: str = "concat",
        name: str = "UNetSegmenter",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.image_size = _check_shape(image_size, "image_size")
        if len(self.image_size) not in (2, 3):
            raise ValueError(f"image_size must have 2 or 3 spatial sizes, got {image_size!r}")
        self.ndim = len(self.image_size)
        self.channels = check_channels(channels)
        self.convs_per_block = check_positive_int(convs_per_block, "convs_per_block")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.norm = check_choice(norm, "norm", NORMALIZATIONS)
        self.activation = check_choice(activation, "activation", ACTIVATIONS)
        self.negative_slope = check_number(negative_slope, "negative_slope")
        self.downsampling = check_choice(downsampling, "downsampling", DOWNSAMPLINGS)
        self.upsampling = check_choice(upsampling, "upsampling", UPSAMPLINGS)
        self.scse = check_bool(scse, "scse")
        self.scse_ratio = check_int(scse_ratio, "scse_ratio", minimum=1)
        self.skip = check_choice(skip, "skip", SKIPS)
        if self.skip == "add" and self.upsampling != "transposed_conv":
            # a linear resize keeps the coarser level's channels, which an addition cannot match
            raise ValueError(
                f"skip: add needs upsampling: transposed_conv (to the skip's channels), got {self.upsampling!r}"
            )
        depth = len(self.channels) - 1
        check_depth_fits(self.image_size, depth, 2)
        self.sizes = level_sizes(self.image_size, depth, 2)
        self.out_channels = self.channels[0]
        self._build_layers()

    def _unit(self, filters, strides=1):
        return ConvNormAct(
            self.ndim,
            filters,
            self.kernel_size,
            strides=strides,
            norm=self.norm,
            activation=self.activation,
            negative_slope=self.negative_slope,
        )

    def _build_layers(self):
        depth = len(self.channels) - 1
        strided = self.downsampling == "strided_conv"
        self.encoders = []
        for d, c in enumerate(self.channels):
            first_stride = 2 if (d > 0 and strided) else 1
            self.encoders.append(
                [self._unit(c, first_stride)] + [self._unit(c) for _ in range(self.convs_per_block - 1)]
            )
        self.pools = [pooling_layer(self.ndim, 2) for _ in range(depth)] if not strided else []
        self.ups, self.decoders, self.scse_blocks = [], [], []
        for d in range(depth - 1, -1, -1):
            if self.upsampling == "transposed_conv":
                self.ups.append(conv_layer(self.ndim, self.channels[d], 2, strides=2, padding="same", transpose=True))
            self.decoders.append([self._unit(self.channels[d]) for _ in range(self.convs_per_block)])
            if self.scse:
                self.scse_blocks.append(SCSEBlock(ratio=self.scse_ratio))

    def _upsample(self, i: int, x, size):
        """Decoder step ``i``: ``x`` on the grid of level ``d + 1`` -> ``size`` (level ``d``'s grid)."""
        if self.upsampling == "linear":
            return resize(x, tuple(size))
        x = self.ups[i](x)
        # a stride-2 transposed convolution doubles the size; an odd level size is one voxel less
        if tuple(x.shape[1:-1]) != tuple(size):
            x = x[(slice(None),) + tuple(slice(0, s) for s in size)]
        return x

    def call(self, inputs, training=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, channels[0])``."""
        return self.level_features(inputs, training=training)[0]

    def level_features(self, inputs, training=None) -> list:
        """The decoder's output at every level: ``[f_0, ..., f_{L-1}]``, ``f_d`` of shape ``(B, *sizes[d],
        channels[d])`` (``f_{L-1}`` is the bottleneck, ``f_0`` the full-resolution output of :meth:`call`).
        Multi-scale heads (e.g. the ``dfsa_unet`` registration network) read one field from each."""
        if len(inputs.shape) != self.ndim + 2 or tuple(inputs.shape[1:-1]) != self.image_size:
            raise ValueError(
                f"{self.name}: expected input (batch, *{self.image_size}, channels), got shape {tuple(inputs.shape)}"
            )
        x = inputs
        skips = []
        for d, block in enumerate(self.encoders):
            if d > 0 and self.pools:
                x = self.pools[d - 1](x)
            for unit in block:
                x = unit(x, training=training)
            skips.append(x)
        depth = len(self.channels) - 1
        levels = [x]
        for i, d in enumerate(range(depth - 1, -1, -1)):
            x = self._upsample(i, x, self.sizes[d])
            x = skips[d] + x if self.skip == "add" else ops.concatenate([skips[d], x], axis=-1)
            for unit in self.decoders[i]:
                x = unit(x, training=training)
            if self.scse:
                x = self.scse_blocks[i](x)
            levels.append(x)
        return levels[::-1]

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    def get_config(self) -> Dict[str, Any]:
        # the constructor arguments only (keras.Model's own config would describe the layers)
        return dict(
            name=self.name,
            image_size=list(self.image_size),
            channels=list(self.channels),
            convs_per_block=self.convs_per_block,
            kernel_size=self.kernel_size,
            norm=self.norm,
            activation=self.activation,
            negative_slope=self.negative_slope,
            downsampling=self.downsampling,
            upsampling=self.upsampling,
            scse=self.scse,
            scse_ratio=self.scse_ratio,
            skip=self.skip,
        )

    @classmethod
    def from_config(cls, config: Dict[str, Any]) -> "UNetSegmenter":
        return cls(**config)


__all__ = ["UNetSegmenter", "DOWNSAMPLINGS", "UPSAMPLINGS", "SKIPS", "check_channels"]
