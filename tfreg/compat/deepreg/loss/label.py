"""``deepreg.loss.label``: label scores and losses (registered ``dice``, ``jaccard``, ``cross-entropy``, ``ssd``).

DeepReg 1.0 named the registered classes ``DiceLoss``, ``JaccardLoss``, ``CrossEntropyLoss`` and
``SumSquaredDifferenceLoss`` (earlier releases ``DiceScoreLoss`` and ``JaccardIndexLoss``); each name is the
tfreg class registered under the same config name, multi-scale (``scales``, ``kernel``) included.
"""

from tfreg.losses.image import SumSquaredDifference
from tfreg.losses.label import CrossEntropy, DiceScore, DiceScoreLoss, JaccardIndex, JaccardIndexLoss

DiceLoss = DiceScoreLoss
JaccardLoss = JaccardIndexLoss
CrossEntropyLoss = CrossEntropy
SumSquaredDifferenceLoss = SumSquaredDifference

__all__ = [
    "CrossEntropy",
    "CrossEntropyLoss",
    "DiceLoss",
    "DiceScore",
    "DiceScoreLoss",
    "JaccardIndex",
    "JaccardIndexLoss",
    "JaccardLoss",
    "SumSquaredDifference",
    "SumSquaredDifferenceLoss",
]
