"""``deepreg.loss.util``: ``NegativeLossMixin`` (``call`` returns the negated score of the class after it).

DeepReg's ``MultiScaleMixin`` has no counterpart here: a multi-scale loss of tfreg subclasses
:class:`tfreg.losses.base.MultiScaleLoss` and implements ``compute_per_sample`` (docs/migrating-from-deepreg.md).
"""

from tfreg.losses.base import NegatedLossMixin

NegativeLossMixin = NegatedLossMixin

__all__ = ["NegativeLossMixin"]
