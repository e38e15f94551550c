"""GlobalNet backbone (DeepReg's ``global``): an encoder regressing an affine transform, 2-D and 3-D.

The LocalNet encoder (kernels ``[7] + [3] * depth`` by default, channels ``num_channel_initial * 2**d``, conv
block + residual block + max pooling per level, a conv block at the bottom, followed by a residual block with
``bottom_residual``) is flattened and a Dense layer gives
the ``ndim * (ndim + 1)`` parameters of ``theta`` ``(B, ndim + 1, ndim)``. Its kernel uses
``out_kernel_initializer`` (zeros in DDF models) and its bias is the identity ``eye(ndim + 1, ndim)``, so the
network starts at the identity transform. The DDF is ``[grid, 1] @ theta - grid`` on the fixed grid
(voxels, see :mod:`tfreg.ops.affine`). Every block normalizes with ``norm`` (DeepReg's BatchNormalization
by default; ``instance``, ``group`` or ``none``, see :mod:`tfreg.models.backbones.blocks`).
"""

from typing import Optional, Sequence, Union

import keras
import numpy as np
from keras import ops

from tfreg.checks import check_int
from tfreg.layers.normalization import NORMALIZATIONS, check_norm
from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.blocks import ConvBlock, ResidualBlock, pooling_layer
from tfreg.models.backbones.unet import _per_level, check_depth_fits, check_levels
from tfreg.ops.affine import affine_to_ddf
from tfreg.registry import REGISTRY


@REGISTRY.register_backbone(name="global")
class GlobalNet(Backbone):
    """GlobalNet (DeepReg's ``global``).

    Args:
        **kwargs: image_size, num_channel_initial, out_kernel_initializer, out_activation, see :class:`Backbone`.
        name: Keras model name.
        out_channels: must equal ``ndim`` (the output is a DDF).
        extract_levels: DeepReg's older way to give the depth: ``depth = max(extract_levels)``.
        depth: number of down-samplings; one of ``depth`` and ``extract_levels`` is required.
        out_activation: accepted for the common signature; must be None (theta is linear).
        encode_kernel_sizes: int or ``depth + 1`` ints, the kernel of each encoder level and of the bottom;
            default ``[7] + [3] * depth`` (DeepReg 0.1's GlobalNet; DeepReg 1.0's uses 3 everywhere).
        bottom_residual: follow the bottom conv block by a residual block, as DeepReg 1.0's GlobalNet does
            (its published checkpoints need ``encode_kernel_sizes: 3, bottom_residual: true``, see
            :mod:`tfreg.engine.deepreg_checkpoint`).
        norm, norm_groups: normalization of every block, as in :class:`~tfreg.models.backbones.unet.UNet`
            (default ``"batch"``, DeepReg's).

    Call: ``(B, *image_size, C)`` -> ``(ddf, theta)``: ``ddf (B, *image_size, ndim)`` voxels, ``theta
    (B, ndim + 1, ndim)``.
    """

    def __init__(
        self,
        out_channels: Optional[int] = None,
        extract_levels: Optional[Sequence[int]] = None,
        depth: Optional[int] = None,
        encode_kernel_sizes: Union[int, Sequence[int], None] = None,
        bottom_residual: bool = False,
        norm: str = "batch",
        norm_groups: Optional[int] = None,
        name: str = "GlobalNet",
        **kwargs,
    ):
        image_size = kwargs.get("image_size", ())
        ndim_guess = len(tuple(image_size)) if hasattr(image_size, "__len__") else 3
        super().__init__(out_channels=ndim_guess if out_channels is None else out_channels, name=name, **kwargs)
        if self.out_channels != self.ndim:
            raise ValueError(
                f"out_channels of the global backbone must equal the number of spatial dimensions {self.ndim}, "
                f"got {out_channels!r} (use the global backbone with ddf/dvf/affine models only)"
            )
        if self.out_activation is not None:
            raise ValueError(f"out_activation of the global backbone must be None, got {self.out_activation!r}")
        if depth is None and extract_levels is None:
            raise ValueError("the global backbone needs depth (or extract_levels, giving depth = max(extract_levels))")
        if depth is None:
            _, depth = check_levels(extract_levels, None)
        else:
            depth = check_int(depth, "depth", minimum=0)
        self.depth = int(depth)
        self.extract_levels = None if extract_levels is None else list(extract_levels)
        check_depth_fits(self.image_size, self.depth, 2)
        if not isinstance(bottom_residual, bool):
            raise ValueError(f"bottom_residual must be true or false, got {bottom_residual!r}")
        self.bottom_residual = bottom_residual
        ndim, nci = self.ndim, self.num_channel_initial
        kernels = _per_level(encode_kernel_sizes, self.depth + 1, "encode_kernel_sizes", [7] + [3] * self.depth)
        self.encode_kernel_sizes = kernels
        channels = [nci * 2**d for d in range(self.depth + 1)]
        self.norm, self.norm_groups = check_norm(norm, norm_groups, channels)
        choice = dict(norm=self.norm, norm_groups=self.norm_groups)
        self.encoders = []
        for d in range(self.depth):
            self.encoders += [
                ConvBlock(ndim, channels[d], kernels[d], **choice),
                ResidualBlock(ndim, channels[d], kernels[d], **choice),
            ]
        self.pools = [pooling_layer(ndim, 2) for _ in range(self.depth)]
        self.bottom = ConvBlock(ndim, channels[-1], kernels[-1], **choice)
        # a separate list, empty by default, so that the keys of the other weights do not depend on the option
        self.bottom_residuals = [ResidualBlock(ndim, channels[-1], kernels[-1], **choice)] if bottom_residual else []
        self.flatten = keras.layers.Flatten()
        identity = np.eye(ndim + 1, ndim, dtype="float32").reshape(-1)
        self.dense = keras.layers.Dense(
            ndim * (ndim + 1),
            kernel_initializer=self.out_kernel_initializer,
            bias_initializer=keras.initializers.Constant(identity),
        )

    def call(self, inputs, training=None, mask=None):
        """``(B, *image_size, C)`` -> ``(ddf (B, *image_size, ndim), theta (B, ndim + 1, ndim))``."""
        x = inputs
        for d in range(self.depth):
            x = self.encoders[2 * d](x, training=training)
            x = self.encoders[2 * d + 1](x, training=training)
            x = self.pools[d](x)
        x = self.bottom(x, training=training)
        for block in self.bottom_residuals:
            x = block(x, training=training)
        theta = ops.reshape(self.dense(self.flatten(x)), (-1, self.ndim + 1, self.ndim))
        return affine_to_ddf(theta, self.image_size), theta

    config_keys = ("depth", "extract_levels", "encode_kernel_sizes", "bottom_residual", "norm", "norm_groups")
    #: the values of ``norm``, which config validation checks before anything is built
    norm_choices = NORMALIZATIONS
    #: the call returns ``(ddf, theta)`` of an affine transform, not a free dense field
    affine_output = True


__all__ = ["GlobalNet"]
