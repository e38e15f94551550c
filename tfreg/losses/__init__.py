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

The score classes (``LocalNormalizedCrossCorrelation``, ``DiceScore``, ...) are exported for metrics.
The registry imports this package lazily on its first lookup, so every loss module is imported here.
"""

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
]
