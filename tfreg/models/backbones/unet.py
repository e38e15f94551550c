"""U-Net backbone (DeepReg's ``UNet``), 2-D and 3-D; also the encoder-decoder under ``LocalNet``.

Encoder level ``d`` (0..depth-1): conv block (``encode_kernel_sizes[d]``, ``encode_num_channels[d]``
channels) and a residual block, then down-sampling by ``strides`` (max pooling, or a strided conv block
when ``pooling=False``). The bottom (level ``depth``) is a conv block and a residual block. Decoder level
``d`` (depth-1 down to the lowest extract level): transposed conv back to level ``d``'s size (the output
padding is chosen per axis so that sizes that are not multiples of ``strides**depth`` come back exactly; as in
DeepReg, an axis shorter than ``strides**depth`` is allowed: it stays at one voxel once pooled down to one),
skip connection (add, or concatenate when ``concat_skip``), conv block (followed by a residual block when
``decode_residual``, as in DeepReg 1.0's UNet and LocalNet). Output: for every extract level a
``kernel 3`` convolution to ``out_channels`` (``out_kernel_initializer``, zero bias, ``out_activation``),
linearly resized to ``image_size`` and averaged over levels.

Every conv, residual and transposed conv block normalizes with ``norm`` (DeepReg's BatchNormalization by
default; ``instance``, ``group`` or ``none``, see :mod:`tfreg.models.backbones.blocks`).
"""

import logging
from numbers import Integral
from typing import List, Optional, Sequence, Union

from keras import ops

from tfreg.checks import check_int, check_positive_int
from tfreg.layers.conv import conv_layer
from tfreg.layers.normalization import NORMALIZATIONS, check_norm
from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.blocks import (
    ConvBlock,
    DeconvBlock,
    ResidualBlock,
    level_sizes,
    pooling_layer,
)
from tfreg.ops.resize import resize
from tfreg.registry import REGISTRY

logger = logging.getLogger(__name__)

IntOrList = Union[int, Sequence[int]]


def _per_level(value: Optional[IntOrList], n: int, name: str, default: Optional[List[int]] = None) -> List[int]:
    """An int (repeated) or a list of ``n`` positive ints, or ValueError naming ``name``."""
    if value is None:
        if default is None:
            raise ValueError(f"{name} is required")
        return list(default)
    if isinstance(value, Integral) and not isinstance(value, bool):
        return [check_positive_int(value, name)] * n
    try:
        values = list(value)
    except TypeError:
        raise ValueError(f"{name} must be an int or a list of {n} ints, got {value!r}") from None
    if len(values) != n:
        raise ValueError(f"{name} must be an int or a list of {n} ints (one per level), got {value!r}")
    return [check_positive_int(v, name) for v in values]


def check_depth_fits(image_size, depth: int, strides: int) -> None:
    """ValueError unless every spatial size is at least ``strides**depth`` voxels.

    Smaller volumes would be pooled below one voxel before the bottom level. Sizes need not be multiples of
    ``strides**depth``: the decoder's output padding restores them exactly.
    """
    need = strides**depth
    if any(s < need for s in image_size):
        raise ValueError(
            f"image_size {tuple(image_size)} does not fit depth {depth}: every spatial size must be >= "
            f"strides**depth = {strides}**{depth} = {need} voxels (reduce depth/extract_levels or enlarge the "
            f"image; sizes that are not multiples of {need} are fine)"
        )


def warn_single_voxel_levels(image_size, depth: int, strides: int, name: str) -> None:
    """Log a warning when an axis is one voxel thick above the bottom level: deeper poolings change nothing there.

    Level ``d`` has ``ceil(size / strides**d)`` voxels per axis (:func:`level_sizes`); once that is 1, every
    deeper level is 1 too.
    """
    sizes = level_sizes(tuple(image_size), depth, strides)
    flat = [d for d in range(depth) if 1 in sizes[d]]
    if flat:
        logger.warning(
            "%s: image_size %s is smaller than strides**depth = %d**%d on some axis; levels %d-%d are one voxel "
            "thick there (sizes per level: %s), so their down-sampling changes nothing along it (DeepReg built such "
            "networks too; a smaller depth/extract_levels avoids the redundant levels)",
            name,
            tuple(image_size),
            strides,
            depth,
            flat[0] + 1,
            depth,
            [list(s) for s in sizes],
        )


def check_levels(extract_levels, depth: Optional[int]):
    """``(extract_levels as a sorted unique list, depth)``: depth defaults to ``max(extract_levels)``."""
    if extract_levels is None:
        raise ValueError("extract_levels is required (a list of ints in [0, depth])")
    if isinstance(extract_levels, Integral) and not isinstance(extract_levels, bool):
        extract_levels = [extract_levels]
    try:
        levels = [int(v) for v in extract_levels if not isinstance(v, bool) and isinstance(v, Integral) and v >= 0]
        ok = len(levels) == len(list(extract_levels)) and len(levels) > 0
    except TypeError:
        ok = False
    if not ok:
        raise ValueError(f"extract_levels must be a non-empty list of ints >= 0, got {extract_levels!r}")
    if depth is None:
        depth = max(levels)
    depth = check_int(depth, "depth", minimum=0)
    if max(levels) > depth:
        raise ValueError(f"extract_levels {list(extract_levels)} must lie in [0, depth={depth}]")
    return sorted(set(levels)), int(depth)


