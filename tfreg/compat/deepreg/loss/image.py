"""``deepreg.loss.image``: image similarity scores and their negated losses (registered ``lncc``, ``gncc``, ``gmi``)."""

from tfreg.losses.image import (
    GlobalNormalizedCrossCorrelation,
    GlobalNormalizedCrossCorrelationLoss,
    LocalNormalizedCrossCorrelation,
    LocalNormalizedCrossCorrelationLoss,
    SumSquaredDifference,
)
from tfreg.losses.mutual_information import GlobalMutualInformation, GlobalMutualInformationLoss

__all__ = [
    "GlobalMutualInformation",
    "GlobalMutualInformationLoss",
    "GlobalNormalizedCrossCorrelation",
    "GlobalNormalizedCrossCorrelationLoss",
    "LocalNormalizedCrossCorrelation",
    "LocalNormalizedCrossCorrelationLoss",
    "SumSquaredDifference",
]
