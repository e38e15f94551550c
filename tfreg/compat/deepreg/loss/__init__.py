"""``deepreg.loss``: the DeepReg losses under DeepReg's class names (``image``, ``label``, ``deform``, ``util``).

Importing it registers nothing new: the classes are tfreg's, registered under DeepReg's names (``lncc``,
``dice``, ``bending``, ...) in the one ``REGISTRY``.
"""

from tfreg.compat.deepreg.loss import deform, image, label, util

__all__ = ["deform", "image", "label", "util"]
