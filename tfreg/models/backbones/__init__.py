"""Backbones (category ``backbone_class``): ``local`` (LocalNet), ``global`` (GlobalNet), ``unet`` (UNet).

Importing this package registers them. A user backbone subclasses :class:`Backbone` with DeepReg's
constructor signature and registers itself with ``REGISTRY.register_backbone(name=...)``.
"""

from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.global_net import GlobalNet
from tfreg.models.backbones.local import LocalNet
from tfreg.models.backbones.unet import UNet

__all__ = ["Backbone", "GlobalNet", "LocalNet", "UNet"]
