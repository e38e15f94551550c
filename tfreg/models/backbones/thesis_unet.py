"""The small U-Net of van Ulsen's thesis on rigidity-preserving CT-MR registration (``thesis_unet``), 2-D and 3-D.

van Ulsen 2022 ("Multi-modal deep learning based 3D image registration for osseous anatomies", MSc thesis,
TU Delft, section 3.5 and its Fig. 3.6) describes the registration network as:

- a contracting path of three blocks, each two ``3^n`` convolutions (stride 1), each followed by batch
  normalisation and ReLU, then ``2^n`` max pooling with stride 2; 4 filters in the first block, doubled per
  block, "up to 32 filters in the bottleneck" (4 -> 8 -> 16, bottleneck 32, a block without pooling);
- an expanding path in reverse: stride-2 ``2^n`` transposed convolutions up-sampling and halving the
  filters (32 -> 16 -> 8 -> 4), additive skip connections between the blocks of the same depth, and the
  same two-convolution blocks;
- a single linear ``3^n`` convolution to the ``ndim`` displacement components at the input resolution.

Built here as the ``unet_segmenter`` trunk (:class:`~tfreg.models.backbones.unet_segmenter.UNetSegmenter`)
with ``channels: [4, 8, 16, 32]`` and ``skip: add``, and a zero-initialised output convolution (DDF
models set ``out_kernel_initializer: zeros``, so training starts at the identity).

Parameter count. The thesis says "~160k parameters" (its Ch. 5), which its own description does not give:
the literal description with a bias on every convolution has 79,131 convolution weights and biases plus 352
batch-norm scales and offsets (computed in the spec of this project). Our convolutions carry no bias where a
batch norm follows (the norm's offset cancels it), so with two input channels this backbone has **79,307**
trainable parameters in 3-D: 78,955 convolution weights and biases (the literal 79,131 less those 176 biases)
and the 352 batch-norm scales and offsets; **27,550** in 2-D; plus 352 batch-norm statistics. Neither count
is near 160k. DeepReg's ``unet`` with ``num_channel_initial: 4, depth: 3`` (a conv block and a residual block
per level, the closest published design in the thesis' toolkit) stays available: 119,815 trainable parameters
with ``extract_levels: [0]``, 124,360 with ``[0, 1, 2, 3]`` (3-D, two input channels).
"""

from typing import Optional, Sequence

import keras

from tfreg.layers.conv import conv_layer
from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.unet_segmenter import UNetSegmenter, check_channels
from tfreg.registry import REGISTRY

#: the thesis' levels: three blocks and the bottleneck
THESIS_DEPTH = 3


@REGISTRY.register_backbone(name="thesis_unet")
class ThesisUNet(Backbone):
    """van Ulsen's registration U-Net: see the module docstring for the architecture and parameter count.

    Args:
        num_channel_initial: filters of the first block (default 4, the thesis); level ``d`` has
            ``num_channel_initial * 2^d``.
        depth: down-samplings (default 3, the thesis: three blocks, then the bottleneck).
        channels: the filters per level (``depth + 1`` ints) instead of ``num_channel_initial``/``depth``.
        image_size, out_kernel_initializer, out_activation, out_channels, name, **kwargs: see
            :class:`~tfreg.models.backbones.base.Backbone` (DDF models inject ``out_channels = ndim``,
            ``out_kernel_initializer = "zeros"``).

    Call: ``(B, *image_size, C)`` (moving and fixed images concatenated, ``C = 2``) -> ``(B, *image_size,
    out_channels)``, the displacement field in voxels for DDF models. Every spatial size must be at least
    ``2^depth`` voxels; odd sizes are allowed (the transposed convolution's output is cropped).

    Raises:
        ValueError: naming the argument, for bad values or an ``image_size`` too small for ``depth``.
    """

    def __init__(
        self,
        num_channel_initial: int = 4,
        depth: int = THESIS_DEPTH,
        channels: Optional[Sequence[int]] = None,
        name: str = "ThesisUNet",
        **kwargs,
    ):
        super().__init__(num_channel_initial=num_channel_initial, name=name, **kwargs)
        if channels is None:
            if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
                raise ValueError(f"depth must be an int >= 0 (the number of down-samplings), got {depth!r}")
            channels = [self.num_channel_initial * 2**d for d in range(depth + 1)]
        self.channels = check_channels(channels)
        self.depth = len(self.channels) - 1
        self.trunk = UNetSegmenter(
            image_size=self.image_size,
            channels=self.channels,
            convs_per_block=2,
            kernel_size=3,
            norm="batch",
            activation="relu",
            downsampling="max_pool",
            upsampling="transposed_conv",
            skip="add",
            name="trunk",
        )
        self.head = conv_layer(
            self.ndim,
            self.out_channels,
            3,
            padding="same",
            kernel_initializer=self.out_kernel_initializer,
            activation=self.out_activation,
            name="field",
        )

    def build(self, input_shape):
        self.call(keras.KerasTensor(tuple(input_shape)))
        self.built = True

    def call(self, inputs, training=None, mask=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``."""
        return self.head(self.trunk(inputs, training=training))

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[:-1]) + (self.out_channels,)

    config_keys = Backbone.config_keys + ("depth", "channels")


__all__ = ["ThesisUNet", "THESIS_DEPTH"]