@REGISTRY.register_backbone(name="unet")
class UNet(Backbone):
    """U-Net (DeepReg's ``unet``); see the module docstring for the architecture.

    Args:
        **kwargs: image_size, num_channel_initial, out_kernel_initializer, out_activation, out_channels, see
            :class:`Backbone`.
        name: Keras model name.
        depth: number of down-samplings, int >= 0.
        extract_levels: levels whose decoder features give the output (averaged), ints in [0, depth];
            DeepReg's default ``(0,)``.
        pooling: max pooling (True) or strided conv block (False) for down-sampling.
        concat_skip: concatenate the skip connections instead of adding them.
        encode_kernel_sizes: int or ``depth + 1`` ints.
        decode_kernel_sizes: int or ``depth`` ints.
        encode_num_channels: ``depth + 1`` ints; default ``num_channel_initial * 2**d``.
        decode_num_channels: ``depth + 1`` ints; default ``encode_num_channels``. With ``concat_skip=False``
            they must equal ``encode_num_channels`` on the decoded levels.
        strides: down-sampling factor, int >= 2.
        padding: only ``"same"``.
        decode_residual: follow each decoder conv block by a residual block (two conv blocks and a skip),
            DeepReg 1.0's decoder; its published checkpoints need it
            (:mod:`tfreg.engine.deepreg_checkpoint`). False: the conv block alone.
        norm: normalization of every block: ``"batch"`` (DeepReg's BatchNormalization, the default),
            ``"instance"``, ``"group"`` or ``"none"`` (convolutions with a bias); see
            :func:`tfreg.layers.normalization.normalization_layer`.
        norm_groups: group count of ``norm="group"``, dividing every level's channels; None (default): per
            block the largest divisor of its channels that is <= 8. Refused with another ``norm``.

    Call: ``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``.

    Raises:
        ValueError: bad arguments.

    An axis shorter than ``strides**depth`` is pooled down to one voxel and stays there ("same" padding gives
    ``ceil(size / strides)``); the decoder's output padding brings it back to its size. DeepReg's UNet and
    LocalNet built such networks (its config/test files train a depth-4 LocalNet on 8^3 fixed images), so they
    are built here too, with a warning naming the levels that are one voxel thick.
    """

    #: encoder kernel sizes used when the argument is left at None (LocalNet overrides: [7] + [3] * depth)
    def _default_encode_kernels(self, depth):
        return [3] * (depth + 1)

    def __init__(
        self,
        depth: Optional[int] = None,
        extract_levels: Sequence[int] = (0,),
        pooling: bool = True,
        concat_skip: bool = False,
        encode_kernel_sizes: Optional[IntOrList] = 3,
        decode_kernel_sizes: IntOrList = 3,
        encode_num_channels: Optional[Sequence[int]] = None,
        decode_num_channels: Optional[Sequence[int]] = None,
        strides: int = 2,
        padding: str = "same",
        decode_residual: bool = False,
        norm: str = "batch",
        norm_groups: Optional[int] = None,
        name: str = "UNet",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        if not isinstance(decode_residual, bool):
            raise ValueError(f"decode_residual must be true or false, got {decode_residual!r}")
        self.decode_residual = decode_residual
        self.extract_levels, self.depth = check_levels(extract_levels, depth)
        depth = self.depth
        if padding != "same":
            raise ValueError(f"padding must be 'same' (the only padding keeping the levels aligned), got {padding!r}")
        self.padding = padding
        self.strides = check_positive_int(strides, "strides")
        if self.strides < 2:
            raise ValueError(f"strides must be an int >= 2, got {strides!r}")
        self.pooling = bool(pooling)
        self.concat_skip = bool(concat_skip)
        warn_single_voxel_levels(self.image_size, depth, self.strides, self.name)

        nci = self.num_channel_initial
        self.encode_kernel_sizes = _per_level(
            encode_kernel_sizes, depth + 1, "encode_kernel_sizes", self._default_encode_kernels(depth)
        )
        self.decode_kernel_sizes = _per_level(decode_kernel_sizes, max(depth, 1), "decode_kernel_sizes")[
            : max(depth, 1)
        ]
        self.encode_num_channels = _per_level(
            encode_num_channels, depth + 1, "encode_num_channels", [nci * 2**d for d in range(depth + 1)]
        )
        self.decode_num_channels = _per_level(
            decode_num_channels, depth + 1, "decode_num_channels", self.encode_num_channels
        )
        self.min_level = min(self.extract_levels)
        if not self.concat_skip:
            for d in range(self.min_level, depth):
                if self.decode_num_channels[d] != self.encode_num_channels[d]:
                    raise ValueError(
                        f"decode_num_channels {self.decode_num_channels} must equal encode_num_channels "
                        f"{self.encode_num_channels} on decoded levels when concat_skip is False (skips are added)"
                    )
        normalized = self.encode_num_channels + self.decode_num_channels[self.min_level : depth]
        self.norm, self.norm_groups = check_norm(norm, norm_groups, normalized)
        self.sizes = level_sizes(self.image_size, depth, self.strides)
        self._build_layers()

    # ------------------------------------------------------------------ architecture
    def block_norm(self) -> dict:
        """The ``norm`` and ``norm_groups`` arguments of every block."""
        return dict(norm=self.norm, norm_groups=self.norm_groups)

    def _build_encoder_level(self, d):
        """Layers of encoder level ``d``: a list applied in order (the last output is the skip)."""
        k, c = self.encode_kernel_sizes[d], self.encode_num_channels[d]
        return [ConvBlock(self.ndim, c, k, **self.block_norm()), ResidualBlock(self.ndim, c, k, **self.block_norm())]

    def _build_bottom(self):
        k, c = self.encode_kernel_sizes[self.depth], self.encode_num_channels[self.depth]
        return [ConvBlock(self.ndim, c, k, **self.block_norm()), ResidualBlock(self.ndim, c, k, **self.block_norm())]

    def _build_layers(self):
        depth, ndim = self.depth, self.ndim
        self.encoders = [self._build_encoder_level(d) for d in range(depth)]
        if self.pooling:
            self.downs = [pooling_layer(ndim, self.strides) for _ in range(depth)]
        else:
            self.downs = [
                ConvBlock(
                    ndim,
                    self.encode_num_channels[d],
                    self.encode_kernel_sizes[d],
                    strides=self.strides,
                    **self.block_norm(),
                )
                for d in range(depth)
            ]
        self.bottom = self._build_bottom()
        self.ups_list, self.decoders_list = [], []  # lists so that Keras tracks the layers
        for d in range(depth - 1, self.min_level - 1, -1):
            up = DeconvBlock(
                ndim,
                self.decode_num_channels[d],
                self.sizes[d + 1],
                self.sizes[d],
                kernel_size=self.decode_kernel_sizes[d],
                strides=self.strides,
                **self.block_norm(),
            )
            dec = ConvBlock(ndim, self.decode_num_channels[d], self.decode_kernel_sizes[d], **self.block_norm())
            self.ups_list.append(up)
            self.decoders_list.append(dec)
        # a separate list, empty by default, so that the keys of the other weights do not depend on the option
        self.decode_residuals = (
            [
                ResidualBlock(ndim, self.decode_num_channels[d], self.decode_kernel_sizes[d], **self.block_norm())
                for d in range(depth - 1, self.min_level - 1, -1)
            ]
            if self.decode_residual
            else []
        )
        self.out_convs = [
            conv_layer(
                ndim,
                self.out_channels,
                3,
                padding="same",
                kernel_initializer=self.out_kernel_initializer,
                bias_initializer="zeros",
                activation=self.out_activation,
            )
            for _ in self.extract_levels
        ]

    def _upsample(self, i, d, x, training):
        """Decoder step ``i`` (level ``d``): ``(B, *sizes[d+1], C) -> (B, *sizes[d], decode_num_channels[d])``."""
        return self.ups_list[i](x, training=training)

    def call(self, inputs, training=None, mask=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``."""
        x = inputs
        skips = []
        for d in range(self.depth):
            for layer in self.encoders[d]:
                x = layer(x, training=training)
            skips.append(x)
            x = self.downs[d](x, training=training) if not self.pooling else self.downs[d](x)
        for layer in self.bottom:
            x = layer(x, training=training)
        features = {self.depth: x}
        for i, d in enumerate(range(self.depth - 1, self.min_level - 1, -1)):
            x = self._upsample(i, d, x, training)
            x = ops.concatenate([x, skips[d]], axis=-1) if self.concat_skip else x + skips[d]
            x = self.decoders_list[i](x, training=training)
            if self.decode_residual:
                x = self.decode_residuals[i](x, training=training)
            features[d] = x
        outs = []
        for conv, level in zip(self.out_convs, self.extract_levels):
            outs.append(resize(conv(features[level]), self.image_size))
        if len(outs) == 1:
            return outs[0]
        return ops.mean(ops.stack(outs, axis=0), axis=0)

    config_keys = (
        "depth",
        "extract_levels",
        "pooling",
        "concat_skip",
        "encode_kernel_sizes",
        "decode_kernel_sizes",
        "encode_num_channels",
        "decode_num_channels",
        "strides",
        "padding",
        "decode_residual",
        "norm",
        "norm_groups",
    )
    #: the values of ``norm``, which config validation checks before anything is built
    norm_choices = NORMALIZATIONS


__all__ = ["UNet", "check_depth_fits", "check_levels", "warn_single_voxel_levels"]
