"""LocalNet backbone (DeepReg's ``local``, Hu et al. 2018), 2-D and 3-D.

A :class:`~tfreg.models.backbones.unet.UNet` variant: encoder kernels ``[7] + [3] * depth``, a single
conv block at the bottom, and additive up-sampling in the decoder (transposed conv block plus the input
linearly resized to the finer level with its two channel halves summed). Skips are added.
"""

from typing import Optional, Sequence

from tfreg.models.backbones.blocks import ConvBlock, additive_upsampling
from tfreg.models.backbones.unet import UNet
from tfreg.registry import REGISTRY


@REGISTRY.register_backbone(name="local")
class LocalNet(UNet):
    """LocalNet (DeepReg's ``local``).

    Args:
        name: Keras model name.
        extract_levels: required, ints in [0, depth]; the output averages these levels.
        depth: default ``max(extract_levels)``.
        use_additive_upsampling: add the resized, channel-halved coarser features to the transposed
            convolution's output (DeepReg's default True).
        encode_kernel_sizes: default ``[7] + [3] * depth``, see :class:`UNet`.
        **kwargs: depth, pooling, concat_skip, decode_kernel_sizes, encode_num_channels, decode_num_channels,
            strides, padding, norm, norm_groups of :class:`UNet`, and image_size, num_channel_initial,
            out_kernel_initializer, out_activation, out_channels of :class:`~tfreg.models.backbones.base.Backbone`.

    Call: ``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``.
    """

    def _default_encode_kernels(self, depth):
        return [7] + [3] * depth

    def __init__(
        self,
        extract_levels: Optional[Sequence[int]] = None,
        use_additive_upsampling: bool = True,
        encode_kernel_sizes=None,
        name: str = "LocalNet",
        **kwargs,
    ):
        self.use_additive_upsampling = bool(use_additive_upsampling)
        # UNet's defaults differ for these two: extract_levels is required, encoder kernels are [7, 3, ...].
        super().__init__(extract_levels=extract_levels, encode_kernel_sizes=encode_kernel_sizes, name=name, **kwargs)
        if self.use_additive_upsampling:
            for d in range(self.min_level, self.depth):
                coarse = self.decode_num_channels[d + 1] if d + 1 < self.depth else self.encode_num_channels[d + 1]
                if coarse != 2 * self.decode_num_channels[d]:
                    raise ValueError(
                        "use_additive_upsampling needs each coarser level to have twice the channels of the finer "
                        f"one, got encode_num_channels {self.encode_num_channels} and decode_num_channels "
                        f"{self.decode_num_channels}"
                    )

    def _build_bottom(self):
        k, c = self.encode_kernel_sizes[self.depth], self.encode_num_channels[self.depth]
        return [ConvBlock(self.ndim, c, k, **self.block_norm())]

    def _upsample(self, i, d, x, training):
        up = self.ups_list[i](x, training=training)
        if self.use_additive_upsampling:
            up = up + additive_upsampling(x, self.sizes[d])
        return up

    config_keys = ("use_additive_upsampling",)


__all__ = ["LocalNet"]
