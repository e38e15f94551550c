"""tfreg.models: backbones and registration models (``keras`` only, any Keras 3 backend).

Importing this package registers the backbones (``local``, ``global``, ``unet``) and the models (``ddf``,
``dvf``, ``conditional``, ``affine``).
"""

from tfreg.models.affine import AffineModel
from tfreg.models.backbones import Backbone, GlobalNet, LocalNet, UNet
from tfreg.models.base import RegistrationModel, target_registration_error
from tfreg.models.conditional import ConditionalModel
from tfreg.models.ddf import DDFModel
from tfreg.models.dvf import DVFModel
from tfreg.models.loss_config import build_losses

__all__ = [
    "AffineModel",
    "Backbone",
    "GlobalNet",
    "LocalNet",
    "UNet",
    "RegistrationModel",
    "target_registration_error",
    "ConditionalModel",
    "DDFModel",
    "DVFModel",
    "build_losses",
]
