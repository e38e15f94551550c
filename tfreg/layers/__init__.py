"""tfreg.layers: Keras layers (``keras.ops`` only): warping, DVF integration, resizing, the seed
methods' segmentation-guided attention layers (registered in ``attention_class``), multi-scale field
fusion (DFSA), attention gates and scSE blocks, and the one BatchNormalization factory (synchronized or not,
chosen at construction: :mod:`tfreg.layers.normalization`)."""

from tfreg.layers.attention import (
    ConcatAttention,
    ContourAttention,
    MaskingAttention,
    MaskOnlyAttention,
    RoiAttention,
    landmark_cubes,
)
from tfreg.layers.blocks import AttentionGate, SCSEBlock
from tfreg.layers.fusion import DFSA
from tfreg.layers.normalization import batch_normalization, synchronized_batch_norm
from tfreg.layers.warping import IntDVF, Resize, Warping

__all__ = [
    "Warping",
    "IntDVF",
    "Resize",
    "ContourAttention",
    "MaskingAttention",
    "RoiAttention",
    "MaskOnlyAttention",
    "ConcatAttention",
    "landmark_cubes",
    "DFSA",
    "AttentionGate",
    "SCSEBlock",
    "batch_normalization",
    "synchronized_batch_norm",
]
