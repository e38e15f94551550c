"""``deepreg.loss.deform``: DDF regularisers (registered ``bending``, ``gradient``), called as ``loss(inputs=ddf)``."""

from tfreg.losses.deformation import BendingEnergy, GradientNorm

__all__ = ["BendingEnergy", "GradientNorm"]
