"""``deepreg.constant``: ``EPS``, the smoothing constant of the losses (1e-5, DeepReg's value)."""

from tfreg.losses.base import EPS

__all__ = ["EPS"]
