"""The backbone base class with DeepReg's constructor signature, so user backbones plug in unchanged.

A backbone maps the concatenated, fixed-grid input ``(B, *image_size, C)`` to ``(B, *image_size,
out_channels)`` (a DDF, a DVF or a label probability depending on the model). Models inject
``image_size``, ``out_channels``, ``out_kernel_initializer`` and ``out_activation`` as default arguments;
the rest comes from the config's ``train.backbone`` section.
"""

from typing import Optional, Sequence

import keras

from tfreg.checks import check_positive_int
from tfreg.ops.grid import _check_shape
from tfreg.serialization import attribute_config


class Backbone(keras.Model):
    """Base of all backbones (DeepReg's ``Backbone``).

    Args:
        image_size: spatial size of the fixed image ``(d0, d1[, d2])``, voxels; its length (2 or 3) sets the
            number of spatial dimensions.
        num_channel_initial: channels of the first level, int >= 1.
        out_kernel_initializer: Keras initializer of the output convolution (``"zeros"`` for DDF/DVF models,
            so that training starts at the identity).
        out_activation: activation of the output convolution (None, ``"sigmoid"``, ...).
        out_channels: channels of the output, int >= 1 (``ndim`` for DDF/DVF models, 1 for conditional).
        name: Keras model name.
        **kwargs: passed to ``keras.Model``.

    Attributes: ``image_size`` (tuple), ``ndim`` (2 or 3), ``num_channel_initial``, ``out_kernel_initializer``,
    ``out_activation``, ``out_channels``.
    """

    def __init__(
        self,
        image_size: Sequence[int] = (),
        num_channel_initial: int = 1,
        out_kernel_initializer: Optional[str] = "glorot_uniform",
        out_activation: Optional[str] = None,
        out_channels: int = 1,
        name: str = "Backbone",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.image_size = _check_shape(image_size, "image_size")
        if len(self.image_size) not in (2, 3):
            raise ValueError(f"image_size must have 2 or 3 spatial sizes, got {image_size!r}")
        self.ndim = len(self.image_size)
        self.num_channel_initial = check_positive_int(num_channel_initial, "num_channel_initial")
        self.out_channels = check_positive_int(out_channels, "out_channels")
        self.out_kernel_initializer = out_kernel_initializer
        self.out_activation = out_activation

    def call(self, inputs, training=None, mask=None):
        """``(B, *image_size, C)`` -> ``(B, *image_size, out_channels)``."""
        raise NotImplementedError

    #: The constructor arguments saved by get_config; subclasses list their own (see tfreg.serialization).
    config_keys = ("image_size", "num_channel_initial", "out_kernel_initializer", "out_activation", "out_channels")

    def get_config(self) -> dict:
        # Not keras.Model's config (it would hold the layers): the name and the constructor arguments only.
        return dict(name=self.name, **attribute_config(self))
