"""Backbones (category ``backbone_class``): ``local`` (LocalNet), ``global`` (GlobalNet), ``unet`` (UNet),
``dfsa_unet`` (DFSAUNet, multi-scale fields fused by attention), ``lapirn`` (LapIRN, a Laplacian pyramid
with optional attention gates), ``thesis_unet`` (ThesisUNet, van Ulsen's small U-Net with additive skips),
``transmorph`` (TransMorph: a Swin transformer encoder and a convolutional decoder), ``field``
(ParameterField: no network, the transform's own parameters, for instance optimisation), and the segmentation
networks' feature extractors ``unet_segmenter`` (UNetSegmenter), ``multi_unets`` (MultiUNets) and
``swin_unetr`` (SwinUNETR).

Importing this package registers them. A user backbone subclasses :class:`Backbone` with DeepReg's
constructor signature and registers itself with ``REGISTRY.register_backbone(name=...)``.
"""

from tfreg.models.backbones.base import Backbone
from tfreg.models.backbones.dfsa_unet import DFSAUNet
from tfreg.models.backbones.field import ParameterField
from tfreg.models.backbones.global_net import GlobalNet
from tfreg.models.backbones.lapirn import LapIRN
from tfreg.models.backbones.local import LocalNet
from tfreg.models.backbones.multi_unets import MultiUNets
from tfreg.models.backbones.swin_unetr import SwinUNETR
from tfreg.models.backbones.thesis_unet import ThesisUNet
from tfreg.models.backbones.transmorph import TransMorph
from tfreg.models.backbones.unet import UNet
from tfreg.models.backbones.unet_segmenter import UNetSegmenter

__all__ = [
    "Backbone",
    "DFSAUNet",
    "GlobalNet",
    "LapIRN",
    "LocalNet",
    "UNet",
    "UNetSegmenter",
    "MultiUNets",
    "ThesisUNet",
    "SwinUNETR",
    "TransMorph",
    "ParameterField",
]
