"""tfreg.losses: DeepReg's losses under DeepReg's registered names, 2-D and 3-D (``keras.ops`` only).

Importing this package registers (category ``loss_class``):

========================  ==========================================  ================
name                      class                                       sign
========================  ==========================================  ================
``lncc``                  :class:`LocalNormalizedCrossCorrelationLoss`  -score
``gncc``                  :class:`GlobalNormalizedCrossCorrelationLoss` -score
``gmi``                   :class:`GlobalMutualInformationLoss`          -score
``ssd``                   :class:`SumSquaredDifference`                 loss
``dice``                  :class:`DiceScoreLoss`                        -score
``jaccard``               :class:`JaccardIndexLoss`                     -score
``cross-entropy``         :class:`CrossEntropy`                         loss
``bending``               :class:`BendingEnergy` (Layer, on the DDF)    loss
``gradient``              :class:`GradientNorm` (Layer, on the DDF)     loss
========================  ==========================================  ================

It also registers tfreg's own losses: multi-modal similarity (``mi``, ``mind``, ``mind-ssc``,
``macmind``, ``ssim``, ``ngf``, ``ncc``, ``filtered``; see docs/similarity.md), deformation penalties
(``rigidity``, ``tv``, ``gradient-forward``, ``folding``, ``inverse-consistency``) and segmentation
losses (``focal``, ``contour``, ``contour-ce``, ``multiclass-dice``, ``multiclass-cross-entropy``,
``embedding``); see docs/components.md.

The score classes (``LocalNormalizedCrossCorrelation``, ``DiceScore``, ...) are exported for metrics.
The registry imports this package lazily on its first ``loss_class`` lookup, so every loss module is imported here.
"""

# tfreg's own losses; imported for their registrations.
from tfreg.losses import filtered, macmind, mi, mind, ncc, ngf, penalties, rigidity, segmentation, ssim  # noqa: E402,F401
from tfreg.losses.base import EPS, ImageLoss, MultiScaleLoss, NegatedLossMixin, to_channels_last
from tfreg.losses.deformation import BendingEnergy, DeformationLoss, GradientNorm
from tfreg.losses.image import (
    GlobalNormalizedCrossCorrelation,
    GlobalNormalizedCrossCorrelationLoss,
    LocalNormalizedCrossCorrelation,
    LocalNormalizedCrossCorrelationLoss,
    SumSquaredDifference,
)
from tfreg.losses.label import CrossEntropy, DiceScore, DiceScoreLoss, JaccardIndex, JaccardIndexLoss
from tfreg.losses.mutual_information import (
    GlobalMutualInformation,
    GlobalMutualInformationLoss,
    global_mutual_information,
)
from tfreg.losses.penalties import FoldingPenalty, ForwardGradientNorm, InverseConsistency, TotalVariation
from tfreg.losses.rigidity import RigidityPenalty
from tfreg.losses.segmentation import (
    ContourCrossEntropy,
    ContourLoss,
    EmbeddingLoss,
    FocalLoss,
    MultiClassCrossEntropy,
    MultiClassDiceLoss,
)

__all__ = [
    "EPS",
    "ImageLoss",
    "MultiScaleLoss",
    "NegatedLossMixin",
    "to_channels_last",
    "DeformationLoss",
    "BendingEnergy",
    "GradientNorm",
    "LocalNormalizedCrossCorrelation",
    "LocalNormalizedCrossCorrelationLoss",
    "GlobalNormalizedCrossCorrelation",
    "GlobalNormalizedCrossCorrelationLoss",
    "SumSquaredDifference",
    "DiceScore",
    "DiceScoreLoss",
    "JaccardIndex",
    "JaccardIndexLoss",
    "CrossEntropy",
    "GlobalMutualInformation",
    "GlobalMutualInformationLoss",
    "global_mutual_information",
    "RigidityPenalty",
    "TotalVariation",
    "ForwardGradientNorm",
    "FoldingPenalty",
    "InverseConsistency",
    "FocalLoss",
    "MultiClassDiceLoss",
    "MultiClassCrossEntropy",
    "ContourLoss",
    "ContourCrossEntropy",
    "EmbeddingLoss",
]
