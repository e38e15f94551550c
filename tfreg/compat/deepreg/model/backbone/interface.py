"""``deepreg.model.backbone.interface``: the ``Backbone`` base class."""

from tfreg.models.backbones.base import Backbone

__all__ = ["Backbone"]
