"""``deepreg.model.backbone``: the ``Backbone`` base class and DeepReg's three backbones.

A custom backbone subclasses :class:`Backbone` (or any ``keras.Model`` taking the same keyword arguments:
``image_size``, ``num_channel_initial``, ``out_kernel_initializer``, ``out_activation``, ``out_channels``) and
maps ``(batch, *image_size, channels)`` to ``(batch, *image_size, out_channels)``.
"""

from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.global_net import GlobalNet
from tfreg.models.backbones.local import LocalNet
from tfreg.models.backbones.unet import UNet

__all__ = ["Backbone", "GlobalNet", "LocalNet", "UNet"]
