"""tfreg.models: backbones and registration models (``keras`` only, any Keras 3 backend).

Importing this package registers the backbones (``local``, ``global``, ``unet``, ``dfsa_unet``,
``unet_segmenter``, ``multi_unets``, ``thesis_unet``, ``lapirn``) and the models (``ddf``, ``dvf``, ``conditional``,
``affine``, ``segmentation``, ``wssamnet``, ``joint``, ``dfsa``, ``label_autoencoder``, ``lapirn``).
"""

from tfreg.models.affine import AffineModel
from tfreg.models.backbones import Backbone, DFSAUNet, GlobalNet, LocalNet, MultiUNets, UNet, UNetSegmenter
from tfreg.models.base import RegistrationModel, target_registration_error
from tfreg.models.conditional import ConditionalModel
from tfreg.models.ddf import DDFModel
from tfreg.models.dfsa import DFSAModel
from tfreg.models.dvf import DVFModel
from tfreg.models.joint import JointModel
from tfreg.models.label_autoencoder import LabelAutoencoder
from tfreg.models.lapirn import LapIRNModel
from tfreg.models.loss_config import build_losses
from tfreg.models.segmentation import SegmentationModel, label_channels
from tfreg.models.segmenter import Segmenter
from tfreg.models.wssamnet import WSSAMNetModel

__all__ = [
    "AffineModel",
    "Backbone",
    "DFSAUNet",
    "DFSAModel",
    "GlobalNet",
    "LocalNet",
    "UNet",
    "UNetSegmenter",
    "MultiUNets",
    "SegmentationModel",
    "Segmenter",
    "WSSAMNetModel",
    "label_channels",
    "RegistrationModel",
    "target_registration_error",
    "ConditionalModel",
    "DDFModel",
    "DVFModel",
    "JointModel",
    "LabelAutoencoder",
    "LapIRNModel",
    "build_losses",
]
